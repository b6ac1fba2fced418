"""How the budget is divided (:class:`Plan`), computed from the config and the data sizes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from promptlathe._stats import binomial_lower
from promptlathe.errors import PromptlatheError

if TYPE_CHECKING:
    from promptlathe.optimizers._config import OptimizeConfig


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


def make_plan(
    cfg: OptimizeConfig, n_examples: int, n_test: int | None, scoring: bool = True
) -> Plan:
    """Split sizes and per-stage call allowances for a budget of ``cfg.budget_calls``.

    Validation is sized so that one full evaluation costs about a tenth of the budget (at
    least 16, at most 100 examples); confirmation about a fifteenth, for the top 2 plus the
    seed. Small tasks shrink every part, keeping at least ``max_shots + 4`` for training.
    """
    from promptlathe.optimizers._protocol import get_optimizer, parse_chain

    b = cfg.budget_calls
    n_test_carved = 0 if n_test is not None else max(1, round(0.25 * n_examples))
    avail = n_examples - n_test_carved
    n_val = cfg.val_size or min(100, max(16, b // 10))
    n_confirm = cfg.confirm_size if cfg.confirm_size is not None else min(60, max(10, b // 15))
    min_train = cfg.max_shots + 4
    if n_val + n_confirm + min_train > avail:  # small task: shrink proportionally
        spare = max(0, avail - min_train)
        n_val = max(1, min(n_val, round(spare * 0.6)))
        n_confirm = max(0, min(n_confirm, spare - n_val))
    if n_val < 4 or avail - n_val - n_confirm < 2:
        raise PromptlatheError(
            f"{cfg.task}: {n_examples} examples are too few to split into train, validation "
            "and confirmation; give more data or a separate --test file"
        )
    n_train = avail - n_val - n_confirm
    confirm_top = (2 if b >= 150 else 1) if n_confirm else 0
    n_boot = min(max(0, n_train - cfg.max_shots), max(4, b // 25), 32) if cfg.max_shots else 0
    # cot_demos walks train inputs until k rationales validate; a tenth of the budget at most
    n_boot_rationale = (
        min(max(0, n_train - cfg.max_shots), max(3 * cfg.max_shots, b // 10), 64)
        if cfg.max_shots
        else 0
    )
    n_screen = 3 if scoring and b >= 300 else 0
    plan = Plan(
        n_train=n_train,
        n_val=n_val,
        n_confirm=n_confirm,
        n_test=n_test if n_test is not None else n_test_carved,
        n_boot=n_boot,
        n_boot_rationale=n_boot_rationale,
        n_screen_demos=n_screen,
        confirm_top=confirm_top,
        rungs=rungs_for_plan(n_val),
        budget=b,
    )
    # What the stages set aside before any search (e.g. writing instructions).
    aside: dict[str, int] = {}
    for stage in (get_optimizer(n) for n in parse_chain(cfg.optimizer)):
        aside.update(stage.set_aside(b, n_screen))
    plan.stages = {
        "bootstrap": n_boot,
        **aside,
        "confirm": plan.reserve_confirm,
        "search": max(0, b - n_boot - sum(aside.values()) - plan.reserve_confirm),
    }
    if plan.stages["search"] < n_val:
        raise PromptlatheError(
            f"--budget-calls {b} leaves {plan.stages['search']} calls for the search, less than "
            f"one validation pass ({n_val}); raise the budget or lower --val-size"
        )
    return plan


def rungs_for_plan(n_val: int) -> list[int]:
    from promptlathe.optimizers._racing import rungs_for

    return rungs_for(n_val, first=min(8, n_val))
