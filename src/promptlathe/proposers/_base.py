"""Instruction proposers: an LM writes candidate instructions for a task."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from promptlathe.tasks import Example


@dataclass(frozen=True)
class ScoredInstruction:
    """An instruction with its measured score (mean metric on validation examples)."""

    instruction: str
    score: float


class InstructionProposer(ABC):
    """Writes candidate instructions from demonstrations (and, optionally, past scores).

    Every proposal costs LM calls through the LM the proposer was given, so budgets and the
    cache apply to proposals exactly as to evaluations.
    """

    @abstractmethod
    def propose(
        self,
        demos: Sequence[Example],
        n: int,
        history: Sequence[ScoredInstruction] = (),
        seed: int = 0,
    ) -> list[str]:
        """Return up to ``n`` raw candidate instructions (cleaned, not yet filtered)."""
