"""Building blocks optimizers share: bootstrapped demo sets, racing a list of instructions,
and the joint Optuna search over instruction × demos × order × format."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from promptlathe.errors import BudgetExhausted
from promptlathe.formats import format_space
from promptlathe.optimizers._context import RunContext
from promptlathe.optimizers._exemplars import (
    DemoSet,
    bootstrap,
    bootstrap_until,
    demo_sets,
    labeled,
    orders,
)
from promptlathe.optimizers._exemplars import sample_demos as sample_exemplars
from promptlathe.optimizers._runlog import LogEntry
from promptlathe.optimizers._search import Space
from promptlathe.optimizers._state import DemoSet as StateDemoSet
from promptlathe.optimizers._state import ExemplarState, JointState, StrategyState
from promptlathe.prompts import Exemplar, Prompt, StrategySpec
from promptlathe.strategies import TaskView, get_strategy, search_specs
from promptlathe.tasks import Example

N_DEMO_SETS = 9
N_ORDERS = 4
JOINT_INSTRUCTIONS = 4
MAX_JOINT_TRIALS = 300
MAX_IDLE_TRIALS = 40
N_RATIONALE_SETS = 4
KNN_POOL = 200
"""Labeled examples ``knn_demos`` chooses from, at most (they travel in the exported prompt)."""


def ensure_demos(ctx: RunContext) -> None:
    """Bootstrap the demo sets once (the seed prompt run on train inputs; outputs the metric
    validates become demos) and save them with the exemplar orders in the run's state."""
    if ctx.state(ExemplarState).demo_sets is not None:
        return
    k, train = ctx.cfg.max_shots, ctx.data.train
    if not k:
        ctx.update_state(ExemplarState, demo_sets=[], orders=[], n_bootstrapped=0)
        return
    pool = labeled(train)
    rng = np.random.default_rng(ctx.seed)
    teacher_demos = sample_exemplars(pool[: max(k, 4 * k)], k, rng)
    seed = ctx.seed_prompt
    teacher = seed.with_(exemplars=teacher_demos) if not seed.exemplars else seed
    used = {d.input for d in teacher_demos}
    boot_inputs = [e for e in train if e.input not in used][: ctx.plan.n_boot]
    ctx.emit("bootstrap", f"running the seed prompt on {len(boot_inputs)} train examples")
    try:
        boot = bootstrap(ctx.evaluator, teacher, boot_inputs)
    except BudgetExhausted:
        boot = []
    sets = demo_sets(pool, boot, k, N_DEMO_SETS, ctx.seed)
    if seed.exemplars:  # the user's own exemplars are set 0
        sets.insert(0, DemoSet("seed", seed.exemplars))
    ctx.emit("bootstrap", f"{len(boot)} validated demos from {len(boot_inputs)} tries")
    ctx.update_state(
        ExemplarState,
        demo_sets=[StateDemoSet(kind=s.kind, exemplars=list(s.exemplars)) for s in sets],
        orders=orders(k, N_ORDERS, ctx.seed),
        n_bootstrapped=len(boot),
    )


def strategy_choices(ctx: RunContext) -> tuple[list[StrategySpec], dict[str, str]]:
    """The (strategy, k) choices of ``--strategies`` that apply to the task, and why the
    others do not."""
    train = ctx.data.train
    view = TaskView([e.input for e in train], [e.target for e in train])
    return search_specs(ctx.cfg.strategies, view, ctx.cfg.max_shots)


def ensure_strategies(ctx: RunContext) -> None:
    """Once per run: the strategy choices, the rationale demo sets of ``cot_demos`` (the
    task's ``rationale`` fields, then the model's own reasoning on train inputs where the
    metric validated its final answer) and the pool of ``knn_demos``."""
    if ctx.state(StrategyState).strategies is not None:
        return
    specs, skipped = strategy_choices(ctx)
    names = {s.name for s in specs}
    rationale_sets: list[list[Exemplar]] = []
    tries = 0
    k, train = ctx.cfg.max_shots, ctx.data.train
    if "cot_demos" in names:
        given = [
            Exemplar(e.input, str(e.extra["rationale"]))
            for e in train
            if isinstance(e.extra.get("rationale"), str) and e.extra["rationale"].strip()
        ]
        boot: list[Exemplar] = []
        if len(given) < k * N_RATIONALE_SETS:
            used = {d.input for d in given}
            inputs = [e for e in train if e.input not in used][: ctx.plan.n_boot_rationale]
            teacher = ctx.seed_prompt.with_(exemplars=(), strategy=StrategySpec("cot"))
            want = max(0, k - len(given))
            ctx.emit(
                "bootstrap",
                f"reasoning on train examples until {want} validate, at most {len(inputs)} "
                "(cot_demos)",
            )
            boot, tries = bootstrap_until(ctx.evaluator, teacher, inputs, want, first=3 * k)
            ctx.emit("bootstrap", f"{len(boot)} validated rationales from {tries} tries")
        rpool = given + boot
        sets = demo_sets(rpool, [], k, N_RATIONALE_SETS, ctx.seed) if rpool else []
        rationale_sets = [list(s.exemplars) for s in sets]
        if not rationale_sets:
            specs = [s for s in specs if s.name != "cot_demos"]
            skipped["cot_demos"] = "no rationale: no train example has one and none validated"
    pool = labeled(train)[:KNN_POOL] if "knn_demos" in names else []
    ctx.update_state(
        StrategyState,
        strategies=specs,
        strategies_skipped=skipped,
        rationale_sets=rationale_sets,
        rationale_tries=tries,
        knn_pool=pool,
    )


def shipped(prompt: Prompt, labeled_examples: Sequence[Example]) -> Prompt:
    """The winner as it ships. A strategy that picks its exemplars per input from a pool
    (``knn_demos``) was searched with the train examples as its pool, so that validation and
    confirmation scored it on inputs outside the pool; once it has been chosen, its pool is
    every labeled example of the run (``labeled_examples``: train first, then validation and
    confirmation; never test). More neighbours to choose from is what a kNN prompt gains
    from data, and held back it would deploy with half of it. Other prompts ship as
    searched."""
    if get_strategy(prompt.strategy).demos != "pool" or not prompt.exemplars:
        return prompt
    grown = labeled(labeled_examples)[:KNN_POOL]
    return prompt.with_(exemplars=grown) if len(grown) > len(prompt.exemplars) else prompt


def with_first_demos(ctx: RunContext, prompt: Prompt) -> Prompt:
    """``prompt`` with the first demo set's exemplars when it has none (unchanged when it has
    some, when the run allows no shots, or before demos were bootstrapped)."""
    sets = ctx.state(ExemplarState).demo_sets or []
    if prompt.exemplars or not ctx.cfg.max_shots or not sets:
        return prompt
    return prompt.with_(exemplars=tuple(sets[0].exemplars[: ctx.cfg.max_shots]))


def race_base(ctx: RunContext) -> Prompt:
    """The prompt instructions are raced in: the seed prompt, or, once the seed has shown it
    gets nothing right without exemplars (0 on its first rung), the seed with the first demo
    set. Zero-shot, a small model often scores 0 whatever the instruction says, and a race
    of prompts that all score 0 cannot tell instructions apart."""
    seed = ctx.seed_prompt
    demoed = with_first_demos(ctx, seed)
    if demoed is seed:
        return seed
    zero_shot = next((e for e in ctx.log.entries() if e.id == seed.hash), None)
    if zero_shot is None or not zero_shot.scores or sum(zero_shot.scores) > 0:
        return seed
    return demoed


def race_instructions(
    ctx: RunContext, suffix: str, instructions: Sequence[str], source: str | Sequence[str]
) -> None:
    """Race each instruction with the exemplars and format of :func:`race_base` (skipping
    any already raced) in study ``suffix``; ``source`` names each one's origin. When the
    base gains exemplars, the seed's own instruction is raced with them first."""
    study = ctx.study(suffix)
    sources = [source] * len(instructions) if isinstance(source, str) else list(source)
    for instr, src in zip(instructions, sources, strict=True):
        base = race_base(ctx)
        if base is not ctx.seed_prompt and base.hash not in ctx.known():
            ctx.emit("race instructions", "zero-shot scored 0: racing with the first demo set")
            _race_one(ctx, study, base, "seed")
        prompt = base.with_(instruction=instr)
        if prompt.hash in ctx.known():
            continue
        _race_one(ctx, study, prompt, src)


def _race_one(ctx: RunContext, study: optuna.Study, prompt: Prompt, src: str) -> None:
    instr = prompt.instruction
    trial = study.ask()
    trial.set_user_attr("instruction_text", instr)
    shots = f" with {len(prompt.exemplars)} demos" if prompt.exemplars else ""
    ctx.emit("race instructions", f"racing {instr[:60]!r}{shots}")
    outcome = ctx.race(prompt, study=study, source=src, trial=trial)
    ctx.emit("race instructions", f"{outcome}: {instr[:60]!r}")


def instruction_scores(entries: Sequence[LogEntry]) -> dict[str, float]:
    """Each logged instruction's best 95 % Wilson lower bound over the entries given."""
    out: dict[str, float] = {}
    for e in entries:
        instr = e.prompt.get("instruction", "")
        if e.scores:
            out[instr] = max(out.get(instr, 0.0), RunContext.lower_bound(e))
    return out


def top_instructions(ctx: RunContext, entries: Sequence[LogEntry], k: int) -> list[str]:
    """The ``k`` best instructions by lower bound, plus the seed's."""
    scored = instruction_scores(entries)
    top = sorted(scored, key=lambda i: -scored[i])[:k]
    if ctx.seed_prompt.instruction not in top:
        top.append(ctx.seed_prompt.instruction)
    return top


def space_of(ctx: RunContext) -> Space:
    ensure_strategies(ctx)
    ex, st = ctx.state(ExemplarState), ctx.state(StrategyState)
    return Space(
        instructions=tuple(ctx.state(JointState).instructions or ()),
        demo_sets=tuple(tuple(s.exemplars) for s in ex.demo_sets or []),
        orders=tuple(tuple(o) for o in ex.orders),
        formats=tuple(format_space(ctx.seed_prompt.format)),
        max_shots=ctx.cfg.max_shots,
        strategies=tuple(st.strategies or ()) or (StrategySpec(),),
        rationale_sets=tuple(tuple(s) for s in st.rationale_sets),
        pool=tuple(st.knn_pool),
    )


def seed_joint_search(ctx: RunContext) -> None:
    """Set up the joint search before it is shared: the strategy choices (which may reason on
    train inputs) and the first trials: the seed configuration with the best instruction,
    k-shot and zero-shot, and with each other strategy (zero-shot where
    :func:`first_shots` says so), in the order of the strategy screen
    (:func:`screen_strategies`). Runs in the run's one main process, so worker processes never
    enqueue the same trials or bootstrap the same rationales side by side."""
    space = space_of(ctx)
    study = ctx.study("joint")
    if study.trials:
        return
    dists = space.distributions()
    shots = {"shots": ctx.cfg.max_shots, "demo_set": 0, "order": 0} if "shots" in dists else {}
    order = screen_strategies(ctx, space, shots) if "strategy" in dists else [0]
    for i in order:
        first = {"strategy": i} if "strategy" in dists else {}
        start = first_shots(space, i, shots)
        study.enqueue_trial({"instruction": 0, "format": 0, **start, **first})
        if i == 0 and shots.get("shots"):  # the first strategy both k-shot and zero-shot
            other = shots if not start.get("shots") else {**shots, "shots": 0}
            study.enqueue_trial({"instruction": 0, "format": 0, **other, **first})


def first_shots(space: Space, i: int, shots: dict[str, int]) -> dict[str, int]:
    """The demos strategy ``i`` is first tried with: the run's k-shot seed, but none for a
    reasoning strategy whose demos would be the answer-only demo sets (``cot``,
    ``plan_and_solve``, ``self_consistency``). Those strategies are zero-shot as published,
    and demos whose outputs are bare answers show the model the opposite of the reasoning
    its trigger asks for; ``cot_demos`` is the one whose demos carry reasoning. The search
    may still add answer-only demos to them later."""
    strat = get_strategy(space.strategies[i])
    if shots.get("shots") and strat.reasoning and strat.demos == "fixed":
        return {**shots, "shots": 0}
    return shots


def screen_strategies(ctx: RunContext, space: Space, shots: dict[str, int]) -> list[int]:
    """Score the seed configuration with every strategy on the first rung of validation
    (cheapest first; one whose screen would leave too few calls to finish racing the best so
    far, or to race itself over the rest of validation, is skipped) and return the
    strategies best first (ties: cheaper first; unscreened ones last). The scores are saved
    in the state (``strategy_screen``).

    Racing one strategy after another to the end of validation spent small budgets on the
    first few and never reached the rest (at 200 calls, self-consistency was never tried).
    The screen looks at every one on a few examples first; the races that follow start from
    these scores (the same examples, served from the cache), so the best screened is raced
    first and becomes the incumbent the others are pruned against. Only a race finished to
    the end of validation can win, so a strategy the budget cannot race that far is not
    screened: at 300 calls on GSM8K, self-consistency k=5 screened best, was raced first,
    and spent the search's last calls halfway through validation, leaving the seed."""
    screened = ctx.state(StrategyState).strategy_screen
    rows = [r.model_dump() for r in screened] if screened is not None else None
    if rows is None:
        rows = []
        rung = ctx.data.val[: ctx.plan.rungs[0]]
        rest = len(ctx.data.val) - len(rung)
        keep = 0  # calls to finish racing the best screened so far
        for i, spec in enumerate(space.strategies):
            start = first_shots(space, i, shots)
            prompt = space.prompt({"instruction": 0, "format": 0, **start, "strategy": i})
            per_input = get_strategy(spec).calls_per_input()
            cost = len(rung) * per_input
            left = ctx.budget.remaining
            if left is not None and left < cost + max(keep, rest * per_input):
                ctx.emit("screen strategies", f"{spec.label()} left out: budget")
                continue
            try:
                res = ctx.evaluator.evaluate(prompt, rung)
            except BudgetExhausted:
                ctx.emit("screen strategies", f"budget spent before {spec.label()}")
                break
            rows.append(
                {
                    "strategy": spec.label(),
                    "index": i,
                    "score": res.mean,
                    "n": res.n,
                    "tokens_per_example": res.tokens_per_example,
                }
            )
            best = min(rows, key=_screen_rank)
            keep = rest * get_strategy(space.strategies[best["index"]]).calls_per_input()
            ctx.emit(
                "screen strategies",
                f"{spec.label()}: {res.mean:.2f} on {res.n} examples, "
                f"{res.tokens_per_example:.0f} tokens per example",
            )
        ctx.update_state(StrategyState, strategy_screen=rows)
    ranked = [r["index"] for r in sorted(rows, key=_screen_rank)]
    return ranked + [i for i in range(len(space.strategies)) if i not in ranked]


def _screen_rank(row: dict[str, Any]) -> tuple[float, int]:
    """Best screen score first; on a tie the cheaper strategy (earlier in the choices)."""
    return (-row["score"], row["index"])


def confirmation_need(ctx: RunContext) -> int:
    """Calls the confirmation of today's leaders and the seed will take: the plan reserves one
    call per example each, but a leader that samples k times per input needs k. The search
    stops early by the difference, so the leader is always confirmed against the seed."""
    seed = ctx.seed_prompt
    prompts = [e.to_prompt() for e in ctx.log.complete()[: ctx.plan.confirm_top]]
    if all(p.hash != seed.hash for p in prompts):
        prompts.append(seed)
    per_input = sum(get_strategy(p.strategy).calls_per_input() for p in prompts)
    return max(ctx.plan.reserve_confirm, ctx.plan.n_confirm * per_input)


def waiting(study: optuna.Study) -> bool:
    """Whether the study has queued trials no process has taken yet."""
    return bool(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def joint_search(ctx: RunContext, cap: int | None = None) -> None:
    """Optuna's TPE over instruction × shots × demo set × order × format, each trial raced;
    several processes may run it at once on one storage. ``cap`` is the call count the
    search may reach (``None``: the search's whole allowance).

    Raises:
        BudgetExhausted: the search budget is spent.
    """
    space = space_of(ctx)
    study = ctx.study("joint")
    dists = space.distributions()
    idle = 0
    while len(study.trials) < MAX_JOINT_TRIALS and idle < MAX_IDLE_TRIALS:
        reserve = confirmation_need(ctx)
        limits = (ctx.plan.search_limit, ctx.plan.budget - reserve, cap)
        ctx.budget.stage_limit = min(x for x in limits if x is not None)
        spent = ctx.budget.remaining is not None and ctx.budget.remaining <= 0
        # With the budget spent, the queued first trials are still raced: the strategy
        # screen's examples are cached, so a race that needs no new call is free.
        if spent and not waiting(study):
            raise BudgetExhausted("search budget spent")
        trial = study.ask(dists)
        prompt = space.prompt(trial.params)
        try:
            outcome = ctx.race(prompt, study=study, source="joint", trial=trial)
        except BudgetExhausted:
            if not waiting(study):
                raise
            outcome = "failed"
        idle = idle + 1 if outcome in ("duplicate", "skipped") else 0
        ctx.emit("joint search", f"trial {trial.number}: {outcome}")
