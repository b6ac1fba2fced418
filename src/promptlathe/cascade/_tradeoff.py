"""The cost–accuracy picture on the test split, and the two numbers the cascade literature
quotes, each with a paired bootstrap interval:

- **cost at the best single model's accuracy**: the cheapest cascade policy whose test
  accuracy is at least the best single step's, as a share of that step's cost;
- **accuracy at the best single model's cost**: the most accurate cascade policy costing no
  more than the best single step, in points above it.

Both are read off the test split's curve over every policy the fit tried (the policy is
picked on test: they describe the trade-off, they are not held-out claims; the kept cascade's
held-out figures are the judge split's). The intervals resample the test examples, keeping
each example's pair of answers together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from promptlathe.cascade._policy import Policy, Routed

N_BOOT = 2000


@dataclass(frozen=True)
class Figure:
    """One policy against the best single step on test: accuracy difference (points of
    accuracy, as a fraction) and cost ratio, each with a 95 % paired bootstrap interval."""

    policy: str
    accuracy: float
    cost: float
    diff: float
    diff_ci: tuple[float, float]
    cost_ratio: float
    cost_ratio_ci: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "accuracy": self.accuracy,
            "cost": self.cost,
            "accuracy_diff": self.diff,
            "accuracy_diff_ci95": list(self.diff_ci),
            "cost_ratio": self.cost_ratio,
            "cost_ratio_ci95": list(self.cost_ratio_ci),
        }


def paired(name: str, a: Routed, ref: Routed, seed: int = 0, n_boot: int = N_BOOT) -> Figure:
    """``a`` against ``ref`` on the same examples: accuracy difference and cost ratio with
    percentile intervals from resampling the examples."""
    sa, sr = np.asarray(a.scores), np.asarray(ref.scores)
    ca, cr = np.asarray(a.costs), np.asarray(ref.costs)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(sa), size=(n_boot, len(sa)))
    diffs = sa[idx].mean(axis=1) - sr[idx].mean(axis=1)
    denom = cr[idx].mean(axis=1)
    ratios = np.where(denom > 0, ca[idx].mean(axis=1) / np.where(denom > 0, denom, 1.0), np.inf)
    ratio = float(ca.mean() / cr.mean()) if cr.mean() > 0 else float("inf")
    return Figure(
        name,
        a.accuracy,
        a.cost,
        float(sa.mean() - sr.mean()),
        (float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))),
        ratio,
        (float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))),
    )


@dataclass
class Tradeoff:
    """The test split's cost–accuracy picture: every single step, every cascade policy the
    fit tried, the front, and the two figures (``None`` where no cascade policy qualifies)."""

    singles: list[tuple[str, float, float]]
    """(name, cost, accuracy) of each single step."""
    cascades: list[tuple[float, float, bool]]
    """(cost, accuracy, learned) of every cascade policy."""
    front: list[tuple[float, float]]
    best_single: str
    kept: tuple[str, float, float] | None
    cost_at_accuracy: Figure | None
    accuracy_at_cost: Figure | None

    def sentences(self) -> list[str]:
        out = []
        c = self.cost_at_accuracy
        if c is None:
            out.append(f"No cascade policy reaches {self.best_single}'s test accuracy.")
        else:
            out.append(
                f"At {self.best_single}'s test accuracy, a cascade costs {c.cost_ratio:.0%} of "
                f"it (95 % CI {c.cost_ratio_ci[0]:.0%}-{c.cost_ratio_ci[1]:.0%}; accuracy "
                f"{_pts(c.diff)}, CI {_pts(c.diff_ci[0])} to {_pts(c.diff_ci[1])})."
            )
        a = self.accuracy_at_cost
        if a is not None:
            out.append(
                f"At no more than {self.best_single}'s cost, a cascade's accuracy differs by "
                f"{_pts(a.diff)} (95 % CI {_pts(a.diff_ci[0])} to {_pts(a.diff_ci[1])}) at "
                f"{a.cost_ratio:.0%} of its cost."
            )
        out.append(
            "(Read off the test curve: the policy is picked on test, so these describe the "
            "trade-off; the kept cascade was chosen without the test split.)"
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "best_single": self.best_single,
            "cost_at_best_single_accuracy": self.cost_at_accuracy.to_dict()
            if self.cost_at_accuracy
            else None,
            "accuracy_at_best_single_cost": self.accuracy_at_cost.to_dict()
            if self.accuracy_at_cost
            else None,
            "singles": [{"policy": n, "cost": c, "accuracy": a} for n, c, a in self.singles],
            "front": [{"cost": c, "accuracy": a} for c, a in self.front],
            "cascades": [
                {"cost": c, "accuracy": a, "learned": learned} for c, a, learned in self.cascades
            ],
            "kept": None
            if self.kept is None
            else {"policy": self.kept[0], "cost": self.kept[1], "accuracy": self.kept[2]},
            "sentences": self.sentences(),
        }


def tradeoff(
    names: Sequence[str],
    routed: dict[Policy, Routed],
    kept: Policy,
    describe: Any,
) -> Tradeoff:
    """The picture from every policy replayed on test (``routed``; single steps included)."""
    singles = {p: r for p, r in routed.items() if p.single}
    cascades = {p: r for p, r in routed.items() if not p.single}
    best_p = min(singles, key=lambda p: (-singles[p].accuracy, singles[p].cost))
    best = singles[best_p]
    pts = sorted((r.cost, r.accuracy) for r in routed.values())
    front: list[tuple[float, float]] = []
    for c, a in pts:
        if not front or a > front[-1][1] + 1e-12:
            front.append((c, a))
    reach = [p for p, r in cascades.items() if r.accuracy >= best.accuracy - 1e-12]
    cheap = [p for p, r in cascades.items() if r.cost <= best.cost + 1e-15]
    at_acc = min(reach, key=lambda p: (cascades[p].cost, -cascades[p].accuracy), default=None)
    at_cost = min(cheap, key=lambda p: (-cascades[p].accuracy, cascades[p].cost), default=None)
    return Tradeoff(
        singles=[(names[p.steps[0]], r.cost, r.accuracy) for p, r in singles.items()],
        cascades=[(r.cost, r.accuracy, p.learned) for p, r in cascades.items()],
        front=front,
        best_single=names[best_p.steps[0]],
        kept=(describe(kept), routed[kept].cost, routed[kept].accuracy) if kept in routed else None,
        cost_at_accuracy=paired(describe(at_acc), cascades[at_acc], best) if at_acc else None,
        accuracy_at_cost=paired(describe(at_cost), cascades[at_cost], best) if at_cost else None,
    )


def _pts(x: float) -> str:
    return f"{x * 100:+.1f} points"
