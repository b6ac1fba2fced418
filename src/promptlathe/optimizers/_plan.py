"""How the budget is divided (:class:`Plan`), computed from the config and the data sizes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from promptlathe._stats import binomial_lower

SIGN_TEST_MIN = 6
"""Differing examples an exact two-sided sign test needs, all one way, for p < 0.05
(2 · 0.5**6 = 0.031; 5 give 0.0625)."""

TOO_CLOSE = 0.25
"""Above this smallest detectable difference the plan says the budget cannot tell candidates
apart (a fifth of the examples, or more, must change hands)."""


@dataclass
class Plan:
    """How the budget is divided, computed from the config and the data sizes."""

    n_train: int
    n_val: int
    n_confirm: int
    n_test: int
    n_boot: int
    n_boot_rationale: int
    n_screen_demos: int
    confirm_top: int
    rungs: list[int]
    budget: int
    stages: dict[str, int] = field(default_factory=dict)

    @property
    def reserve_confirm(self) -> int:
        return (self.confirm_top + 1) * self.n_confirm

    @property
    def search_limit(self) -> int:
        """Calls available before confirmation."""
        return self.budget - self.reserve_confirm

    def test_calls(self, winner_k: int = 1, seed_k: int = 1) -> int:
        """Calls of the test evaluation: winner and seed, ``k`` calls per input each (a
        strategy that samples k times per input makes k)."""
        return (winner_k + seed_k) * self.n_test

    def describe(self, search_lines: list[str], winner_k: int = 1, seed_k: int = 1) -> list[str]:
        """The plan as printed before a run; ``search_lines`` are the optimizer's stages,
        ``winner_k`` the most calls per input a winner may make."""
        s = self.stages
        test = self.test_calls(winner_k, seed_k)
        sampled = f"; up to {winner_k} calls per input for the winner" if winner_k > 1 else ""
        more = "; a leader that samples takes more from the search" if sampled else ""
        return [
            f"data: {self.n_train} train · {self.n_val} validation · {self.n_confirm} "
            f"confirmation · {self.n_test} test",
            f"budget: {self.budget} LM calls",
            *self._evidence(),
            *search_lines,
            f"  confirmation         ≤ {s['confirm']:>5} calls (top {self.confirm_top} + seed "
            f"on {self.n_confirm} examples{more})",
            *self._certifies(),
            f"  test (outside budget) {'≤' if sampled else ' '}{test:>5} calls (winner and seed"
            f"{sampled})",
        ]

    @property
    def smallest_difference(self) -> float:
        """The smallest accuracy difference between two candidates that a paired test can
        find on validation: an exact sign test at α = 0.05 needs at least
        :data:`SIGN_TEST_MIN` examples that differ, all one way."""
        return min(1.0, SIGN_TEST_MIN / self.n_val) if self.n_val else 1.0

    def _evidence(self) -> list[str]:
        """What validation can tell apart at this budget: the trade between candidates tried
        and examples each is judged on."""
        passes = self.stages.get("search", 0) // self.n_val if self.n_val else 0
        gap = self.smallest_difference
        lines = [
            f"  evidence: {self.n_val} validation examples (one is {100 / self.n_val:.1f} "
            f"points); the search affords about {passes} full passes; two candidates can be "
            f"told apart only if they differ by ≥ {gap * 100:.0f} points (paired sign test, "
            "α = 0.05)"
        ]
        if gap > TOO_CLOSE:
            lines.append(
                f"  note: at this budget, candidates closer than {gap * 100:.0f} points look "
                "alike on validation; raise --budget-calls, or --val-size (fewer candidates, "
                "each judged on more examples)"
            )
        return lines

    def _certifies(self, delta: float = 0.05) -> list[str]:
        """What the confirmation split can certify: the accuracy a perfect finalist, and one
        right on three examples in four, would be certified at (95 %, the choice among the
        finalists paid for)."""
        n = self.n_confirm
        if not n:
            return ["    (no confirmation split: the winner gets no certificate)"]
        each = delta / (self.confirm_top + 1)
        perfect = binomial_lower(n, n, each)
        typical = binomial_lower(round(0.75 * n), n, each)
        return [
            f"    certifies accuracy ≥ {perfect:.2f} for a perfect finalist, ≥ {typical:.2f} "
            f"for one right on 75 % (95 %; raise --confirm-size to certify more)"
        ]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["search_limit"] = self.search_limit
        return d


def rungs_for_plan(n_val: int) -> list[int]:
    from promptlathe.optimizers._racing import rungs_for

    return rungs_for(n_val, first=min(8, n_val))
