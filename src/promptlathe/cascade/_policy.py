"""Which step answers an input: confidence thresholds, fitted on one split (FrugalGPT's
rule: a step's answer is kept when its confidence reaches the step's threshold, else the input
goes on to the next step; the last step always answers).

Everything here works on answers already computed for every step and every example, so a
policy is fitted and judged without a model: :func:`route` replays it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations, product

import numpy as np

from promptlathe.cascade._answers import StepAnswer

MAX_THRESHOLDS = 40
"""Thresholds tried per step (quantiles of its confidences): bounds the search at 3 steps."""


@dataclass(frozen=True)
class Policy:
    """Steps tried in order (indices into the cascade's steps) and a threshold for each but
    the last: an input stops at the first step whose confidence is at least its threshold."""

    steps: tuple[int, ...]
    thresholds: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.steps or len(self.thresholds) != len(self.steps) - 1:
            raise ValueError("a policy needs a threshold for each step but the last")

    @property
    def single(self) -> bool:
        return len(self.steps) == 1


@dataclass(frozen=True)
class Routed:
    """A policy replayed on examples: per example, the step that answered, the answer's score
    and the cost of every step it went through."""

    answered_by: list[int]
    scores: list[float]
    costs: list[float]

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.scores)) if self.scores else 0.0

    @property
    def cost(self) -> float:
        """Mean cost per example."""
        return float(np.mean(self.costs)) if self.costs else 0.0

    def escalated(self, first: int) -> float:
        """The share of examples not answered by the policy's first step ``first``."""
        return float(np.mean([s != first for s in self.answered_by])) if self.answered_by else 0.0


def route(
    policy: Policy, answers: Sequence[Sequence[StepAnswer]], scores: Sequence[Sequence[float]]
) -> Routed:
    """Replay ``policy`` on examples whose every step's answer (``answers[step][example]``)
    and score (``scores[step][example]``) are known."""
    n = len(answers[policy.steps[0]])
    by, got, paid = [], [], []
    for i in range(n):
        cost = 0.0
        for j, step in enumerate(policy.steps):
            a = answers[step][i]
            cost += a.cost
            last = j == len(policy.steps) - 1
            if last or a.confidence >= policy.thresholds[j]:
                by.append(step)
                got.append(float(scores[step][i]))
                paid.append(cost)
                break
    return Routed(by, got, paid)


def _grid(conf: Sequence[float]) -> list[float]:
    """Thresholds worth trying for one step: its distinct confidences above the lowest (a
    threshold at or below it keeps every answer: that is the step alone), thinned to
    quantiles."""
    values = sorted(set(conf))[1:]
    if len(values) > MAX_THRESHOLDS:
        idx = np.linspace(0, len(values) - 1, MAX_THRESHOLDS).round().astype(int)
        values = [values[k] for k in sorted(set(idx.tolist()))]
    return values


def candidate_policies(answers: Sequence[Sequence[StepAnswer]]) -> list[Policy]:
    """Every single step, and every ordered subset of two or more steps (in the given order,
    cheapest first) with every combination of its steps' thresholds."""
    out = [Policy((s,)) for s in range(len(answers))]
    for size in range(2, len(answers) + 1):
        for steps in combinations(range(len(answers)), size):
            grids = [_grid([a.confidence for a in answers[s]]) for s in steps[:-1]]
            out += [Policy(steps, tuple(t)) for t in product(*grids)]
    return out


@dataclass(frozen=True)
class Point:
    policy: Policy
    accuracy: float
    cost: float


def fit(
    answers: Sequence[Sequence[StepAnswer]],
    scores: Sequence[Sequence[float]],
    *,
    tolerance: float = 0.0,
    max_cost: float | None = None,
) -> tuple[Point, list[Point]]:
    """The chosen policy and the Pareto front (cost up, accuracy up) on these examples.

    The choice: with ``max_cost``, the most accurate policy whose mean cost is within it;
    else the cheapest policy whose accuracy is within ``tolerance`` of the best any policy
    reaches. Ties go to the cheaper, then to fewer steps.
    """
    points = [
        Point(p, (r := route(p, answers, scores)).accuracy, r.cost)
        for p in candidate_policies(answers)
    ]
    front = pareto(points)
    if max_cost is not None:
        within = [p for p in points if p.cost <= max_cost + 1e-12]
        if not within:
            within = [min(points, key=lambda p: p.cost)]
        chosen = min(within, key=lambda p: (-p.accuracy, p.cost, len(p.policy.steps)))
    else:
        best = max(p.accuracy for p in points)
        good = [p for p in points if p.accuracy >= best - tolerance - 1e-12]
        chosen = min(good, key=lambda p: (p.cost, -p.accuracy, len(p.policy.steps)))
    return chosen, front


def pareto(points: Sequence[Point]) -> list[Point]:
    """The points no other point beats on both cost (lower) and accuracy (higher), by cost."""
    out: list[Point] = []
    for p in sorted(points, key=lambda p: (p.cost, -p.accuracy, len(p.policy.steps))):
        if not out or p.accuracy > out[-1].accuracy + 1e-12:
            out.append(p)
    return out
