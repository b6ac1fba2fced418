from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from promptlathe.metrics._extract import extract_answer


class Metric:
    """Scores a model output against an example's acceptable targets.

    A metric has two steps: :meth:`extract` pulls the answer out of a (possibly chatty)
    output, and :meth:`score` compares that answer with the targets, returning a value in
    ``[0, 1]``. Subclasses override :meth:`match` (one target) or :meth:`score` (all targets).
    """

    name: str = "metric"

    def extract(self, output: str) -> str:
        return extract_answer(output)

    def match(self, answer: str, target: str) -> float:  # pragma: no cover - abstract-ish
        raise NotImplementedError

    def score(self, answer: str, targets: Sequence[str]) -> float:
        return max((self.match(answer, t) for t in targets), default=0.0)

    def __call__(self, output: str, targets: Sequence[str]) -> tuple[str, float]:
        """Extract the answer from ``output`` and score it; returns ``(answer, score)``."""
        answer = self.extract(output)
        return answer, float(self.score(answer, targets))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class BinaryMetric(Metric, ABC):
    """A metric whose per-target result is right or wrong."""

    @abstractmethod
    def is_correct(self, answer: str, target: str) -> bool: ...

    def match(self, answer: str, target: str) -> float:
        return 1.0 if self.is_correct(answer, target) else 0.0
