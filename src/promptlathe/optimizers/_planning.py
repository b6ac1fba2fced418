"""How a run's budget is divided (:func:`make_plan`): split sizes from the data and the
budget, and what each stage of the chain sets aside before the search."""

from __future__ import annotations

from promptlathe.errors import PromptlatheError
from promptlathe.optimizers._config import OptimizeConfig
from promptlathe.optimizers._plan import Plan, rungs_for_plan
from promptlathe.optimizers._protocol import get_optimizer, parse_chain


def make_plan(
    cfg: OptimizeConfig, n_examples: int, n_test: int | None, scoring: bool = True
) -> Plan:
    """Split sizes and per-stage call allowances for a budget of ``cfg.budget_calls``.

    Validation is sized so that one full evaluation costs about a tenth of the budget (at
    least 16, at most 100 examples); confirmation about a fifteenth, for the top 2 plus the
    seed. Small tasks shrink every part, keeping at least ``max_shots + 4`` for training.
    """
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
