"""The words of the plan printed before a run: which model proposes and why, which strategies
are searched, and how the stages of the optimizer chain spend the budget."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Protocol

from promptlathe.lms import MODELS, STRONG_PROPOSER
from promptlathe.optimizers._config import OptimizeConfig
from promptlathe.optimizers._plan import Plan
from promptlathe.optimizers._protocol import Optimizer
from promptlathe.optimizers._stages import strategy_choices
from promptlathe.prompts import StrategySpec
from promptlathe.strategies import get_strategy, parse_strategies

if TYPE_CHECKING:
    from promptlathe.metrics import Metric
    from promptlathe.optimizers._context import RunContext
    from promptlathe.prompts import Prompt


class PlannedRun(Protocol):
    """What the plan is written from (an :class:`~promptlathe.optimizers.Optimization`)."""

    cfg: OptimizeConfig
    plan: Plan
    plan_for: Callable[[int], Plan]
    metric: Metric
    metric_reason: str
    proposer_name: str
    decode_reason: str
    chain: list[Optimizer]
    ctx: RunContext
    seed_prompt: Prompt


def proposer_reason(cfg: OptimizeConfig, proposer: str) -> str:
    """Why ``proposer`` writes the instructions, in a few words for the plan."""
    if cfg.proposer_base_url:
        return "given by --proposer-model, on --proposer-base-url"
    if cfg.proposer_model:
        return "given by --proposer-model"
    best = MODELS.get(STRONG_PROPOSER)
    if proposer == cfg.model and best is not None:
        if cfg.base_url:
            return "the task model on the server; --proposer-model picks another"
        return (
            f"the task model; {best.name} writes better instructions: "
            f"promptlathe models install {best.name}"
        )
    return "the strongest installed embedded model"


def strategy_line(cfg: OptimizeConfig, specs: list[StrategySpec], skipped: dict[str, str]) -> str:
    """The plan's line about run-time strategies."""
    if [s.name for s in specs] == ["direct"] and not skipped:
        line = "strategies: direct only (--strategies all searches reasoning and voting)"
    else:
        names = ", ".join(dict.fromkeys(s.name for s in specs))
        line = f"strategies: {names} searched"
        line += "".join(f"; {n} left out: {why}" for n, why in skipped.items())
        if any(get_strategy(s).reasoning for s in specs):
            line += f"; reasoned answers up to {cfg.reasoning_tokens} tokens"
    if cfg.max_cost_per_example is not None:
        line += f"; the winner costs ≤ {cfg.max_cost_per_example} tokens per example"
    return line


DEFAULTS_WHY = (
    "the best mean test accuracy of six configurations on eight shared tasks at 600 calls; "
    "see the docs' benchmarks"
)
"""Why the default optimizer and strategies are what they are (the measurement that chose them)."""


def defaults_line(cfg: OptimizeConfig) -> str | None:
    """The plan's line naming the defaults in force and why, or ``None`` if both were given."""
    default = {f.name: f for f in fields(OptimizeConfig)}
    in_force = []
    if cfg.optimizer == default["optimizer"].default:
        in_force.append(f"--optimizer {cfg.optimizer}")
    factory = default["strategies"].default_factory
    if callable(factory) and cfg.strategies == parse_strategies(factory()):
        in_force.append(f"--strategies {','.join(factory())}")
    if not in_force:
        return None
    return f"defaults in force: {' and '.join(in_force)} ({DEFAULTS_WHY})"


def chain_line(chain: list[Optimizer]) -> str:
    """``optimizer: a,b (a: what a does; then b: what b does)``."""
    names = ",".join(o.name for o in chain)
    if len(chain) == 1:
        return f"optimizer: {names} ({chain[0].summary})"
    what = "; then ".join(f"{o.name}: {o.summary}" for o in chain)
    return f"optimizer: {names} ({what})"


def stage_lines(chain: list[Optimizer], plan: Plan) -> list[str]:
    """Every stage's plan lines in order, a line two stages share (bootstrapped demos) once."""
    lines: list[str] = []
    for o in chain:
        lines += [line for line in o.plan_lines(plan) if line not in lines]
    return lines


def run_plan_lines(run: PlannedRun, analysis_calls: int | None = None) -> list[str]:
    """What ``run`` will do and spend, every model call counted, for printing first."""
    cfg, plan = run.cfg, run.plan
    lines = [
        f"metric: {run.metric.name} ({run.metric_reason})",
        f"proposer: {run.proposer_name} ({proposer_reason(cfg, run.proposer_name)})",
        f"answers: {run.decode_reason}",
        chain_line(run.chain),
    ]
    specs, skipped = strategy_choices(run.ctx)
    lines.append(strategy_line(cfg, specs, skipped))
    if (defaults := defaults_line(cfg)) is not None:
        lines.append(defaults)
    # A winner that samples k times per input (self-consistency, choice shuffling) makes
    # k calls per test input, and k per analysed one.
    seed_k = get_strategy(run.seed_prompt.strategy).calls_per_input()
    win_k = max([seed_k, *(get_strategy(s).calls_per_input() for s in specs)])
    test = plan.test_calls(win_k, seed_k)
    lines += plan.describe(stage_lines(run.chain, plan), win_k, seed_k)
    for o in run.chain:
        lines += [f"warning: {w}" for w in o.warnings(plan, run.plan_for)]
    analyses = win_k * (analysis_calls or 0)
    total = plan.budget + test + analyses
    parts = [f"search ≤ {plan.budget}", f"test {'≤ ' if win_k > 1 else ''}{test}"]
    if analyses:
        parts.append(f"report analyses ≤ {analyses}")
    lines.append(f"all model calls: ≤ {total} ({' + '.join(parts)})")
    if cfg.budget_cost is not None:
        priced = ", ".join(
            f"{name} {p_in:g}:{p_out:g}" for name, (p_in, p_out) in cfg.model_prices().items()
        )
        lines.append(
            f"search cost: ≤ {cfg.budget_cost:g} (per million input:output tokens: {priced}); "
            "the search stops at whichever cap it reaches first"
        )
    return lines
