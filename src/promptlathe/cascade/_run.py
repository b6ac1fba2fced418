"""Run a cascade on new inputs, as it was evaluated: every input goes to the first step; an
answer whose confidence is below its step's threshold is not kept and the input goes on to
the next step; the last step always answers. A later step runs only on the inputs that reach
it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from promptlathe.cascade._answers import Step, StepAnswer, answer_step
from promptlathe.evaluator import Evaluator


@dataclass(frozen=True)
class CascadeAnswer:
    """One input's answer: the step that gave it (0-based), its confidence, and the cost of
    every step the input went through."""

    answer: str
    step: int
    confidence: float
    cost: float


def run_cascade(
    steps: Sequence[Step],
    thresholds: Sequence[float],
    evaluators: Sequence[Evaluator],
    queries: Sequence[str],
) -> list[CascadeAnswer]:
    """The cascade's answers to ``queries``, in order (``evaluators[i]`` runs ``steps[i]``)."""
    if len(thresholds) != len(steps) - 1 or len(evaluators) != len(steps):
        raise ValueError("a cascade needs an evaluator per step and a threshold for all but one")
    paid = [0.0] * len(queries)
    final: list[CascadeAnswer | None] = [None] * len(queries)
    open_ = list(range(len(queries)))
    for j, (step, ev) in enumerate(zip(steps, evaluators, strict=True)):
        if not open_:
            break
        answers: list[StepAnswer] = answer_step(step, ev, [queries[i] for i in open_])
        still = []
        for i, a in zip(open_, answers, strict=True):
            paid[i] += a.cost
            if j == len(steps) - 1 or a.confidence >= thresholds[j]:
                final[i] = CascadeAnswer(a.answer, j, a.confidence, paid[i])
            else:
                still.append(i)
        open_ = still
    return [a for a in final if a is not None]
