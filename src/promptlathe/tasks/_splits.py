"""Deterministic train/validation/test splits."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from promptlathe.errors import TaskFormatError
from promptlathe.tasks._example import Example


@dataclass(frozen=True)
class Split:
    """A partition of a task's examples. Any part may be empty."""

    train: list[Example]
    val: list[Example]
    test: list[Example]

    def fingerprint(self) -> str:
        """Hash of the example ids in each part (to check a resumed run uses the same split)."""
        payload = json.dumps([[e.id for e in part] for part in (self.train, self.val, self.test)])
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def split_examples(
    examples: Sequence[Example],
    fractions: tuple[float, float, float] = (0.5, 0.25, 0.25),
    seed: int = 0,
) -> Split:
    """Shuffle with ``seed`` and cut into train/val/test by ``fractions``.

    The result depends only on the examples' order, ``fractions`` and ``seed``.
    """
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    order = np.random.default_rng(seed).permutation(len(examples))
    n = len(examples)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    n_val = min(n_val, n - n_train)
    shuffled = [examples[i] for i in order]
    return Split(
        train=shuffled[:n_train],
        val=shuffled[n_train : n_train + n_val],
        test=shuffled[n_train + n_val :],
    )


def split_from_file(examples: Sequence[Example], path: str | Path) -> Split:
    """Split by a JSON file ``{"train": [ids], "val": [ids], "test": [ids]}``.

    Raises:
        TaskFormatError: the file is malformed or names an unknown example id.
    """
    p = Path(path)
    try:
        spec = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TaskFormatError(f"{p}: split file not found") from None
    except json.JSONDecodeError as exc:
        raise TaskFormatError(f"{p}:{exc.lineno}: invalid JSON in split file ({exc.msg})") from None
    if not isinstance(spec, dict):
        raise TaskFormatError(f"{p}: a split file must be a JSON object with train/val/test lists")
    by_id = {e.id: e for e in examples}
    parts: dict[str, list[Example]] = {}
    for name in ("train", "val", "test"):
        ids = spec.get(name, [])
        if not isinstance(ids, list):
            raise TaskFormatError(f"{p}: field '{name}' must be a list of example ids")
        missing = [i for i in ids if str(i) not in by_id]
        if missing:
            raise TaskFormatError(
                f"{p}: field '{name}' names unknown example id {missing[0]!r} "
                f"({len(missing)} unknown in all)"
            )
        parts[name] = [by_id[str(i)] for i in ids]
    seen: dict[str, str] = {}
    for name, part in parts.items():
        for e in part:
            if e.id in seen and seen[e.id] != name:
                raise TaskFormatError(
                    f"{p}: example id {e.id!r} is in both '{seen[e.id]}' and '{name}' "
                    "(the parts must not overlap)"
                )
            seen[e.id] = name
    return Split(**parts)


@dataclass(frozen=True)
class RunSplit:
    """An optimization run's four parts: train (exemplars, bootstrapping, proposals),
    validation (racing), confirmation (re-scoring the finalists) and test (the reported
    score). Only train and validation reach an optimizer."""

    train: list[Example]
    val: list[Example]
    confirm: list[Example]
    test: list[Example]


def run_split(
    examples: Sequence[Example],
    test: Sequence[Example] | None,
    *,
    n_test: int,
    n_val: int,
    n_confirm: int,
    seed: int,
) -> RunSplit:
    """Shuffle ``examples`` with ``seed``, then cut test (``n_test`` of them, unless a separate
    ``test`` set is given), validation, confirmation, and the rest for training."""
    order = np.random.default_rng(seed).permutation(len(examples))
    shuffled = [examples[i] for i in order]
    carved = 0 if test is not None else n_test
    test_part = list(test) if test is not None else shuffled[:carved]
    rest = shuffled[carved:]
    return RunSplit(
        train=rest[n_val + n_confirm :],
        val=rest[:n_val],
        confirm=rest[n_val : n_val + n_confirm],
        test=test_part,
    )
