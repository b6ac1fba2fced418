"""Task files for the bench scripts: a seeded test sample of a shared task and its train file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from promptlathe.errors import PromptlatheError


def task_files(data: Path, name: str, tmp: Path, n_test: int, seed: int) -> tuple[Path, Path]:
    """(train file, test file): a seeded sample of at most ``n_test`` test examples; a task
    with a test split only (BBH, GSM8K) trains on the rest of it."""
    suite, task = name.split("/")
    train, test = data / suite / f"{task}.train.jsonl", data / suite / f"{task}.test.jsonl"
    if not test.is_file():
        raise PromptlatheError(f"--tasks: no task {name!r} under {data}")
    rows = test.read_text().splitlines()
    order = np.random.default_rng(seed).permutation(len(rows))
    head, tail = sorted(order[:n_test]), sorted(order[n_test:])
    out_test, out_train = tmp / f"{task}.test.jsonl", tmp / f"{task}.train.jsonl"
    out_test.write_text("\n".join(rows[i] for i in head) + "\n")
    src = train.read_text().splitlines() if train.is_file() else [rows[i] for i in tail]
    out_train.write_text("\n".join(src) + "\n")
    meta = data / suite / f"{task}.meta.json"
    if meta.is_file():
        (tmp / f"{task}.meta.json").write_text(meta.read_text())
    return out_train, out_test
