"""The run log: one typed, versioned entry per evaluated candidate.

Every candidate any optimizer races on validation is logged as its race ends: the prompt,
where it came from (``seed``, ``ape``, ``opro``, ``joint``, ``reflect``, ...), its parent,
the per-example scores in validation order (so each rung's mean is known), its state and the
calls it cost. The entries live in the run's store (the shared database when there is one,
so workers on other machines log there too). Confirmation, the result and the report read
candidates only from here, never from an optimizer's internals or Optuna's trial attributes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from promptlathe.errors import PromptlatheError
from promptlathe.prompts import Prompt
from promptlathe.store import Store

LOG_VERSION = 1
STATES = ("complete", "pruned", "failed")

STATE_WORDS = {"complete": "complete", "pruned": "pruned", "failed": "stopped by the budget"}
"""How each state is shown to people: ``failed`` is a race the budget cut short, not an
error (the stored name stays, so older run logs read back)."""


def state_counts(entries: Iterable[LogEntry]) -> dict[str, int]:
    """How many entries end in each state."""
    out: dict[str, int] = {}
    for e in entries:
        out[e.state] = out.get(e.state, 0) + 1
    return out


def describe_counts(counts: dict[str, int]) -> str:
    """Candidate counts by state as one phrase, e.g. ``complete 3, stopped by the budget 1``."""
    return ", ".join(f"{STATE_WORDS.get(k, k)} {v}" for k, v in sorted(counts.items()))


@dataclass(frozen=True)
class LogEntry:
    """One evaluated candidate.

    Attributes:
        id: the prompt's hash (a prompt is raced once per run; a re-race replaces its entry).
        optimizer: the optimizer that proposed it.
        source: how it was made (``seed``, ``ape``, ``opro``, ``joint``, ``reflect``, ...).
        parent: the id of the candidate it was derived from, if any.
        prompt: the prompt, as :meth:`Prompt.to_dict` writes it.
        scores: per-example scores on validation, in validation order.
        rungs: ``[n, mean]`` at each racing rung it reached.
        state: ``complete`` (all of validation), ``pruned`` (stopped by racing) or ``failed``.
        calls: model calls made while it was raced (by every process of the run).
        calls_at_end: the run's call count when its race ended (orders the log in time).
        note: why it was stopped, or other short remarks.
        extra: ``tokens_per_example`` (prompt + output tokens, every call, per example).
    """

    id: str
    optimizer: str
    source: str
    prompt: dict[str, Any]
    scores: tuple[float, ...]
    rungs: tuple[tuple[int, float], ...]
    state: str
    parent: str | None = None
    calls: int = 0
    calls_at_end: int | None = None
    note: str = ""
    v: int = LOG_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> float | None:
        return sum(self.scores) / len(self.scores) if self.scores else None

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def tokens_per_example(self) -> float | None:
        """Mean tokens per validation example it was scored on (``None``: not recorded)."""
        t = self.extra.get("tokens_per_example")
        return float(t) if isinstance(t, int | float) else None

    def to_prompt(self) -> Prompt:
        return Prompt.from_dict(self.prompt, where=f"run log entry {self.id}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scores"] = list(self.scores)
        d["rungs"] = [list(r) for r in self.rungs]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "run log") -> LogEntry:
        """Read an entry back; an entry of another version or shape is a one-line error."""
        if not isinstance(data, dict) or data.get("v") != LOG_VERSION:
            got = data.get("v") if isinstance(data, dict) else type(data).__name__
            raise PromptlatheError(
                f"{where}: run log entry of version {got!r}, this promptlathe reads version "
                f"{LOG_VERSION}; finish the run with the promptlathe that started it"
            )
        try:
            entry = cls(
                id=str(data["id"]),
                optimizer=str(data["optimizer"]),
                source=str(data["source"]),
                prompt=dict(data["prompt"]),
                scores=tuple(float(s) for s in data["scores"]),
                rungs=tuple((int(n), float(m)) for n, m in data["rungs"]),
                state=str(data["state"]),
                parent=data.get("parent"),
                calls=int(data.get("calls", 0)),
                calls_at_end=data.get("calls_at_end"),
                note=str(data.get("note", "")),
                extra=dict(data.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PromptlatheError(f"{where}: malformed run log entry ({exc})") from None
        if entry.state not in STATES:
            raise PromptlatheError(f"{where}: run log entry state {entry.state!r} is unknown")
        return entry


def rung_means(scores: Sequence[float], rungs: Iterable[int]) -> tuple[tuple[int, float], ...]:
    """``(n, mean of the first n scores)`` for each rung the scores reach."""
    return tuple((r, sum(scores[:r]) / r) for r in rungs if 0 < r <= len(scores))


class RunLog:
    """The run log of one run, kept in its store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, entry: LogEntry) -> None:
        self.store.put_log(entry.id, entry.to_dict())

    def entries(self) -> list[LogEntry]:
        """Every entry, in the order they were first logged."""
        return [LogEntry.from_dict(d, f"{self.store.path}: run log") for d in self.store.get_log()]

    def get(self, entry_id: str) -> LogEntry | None:
        return next((e for e in self.entries() if e.id == entry_id), None)

    def complete(self) -> list[LogEntry]:
        """Entries scored on the whole validation split, best mean first."""
        done = [e for e in self.entries() if e.state == "complete"]
        return sorted(done, key=lambda e: -(e.mean or 0.0))

    def counts(self) -> dict[str, int]:
        return state_counts(self.entries())
