"""``cot_demos``: chain of thought with exemplars that carry reasoning: the model's own
reasoning on train inputs that the metric validated, or the task's ``rationale`` field.

At run time it is ``cot`` with those exemplars; what makes it its own strategy is where the
search takes its demos from (``demos = "rationale"``; see :mod:`promptlathe.optimizers`)."""

from __future__ import annotations

from promptlathe.strategies._protocol import register
from promptlathe.strategies.cot import DEMOS_TRIGGER, ChainOfThought


@register
class ChainOfThoughtDemos(ChainOfThought):
    name = "cot_demos"
    summary = "step-by-step reasoning shown by exemplars with validated rationales"
    demos = "rationale"
    trigger = DEMOS_TRIGGER
