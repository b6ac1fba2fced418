"""Tasks, result rows and the method names of the comparison bench (bench/compare.py)."""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptlathe import get_metric
from promptlathe._stats import wilson_interval
from promptlathe.metrics import Metric
from promptlathe.metrics._labels import label_set_of
from promptlathe.tasks import Example, load_examples, read_meta

METHODS = ("seed", "dspy-bfrs", "dspy-mipro", "dspy-gepa", "capo", "promptlathe")
DSPY_METHODS = ("dspy-bfrs", "dspy-mipro", "dspy-gepa")
PEER_METHODS = (*DSPY_METHODS, "capo")
# promptlathe at its defaults, and nothing else: picking the better of several promptlathe
# configurations by their test scores would flatter it.
PL_METHODS = ("promptlathe",)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class TaskData:
    name: str
    train: list[Example]
    val: list[Example]
    test: list[Example]
    instruction: str
    metric: Metric
    notes: list[str] = field(default_factory=list)

    def constant(self) -> tuple[str, float]:
        """The best constant answer on test among the training targets' labels (a label
        task) or its most common target, and its accuracy: a method that scores no better is
        hollow. (The methods' own most frequent answers are not all kept, so a constant a
        method falls into on a generation task is not caught here.)"""
        firsts = [e.target.strip() for e in self.train + self.val]
        labels = label_set_of(firsts)
        candidates = sorted(labels) if labels else [Counter(firsts).most_common(1)[0][0]]
        acc = {c: sum(self.metric.score(c, list(e.targets)) for e in self.test) / len(self.test)
               for c in candidates}  # fmt: skip
        best = max(acc, key=lambda c: acc[c])
        return best, acc[best]


def load_task(data: Path, name: str, n_train: int, n_val: int, n_test: int, seed: int) -> TaskData:
    suite, _, task = name.partition("/")
    if not task:
        raise SystemExit(f"--tasks: {name!r} is not suite/task (e.g. ape/negation)")
    base = data / suite
    train_file, test_file = base / f"{task}.train.jsonl", base / f"{task}.test.jsonl"
    if not test_file.is_file():
        raise SystemExit(f"--tasks: {name}: {test_file} not found")
    notes: list[str] = []
    if train_file.is_file():  # APE: a train pool and a separate test file
        pool = load_examples(train_file)
        random.Random(seed).shuffle(pool)
        train, val = pool[:n_train], pool[n_train : n_train + n_val]
        test = load_examples(test_file)[:n_test]
    else:  # BBH: only a test file; carve train / val / test from it
        pool = load_examples(test_file)
        random.Random(seed).shuffle(pool)
        train, val = pool[:n_train], pool[n_train : n_train + n_val]
        test = pool[n_train + n_val : n_train + n_val + n_test]
    if len(train) < n_train or len(val) < n_val or len(test) < n_test:
        notes.append(
            f"{name}: only {len(train)} train / {len(val)} val / {len(test)} test examples "
            f"(asked {n_train} / {n_val} / {n_test})"
        )
    if len(train) < 2 or len(val) < 1 or len(test) < 1:
        raise SystemExit(f"{name}: too few examples for the requested split")
    meta = read_meta(test_file)
    metric = get_metric(meta.metric, [e.target for e in train + val])
    return TaskData(name, train, val, test, meta.description or "", metric, notes)


def write_jsonl(path: Path, examples: list[Example]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for e in examples:
            rec = {"id": e.id, "input": e.input, "target": e.target, "targets": list(e.targets)}
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path


# ---- results --------------------------------------------------------------------------------
@dataclass
class Row:
    task: str
    method: str
    accuracy: float
    n: int
    ci95: tuple[float, float]
    opt_calls: int
    test_calls: int
    opt_seconds: float
    test_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # the method crashed; the row holds what it spent until then
    hollow: bool = False  # no better on test than the task's best constant answer
    scores: list[float] = field(default_factory=list)  # per test example, in the test's order
    outputs: list[str] = field(default_factory=list)  # the raw answers, each cut at OUTPUT_CHARS


OUTPUT_CHARS = 600


def make_row(
    task: str, method: str, scores: list[float], outputs: list[str] | None = None, **kw: Any
) -> Row:
    """A finished row; ``scores`` and ``outputs`` are kept so that methods can be compared
    example by example and a loss read from the answers."""
    n = len(scores)
    return Row(
        task,
        method,
        sum(scores) / n if n else 0.0,
        n,
        wilson_interval(sum(scores), n),
        **kw,
        scores=[float(x) for x in scores],
        outputs=[str(o)[:OUTPUT_CHARS] for o in outputs or []],
    )


def failed_row(task: str, method: str, exc: BaseException, calls: int, secs: float) -> Row:
    msg = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    log(f"  {method} FAILED on {task} after {calls} calls: {msg[:300]}")
    return Row(task, method, float("nan"), 0, (0.0, 1.0), calls, 0, secs, 0.0, error=msg[:300])
