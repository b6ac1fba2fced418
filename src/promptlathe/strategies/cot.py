"""``cot``: zero-shot chain of thought: reason step by step, then a final answer line."""

from __future__ import annotations

from typing import ClassVar

from promptlathe.prompts import Prompt
from promptlathe.strategies._protocol import Call, Strategy, register, with_trigger

ANSWER_LINE = "Then finish with a last line of the form: So the answer is <answer>."
REASON_FIRST = (
    'Begin your reply with "Step 1:" and write your reasoning in a few short numbered steps; '
    "do not give the answer before them."
)
"""Where the reasoning goes. Asked only to "reason first" and then to end with the answer
line, qwen2.5-coder-0.5b mostly wrote that line first and reasoned after it, if at all: 1,662
of the 2,546 reasoned calls of its `--strategies all` runs on seven shared tasks began "So the
answer is". Told how to begin its reply, it reasons first."""
COT_TRIGGER = f"Before answering, reason step by step. {REASON_FIRST} {ANSWER_LINE}"
DEMOS_TRIGGER = (
    "Before answering, reason step by step: write out your reasoning first, in a few short "
    f"steps. {ANSWER_LINE}"
)
"""The trigger where exemplars show the reasoning (``cot_demos``). Told to begin with "Step
1:", the 0.5B dropped its exemplars' way of reasoning for its own numbered steps, and the mean
did not rise (0.200 against 0.233 over three tasks, 30 examples each: BBH object_counting
0.133 against 0.333, navigate 0.333 against 0.233, GSM8K 0.133 both)."""


@register
class ChainOfThought(Strategy):
    name = "cot"
    summary = "reason step by step, then a final answer line (one long call)"
    reasoning = True
    trigger: ClassVar[str] = COT_TRIGGER

    def calls(self, prompt: Prompt, query: str) -> list[Call]:
        return [Call(prompt, with_trigger(query, self.trigger), reasoning=True)]
