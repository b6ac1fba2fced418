"""What an evaluation returns: one input's answer (:class:`Outcome`), one scored example
(:class:`Record`), and a prompt's records with their statistics (:class:`EvalResult`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from promptlathe._stats import wilson_interval


@dataclass
class Outcome:
    """A strategy's answer to one input: the combined output, its extracted answer, and the
    tokens (prompt + output, every call of the input) it cost."""

    text: str
    answer: str
    tokens: int
    request_hash: str
    cached: bool
    calls: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cut: bool = False
    """The combined output stopped at the token limit (a reasoned one then counts only
    with a marked answer)."""
    io_tokens: tuple[int, int] = (0, 0)
    """(prompt, output) tokens of every call of the input, cached ones included: what the
    answer costs wherever it is run."""
    confidence: float | None = None
    """The chosen label's probability (label scoring) or the samples' vote share for the
    answer (several samples); ``None`` for one generated output."""


@dataclass
class Record:
    """One scored example. ``request_hash`` identifies the exact rendered request."""

    example_id: str
    input: str
    prompt_hash: str
    request_hash: str
    output: str
    answer: str
    targets: list[str]
    score: float
    cached: bool = False
    tokens: int = 0
    """Prompt + output tokens of every model call this example took (the strategy's cost)."""
    cut: bool = False
    """``output`` stopped at the token limit (records stored before this field: False)."""

    @property
    def correct(self) -> bool:
        return self.score >= 1.0


@dataclass
class EvalResult:
    """Per-example records and aggregate statistics of one evaluation."""

    prompt_hash: str
    records: list[Record]
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.records)

    @property
    def mean(self) -> float:
        return sum(r.score for r in self.records) / self.n if self.records else 0.0

    @property
    def ci(self) -> tuple[float, float]:
        """95 % Wilson interval of the mean score."""
        return wilson_interval(sum(r.score for r in self.records), self.n)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def tokens_per_example(self) -> float:
        """Mean tokens (prompt + output, all calls) per example, cached ones included."""
        return sum(r.tokens for r in self.records) / self.n if self.records else 0.0

    def summary(self) -> dict[str, Any]:
        lo, hi = self.ci
        return {
            "prompt_hash": self.prompt_hash,
            "accuracy": self.mean,
            "ci95": [lo, hi],
            "n": self.n,
            "tokens_per_example": self.tokens_per_example,
            "lm_calls": self.calls,
            "cache_hits": self.cache_hits,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "wall_seconds": self.wall_seconds,
        }

    def to_dict(self) -> dict[str, Any]:
        recs = []
        for r in self.records:
            d = asdict(r)
            d["correct"] = r.correct
            recs.append(d)
        return {**self.summary(), "records": recs}
