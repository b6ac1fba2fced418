"""Fit a cascade on one split, judge it on another, and report it once on the test split.

Every step answers every example of the fit and judge splits (so any policy can be replayed
without a model); the thresholds, and which kind of policy to use (by cross-validation), are
chosen on the fit split only; the judge split, which the fitting never saw, makes one choice:
between the cascade and the single step that was best on the fit split, with a paired
comparison and the costs side by side; the test split, when there is one, is answered once,
at the end, by every step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from promptlathe._stats import wilson_interval
from promptlathe.analysis import Comparison, compare
from promptlathe.cascade._answers import Step, StepAnswer, answer_step
from promptlathe.cascade._policy import (
    Point,
    Policy,
    Routed,
    candidate_policies,
    cross_validate,
    fit,
    route,
)
from promptlathe.cascade._tradeoff import Tradeoff, tradeoff
from promptlathe.evaluator import Evaluator
from promptlathe.metrics import Metric
from promptlathe.tasks import Example

Say = Callable[[str, int, int], None]
"""``say(stage, done, total)``: examples answered so far by a step on a split."""

CHUNK = 16
"""Examples a step answers per call of :func:`answer_split` (progress is reported between)."""


@dataclass
class Split:
    """Every step's answers and scores on one split (``answers[step][example]``)."""

    answers: list[list[StepAnswer]]
    scores: list[list[float]]

    def routed(self, policy: Policy) -> Routed:
        return route(policy, self.answers, self.scores)


def answer_split(
    steps: Sequence[Step],
    evaluators: Sequence[Evaluator],
    metric: Metric,
    examples: Sequence[Example],
    say: Say,
    name: str,
) -> Split:
    answers, scores = [], []
    for step, ev in zip(steps, evaluators, strict=True):
        stage = f"{name} · {step.model}"
        got: list[StepAnswer] = []
        say(stage, 0, len(examples))
        for start in range(0, len(examples), CHUNK):
            chunk = examples[start : start + CHUNK]
            got += answer_step(step, ev, [ex.input for ex in chunk])
            say(stage, len(got), len(examples))
        answers.append(got)
        scores.append(
            [float(metric.score(a.answer, ex.targets)) for a, ex in zip(got, examples, strict=True)]
        )
    return Split(answers, scores)


@dataclass
class Fitted:
    """A fitted cascade and the evidence for it.

    Attributes:
        steps: every step given, cheapest first (by mean cost on the fit split).
        chosen: the cascade fitted on the fit split that the judge split preferred (of the
            thresholds on confidences and the learned gates; a single step if neither fit
            found a cascade worth it).
        front: the fit split's Pareto front of (cost, accuracy) over every policy tried.
        reference: the single step most accurate on the fit split (ties: the cheaper).
        kept: what the judge split kept: ``chosen`` if it is a cascade that was at least as
            accurate (within the tolerance) and cheaper there, else ``reference``.
        judge: the judge split's comparison of ``chosen`` with ``reference``.
        test: per policy name, accuracy, its Wilson interval and mean cost on the test split.
        n_fit: examples in the fit split.
        tradeoff: the test split's cost–accuracy picture (with a test split).
    """

    steps: list[Step]
    chosen: Point
    front: list[Point]
    reference: int
    kept: Policy
    judge: dict[str, Any]
    comparison: Comparison | None
    test: dict[str, Any] = field(default_factory=dict)
    test_comparison: Comparison | None = None
    n_fit: int = 0
    tradeoff: Tradeoff | None = None
    fit_single: list[float] = field(default_factory=list)

    @property
    def saves_nothing(self) -> bool:
        return self.kept.single

    def front_single(self, step: int) -> float | None:
        """The fit split's accuracy of ``step`` alone (``None`` if it is not recorded)."""
        return self.fit_single[step] if step < len(self.fit_single) else None

    def label(self, step: int) -> str:
        """A step's name: its model's, with its prompt's hash when two steps share a model."""
        s = self.steps[step]
        shared = sum(o.model == s.model for o in self.steps) > 1
        return f"{s.model} ({s.saved.prompt.hash[:8]})" if shared else s.model

    def describe(self, policy: Policy) -> str:
        names = [self.label(s) for s in policy.steps]
        if policy.single:
            return names[0]
        return (
            " -> ".join(
                f"{n} (keep at {'P(right)' if policy.gate(j) else 'confidence'} >= {t:.3f})"
                for j, (n, t) in enumerate(zip(names[:-1], policy.thresholds, strict=True))
            )
            + f" -> {names[-1]}"
        )

    def verdict(self) -> str:
        ref = self.label(self.reference)
        if self.kept.single:
            if self.chosen.policy.single:
                why = "no cascade beat the best single step on the fit split"
            else:
                why = "on the judge split the cascade was not both as accurate and cheaper"
            return f"The cascade saves nothing here ({why}): the winner is {ref} alone."
        j = self.judge
        return (
            f"The cascade kept {j['cascade_accuracy']:.0%} accuracy against {ref}'s "
            f"{j['reference_accuracy']:.0%} at {j['cost_ratio']:.0%} of its cost on the judge "
            f"split (n = {j['n']}); {j['escalated']:.0%} of inputs went past the first step."
        )

    def record(self, metric: str) -> dict[str, Any]:
        """What a cascade file says beside its steps (its scores and how it was fitted): all
        the page (``cascade.html``) is drawn from, so it can be drawn again from the file."""
        comparison = None
        if self.comparison is not None:
            c = self.comparison
            comparison = {"diff": c.diff, "ci95": list(c.boot_ci), "mcnemar_p": c.mcnemar_p}
        return {
            "metric": metric,
            "kept": self.describe(self.kept),
            "verdict": self.verdict(),
            "saves_nothing": self.saves_nothing,
            "fit": {
                "n": self.n_fit,
                "steps": [
                    {
                        "name": self.label(i),
                        "price": s.price.to_dict(),
                        "accuracy": self.front_single(i),
                    }
                    for i, s in enumerate(self.steps)
                ],
            },
            "judge": {
                **self.judge,
                "chosen": self.describe(self.chosen.policy),
                "reference": self.label(self.reference),
                "comparison": comparison,
            }
            if self.judge
            else {},
            "test": self.test,
            "tradeoff": self.tradeoff.to_dict() if self.tradeoff else None,
        }


def fit_cascade(
    steps: Sequence[Step],
    evaluators: Sequence[Evaluator],
    metric: Metric,
    fit_examples: Sequence[Example],
    judge_examples: Sequence[Example],
    test_examples: Sequence[Example] = (),
    *,
    tolerance: float = 0.0,
    max_cost: float | None = None,
    say: Say = lambda _stage, _done, _total: None,
) -> Fitted:
    """Fit two cascades on ``fit_examples`` (thresholds on the steps' confidences, and on
    learned gates), take the kind that does better on held-out folds of ``fit_examples``
    (cross-validation; ties: thresholds), and keep its cascade only if on ``judge_examples``
    it is as accurate as the best single step (within ``tolerance``) and cheaper; answer
    ``test_examples`` once (see the module's docstring)."""
    fit_split = answer_split(steps, evaluators, metric, fit_examples, say, "fit")
    order = sorted(range(len(steps)), key=lambda s: np.mean([a.cost for a in fit_split.answers[s]]))
    steps = [steps[s] for s in order]
    evaluators = [evaluators[s] for s in order]
    fit_split = Split([fit_split.answers[s] for s in order], [fit_split.scores[s] for s in order])
    kinds = {
        kind: fit(fit_split.answers, fit_split.scores, tolerance=tolerance, max_cost=max_cost,
                  learned=learned)[0]
        for kind, learned in (("thresholds", False), ("learned", True))
    }  # fmt: skip
    _, front = fit(fit_split.answers, fit_split.scores, learned=None)
    singles = [fit_split.routed(Policy((s,))) for s in range(len(steps))]
    reference = min(range(len(steps)), key=lambda s: (-singles[s].accuracy, singles[s].cost))
    ref_policy = Policy((reference,))
    kept, judge, comparison = ref_policy, {}, None
    chosen = kinds["thresholds"]
    cascades = {k: p for k, p in kinds.items() if not p.policy.single}
    cv: dict[str, Routed] = {}
    if len(cascades) > 1:  # the kind that does better on held-out folds of the fit split
        cv = _cross_validated(fit_split, tolerance, max_cost)
        kind = (
            min(cv, key=lambda k: (-cv[k].accuracy, cv[k].cost, k != "thresholds"))
            if cv
            else "thresholds"  # too few examples to fold
        )
        cascades = {kind: cascades[kind]}
    if cascades:
        judge_split = answer_split(steps, evaluators, metric, judge_examples, say, "judge")
        ref = judge_split.routed(ref_policy)
        kind, chosen = next(iter(cascades.items()))
        casc = judge_split.routed(chosen.policy)
        comparison = compare(casc.scores, ref.scores, names=("the cascade", "the best single step"))
        judge = {
            "n": len(judge_examples),
            "policy": kind,
            "cascade_accuracy": casc.accuracy,
            "reference_accuracy": ref.accuracy,
            "cascade_cost": casc.cost,
            "reference_cost": ref.cost,
            "cost_ratio": casc.cost / ref.cost if ref.cost > 0 else float("inf"),
            "escalated": casc.escalated(chosen.policy.steps[0]),
            "cross_validated": {k: {"accuracy": r.accuracy, "cost": r.cost} for k, r in cv.items()},
        }
        if casc.accuracy >= ref.accuracy - tolerance - 1e-12 and casc.cost < ref.cost:
            kept = chosen.policy
    out = Fitted(
        steps, chosen, front, reference, kept, judge, comparison, n_fit=len(fit_examples),
        fit_single=[r.accuracy for r in singles],
    )  # fmt: skip
    if test_examples:
        test_split = answer_split(steps, evaluators, metric, test_examples, say, "test")
        out.test = test_table(out, test_split)
        policies = candidate_policies(fit_split.answers, fit_split.scores)
        out.tradeoff = tradeoff(
            [out.label(s) for s in range(len(steps))],
            {p: test_split.routed(p) for p in [*policies, kept]},
            kept,
            out.describe,
        )
        if not kept.single:
            out.test_comparison = compare(
                test_split.routed(kept).scores,
                test_split.routed(ref_policy).scores,
                names=("the cascade", "the best single step"),
            )
    return out


def _cross_validated(split: Split, tolerance: float, max_cost: float | None) -> dict[str, Routed]:
    """Each kind's held-out routes of the fit split (empty if it is too small to fold)."""
    out = {}
    for kind, learned in (("thresholds", False), ("learned", True)):
        routed = cross_validate(
            split.answers, split.scores, learned=learned, tolerance=tolerance, max_cost=max_cost
        )
        if routed is None:
            return {}
        out[kind] = routed
    return out


def test_table(fitted: Fitted, split: Split) -> dict[str, Any]:
    """Accuracy (with its Wilson interval) and mean cost on the test split for every single
    step and for the fitted cascade, whether or not the judge split kept it (``kept`` says
    which policy the cascade file runs)."""
    rows: dict[str, Any] = {}
    policies = [Policy((s,)) for s in range(len(fitted.steps))]
    if not fitted.chosen.policy.single:
        policies.append(fitted.chosen.policy)
    for p in policies:
        r = split.routed(p)
        lo, hi = wilson_interval(sum(r.scores), len(r.scores))
        rows[fitted.describe(p)] = {
            "accuracy": r.accuracy,
            "ci95": [lo, hi],
            "cost": r.cost,
            "escalated": r.escalated(p.steps[0]) if not p.single else 0.0,
            "cascade": not p.single,
            "kept": p == fitted.kept,
        }
    return rows
