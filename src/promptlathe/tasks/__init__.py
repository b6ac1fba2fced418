"""Tasks: examples loaded from JSONL/CSV, deterministic splits, sidecar metadata."""

from promptlathe.tasks._example import Example
from promptlathe.tasks._loader import Fields, load_examples
from promptlathe.tasks._meta import TaskMeta, read_meta
from promptlathe.tasks._splits import (
    RunSplit,
    Split,
    run_split,
    split_examples,
    split_from_file,
)

__all__ = [
    "Example",
    "Fields",
    "Split",
    "TaskMeta",
    "load_examples",
    "read_meta",
    "RunSplit",
    "run_split",
    "split_examples",
    "split_from_file",
]
