"""Optional sidecar metadata: ``<task>.meta.json`` beside ``<task>.<split>.jsonl``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TaskMeta:
    """What a task's sidecar file says (all optional)."""

    metric: str | None = None
    description: str | None = None
    instructions: tuple[str, ...] = ()
    label_set: tuple[str, ...] = ()
    path: Path | None = field(default=None, compare=False)


def read_meta(task_path: str | Path) -> TaskMeta:
    """Find and read the sidecar of a task file, or return an empty :class:`TaskMeta`.

    ``data/foo.test.jsonl`` and ``data/foo.jsonl`` both look for ``data/foo.meta.json``.
    A sidecar that cannot be parsed is ignored (it is advisory, never required).
    """
    p = Path(task_path)
    # foo.test.jsonl -> foo.meta.json; my.task.jsonl -> my.task.meta.json; try longest first.
    parts = p.name.split(".")
    candidates = [".".join(parts[:k]) for k in range(len(parts) - 1, 0, -1)]
    meta_path = next(
        (
            p.with_name(f"{c}.meta.json")
            for c in candidates
            if p.with_name(f"{c}.meta.json").is_file()
        ),
        None,
    )
    if meta_path is None:
        return TaskMeta()
    try:
        data = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return TaskMeta()
    if not isinstance(data, dict):
        return TaskMeta()
    return TaskMeta(
        metric=_str_or_none(data.get("metric")),
        description=_str_or_none(data.get("description")),
        instructions=_str_list(data.get("human_instructions")),
        label_set=_str_list(data.get("label_set"), numbers=True),
        path=meta_path,
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _str_list(value: object, numbers: bool = False) -> tuple[str, ...]:
    """A list of strings (a lone string is a one-item list); other values are ignored."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        return ()
    kinds: tuple[type, ...] = (str, int, float) if numbers else (str,)
    return tuple(str(v) for v in value if isinstance(v, kinds) and not isinstance(v, bool))
