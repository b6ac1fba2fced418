"""``cot``: zero-shot chain of thought: reason step by step, then a final answer line."""

from __future__ import annotations

from typing import ClassVar

from promptlathe.prompts import Prompt
from promptlathe.strategies._protocol import Call, Strategy, register, with_trigger

ANSWER_LINE = "Then finish with a last line of the form: So the answer is <answer>."
COT_TRIGGER = (
    "Before answering, reason step by step: write out your reasoning first, in a few short "
    f"steps. {ANSWER_LINE}"
)


@register
class ChainOfThought(Strategy):
    name = "cot"
    summary = "reason step by step, then a final answer line (one long call)"
    reasoning = True
    trigger: ClassVar[str] = COT_TRIGGER

    def calls(self, prompt: Prompt, query: str) -> list[Call]:
        return [Call(prompt, with_trigger(query, self.trigger), reasoning=True)]
