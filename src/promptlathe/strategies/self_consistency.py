"""``self_consistency`` (Wang et al., 2023): ``k`` reasoned samples at temperature > 0, the
majority of their final answers. ``k = 1`` is ``cot`` (one greedy chain), so the search tries
``k`` in 3 and 5."""

from __future__ import annotations

from collections.abc import Sequence

from promptlathe.prompts import Prompt
from promptlathe.strategies._protocol import (
    AnswerOf,
    Call,
    Strategy,
    majority,
    register,
    with_trigger,
)
from promptlathe.strategies.cot import COT_TRIGGER

TEMPERATURE = 0.7


@register
class SelfConsistency(Strategy):
    name = "self_consistency"
    summary = "k reasoned samples at temperature 0.7, majority vote over their answers"
    ks = (3, 5)
    reasoning = True

    def calls_per_input(self) -> int:
        return self.k

    def calls(self, prompt: Prompt, query: str) -> list[Call]:
        q = with_trigger(query, COT_TRIGGER)
        return [
            Call(prompt, q, sample=i, temperature=TEMPERATURE, reasoning=True)
            for i in range(self.k)
        ]

    def combine(self, calls: Sequence[Call], outputs: Sequence[str], answer_of: AnswerOf) -> str:
        """The first sample that gives the majority answer (its whole reasoning)."""
        return outputs[majority([answer_of(o) for o in outputs])]
