"""Which step answers an input: a threshold per step but the last, on the step's confidence
(FrugalGPT's rule) or on a learned gate's probability that the step is already right; an
input stops at the first step whose value reaches its threshold, and the last step always
answers.

Everything here works on answers already computed for every step and every example, so a
policy is fitted and judged without a model: :func:`route` replays it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations, product

import numpy as np

from promptlathe.cascade._answers import StepAnswer
from promptlathe.cascade._gate import Gate, features, fit_gate

MAX_THRESHOLDS = 40
"""Thresholds tried per step (quantiles of its values)."""

MAX_COMBINATIONS = MAX_THRESHOLDS**2
"""Threshold combinations tried per ordered subset of steps: a cascade of 3 steps tries 40
thresholds per step, one of 4 steps 11 (a model's cheaper prompt makes 4 steps of 2 models)."""


def thresholds_per_step(size: int) -> int:
    """Thresholds tried per step in a cascade of ``size`` steps."""
    if size < 2:
        return 0
    return max(2, min(MAX_THRESHOLDS, int(MAX_COMBINATIONS ** (1 / (size - 1)) + 1e-9)))


@dataclass(frozen=True)
class Policy:
    """Steps tried in order (indices into the cascade's steps), a threshold for each but the
    last, and for each but the last an optional learned gate (``None``: the threshold is on
    the bare confidence)."""

    steps: tuple[int, ...]
    thresholds: tuple[float, ...] = ()
    gates: tuple[Gate | None, ...] = ()

    def __post_init__(self) -> None:
        if not self.steps or len(self.thresholds) != len(self.steps) - 1:
            raise ValueError("a policy needs a threshold for each step but the last")
        if self.gates and len(self.gates) != len(self.thresholds):
            raise ValueError("a policy's gates go with its thresholds")

    @property
    def single(self) -> bool:
        return len(self.steps) == 1

    @property
    def learned(self) -> bool:
        return any(g is not None for g in self.gates)

    def gate(self, j: int) -> Gate | None:
        return self.gates[j] if self.gates else None


def value(answer: StepAnswer, previous: StepAnswer | None, gate: Gate | None) -> float:
    """What a step's threshold is compared with: the answer's confidence, or its gate's
    probability that the answer is right."""
    return answer.confidence if gate is None else gate.prob(features(answer, previous))


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
        cost, prev = 0.0, None
        for j, step in enumerate(policy.steps):
            a = answers[step][i]
            last = j == len(policy.steps) - 1
            cost += a.cost_at(last)
            if last or value(a, prev, policy.gate(j)) >= policy.thresholds[j]:
                by.append(step)
                got.append(float(scores[step][i]))
                paid.append(cost)
                break
            prev = a
    return Routed(by, got, paid)


def _grid(values: Sequence[float], limit: int = MAX_THRESHOLDS) -> list[float]:
    """Thresholds worth trying for one step: midway between each two neighbouring distinct
    values (a threshold at or below the lowest keeps every answer: that is the step alone;
    midway, a value computed again on new data with rounding differences falls on the same
    side), thinned to quantiles."""
    distinct = sorted(set(values))
    mids = [(a + b) / 2 for a, b in zip(distinct, distinct[1:], strict=False)]
    if len(mids) > limit:
        idx = np.linspace(0, len(mids) - 1, limit).round().astype(int)
        mids = [mids[k] for k in sorted(set(idx.tolist()))]
    return mids


def gates_for(
    steps: Sequence[int],
    answers: Sequence[Sequence[StepAnswer]],
    scores: Sequence[Sequence[float]],
) -> tuple[Gate, ...]:
    """A gate for each step of ``steps`` but the last, fitted on every example (each step's
    features with the previous step of ``steps`` as its previous answer)."""
    out = []
    for j, s in enumerate(steps[:-1]):
        prev = steps[j - 1] if j else None
        x = [
            features(answers[s][i], answers[prev][i] if prev is not None else None)
            for i in range(len(answers[s]))
        ]
        out.append(fit_gate(x, [sc >= 1.0 for sc in scores[s]]))
    return tuple(out)


def candidate_policies(
    answers: Sequence[Sequence[StepAnswer]],
    scores: Sequence[Sequence[float]] | None = None,
) -> list[Policy]:
    """Every single step, and every ordered subset of two or more steps (in the given order,
    cheapest first) with every combination of its steps' thresholds; with ``scores``, the
    same subsets again with learned gates (fitted on these examples) in place of the bare
    confidences."""
    out = [Policy((s,)) for s in range(len(answers))]
    for size in range(2, len(answers) + 1):
        limit = thresholds_per_step(size)
        for steps in combinations(range(len(answers)), size):
            grids = [_grid([a.confidence for a in answers[s]], limit) for s in steps[:-1]]
            out += [Policy(steps, tuple(t)) for t in product(*grids)]
            if scores is None:
                continue
            gates = gates_for(steps, answers, scores)
            grids = []
            for j, s in enumerate(steps[:-1]):
                prev = steps[j - 1] if j else None
                grids.append(
                    _grid(
                        [
                            value(
                                answers[s][i],
                                answers[prev][i] if prev is not None else None,
                                gates[j],
                            )
                            for i in range(len(answers[s]))
                        ],
                        limit,
                    )
                )
            out += [Policy(steps, tuple(t), gates) for t in product(*grids)]
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
    learned: bool | None = False,
) -> tuple[Point, list[Point]]:
    """The chosen policy and the Pareto front (cost up, accuracy up) on these examples.

    The choice: with ``max_cost``, the most accurate policy whose mean cost is within it;
    else the cheapest policy whose accuracy is within ``tolerance`` of the best any policy
    reaches. Ties go to the cheaper, then to fewer steps. ``learned``: ``False`` tries
    thresholds on the bare confidences only, ``True`` learned gates only, ``None`` both.
    """
    policies = candidate_policies(answers, scores if learned is not False else None)
    if learned:
        policies = [p for p in policies if p.single or p.learned]
    points = [Point(p, (r := route(p, answers, scores)).accuracy, r.cost) for p in policies]
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


CV_FOLDS = 5
"""Folds of the cross-validation that picks a kind of policy on the fit split."""


def cross_validate(
    answers: Sequence[Sequence[StepAnswer]],
    scores: Sequence[Sequence[float]],
    *,
    learned: bool,
    tolerance: float = 0.0,
    max_cost: float | None = None,
    folds: int = CV_FOLDS,
) -> Routed | None:
    """How :func:`fit` of one kind does on examples it was not fitted on: each of ``folds``
    interleaved folds is routed by the policy fitted on the others (thresholds and gates
    alike); the held-out routes of all examples, in their order. ``None`` with fewer than two
    examples per fold."""
    n = len(answers[0])
    k = min(folds, n // 2)
    if k < 2:
        return None
    by, got, paid = [0] * n, [0.0] * n, [0.0] * n
    for f in range(k):
        train = [i for i in range(n) if i % k != f]
        held = [i for i in range(n) if i % k == f]
        point, _ = fit(
            [[row[i] for i in train] for row in answers],
            [[row[i] for i in train] for row in scores],
            tolerance=tolerance, max_cost=max_cost, learned=learned,
        )  # fmt: skip
        r = route(
            point.policy,
            [[row[i] for i in held] for row in answers],
            [[row[i] for i in held] for row in scores],
        )
        for j, i in enumerate(held):
            by[i], got[i], paid[i] = r.answered_by[j], r.scores[j], r.costs[j]
    return Routed(by, got, paid)


def pareto(points: Sequence[Point]) -> list[Point]:
    """The points no other point beats on both cost (lower) and accuracy (higher), by cost."""
    out: list[Point] = []
    for p in sorted(points, key=lambda p: (p.cost, -p.accuracy, len(p.policy.steps))):
        if not out or p.accuracy > out[-1].accuracy + 1e-12:
            out.append(p)
    return out
