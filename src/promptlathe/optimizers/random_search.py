"""``--optimizer random``: random search over ordered demo sets, DSPy's
BootstrapFewShotWithRandomSearch idea done with our racing.

The pool is the run's exemplars: the model's own outputs on train inputs that the metric
validated, and labeled train examples (the bootstrapped demo sets every stage shares). Each
candidate is the best start prompt with a random number (1 to ``--max-shots``) of exemplars
drawn from the pool in a random order; the start prompts are candidates too (DSPy's zero-shot
and labeled-only programs). Every candidate is raced on validation and pruned as soon as it
cannot beat the incumbent; the best complete ones are returned, so ``random,joint`` hands the
sets it found to the joint search.

It is the baseline every paper on exemplar selection compares against ("Teach Better or Show
Smarter", 2024: random search over demo sets beats instruction optimizers on small models).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from promptlathe.errors import BudgetExhausted
from promptlathe.optimizers._context import RunContext
from promptlathe.optimizers._plan import Plan
from promptlathe.optimizers._protocol import Optimizer, register
from promptlathe.optimizers._stages import ensure_demos
from promptlathe.optimizers._state import DemoSet, ExemplarState
from promptlathe.prompts import Exemplar, Prompt

STUDY = "random"
MAX_CANDIDATES = 16
"""Random demo sets drawn at most (DSPy's ``num_candidate_programs`` default)."""
SHARE = 0.5
"""Of the search calls, the share the stage takes when another stage follows it."""


def exemplar_pool(demo_sets: Sequence[DemoSet]) -> list[Exemplar]:
    """The exemplars of the run's demo sets (validated and labeled), one per input, in
    order."""
    pool: dict[str, Exemplar] = {}
    for s in demo_sets:
        for ex in s.exemplars:
            pool.setdefault(ex.input, ex)
    return list(pool.values())


def draw(pool: Sequence[Exemplar], max_shots: int, seed: int, i: int) -> tuple[Exemplar, ...]:
    """Candidate ``i``'s demos: 1 to ``max_shots`` of ``pool``, in a random order (seeded by
    the run's seed and ``i``, so a resumed run draws the same sets)."""
    rng = np.random.default_rng([seed, 8191, i])
    k = int(rng.integers(1, min(max_shots, len(pool)) + 1))
    return tuple(pool[int(j)] for j in rng.choice(len(pool), size=k, replace=False))


@register
class RandomSearchOptimizer(Optimizer):
    name = "random"
    summary = "random ordered demo sets of validated and labeled exemplars, raced"
    share = SHARE

    def plan_lines(self, plan: Plan) -> list[str]:
        return [
            f"  bootstrap demos      ≤ {plan.stages['bootstrap']:>5} calls",
            f"  random demo sets     ≈ {plan.stages['search']:>5} calls (≤ {MAX_CANDIDATES} "
            f"sets, rungs {plan.rungs}; {int(SHARE * 100)} % when a stage follows)",
        ]

    def run(self, ctx: RunContext, start: Sequence[Prompt]) -> list[Prompt]:
        ensure_demos(ctx)
        base = start[0] if start else ctx.seed_prompt
        pool = exemplar_pool(ctx.state(ExemplarState).demo_sets or [])
        k = ctx.cfg.max_shots
        cands = list(start) + [
            base.with_(exemplars=draw(pool, k, ctx.seed, i))
            for i in range(MAX_CANDIDATES if pool and k else 0)
        ]
        ctx.emit("random", f"racing {len(cands)} candidates ({len(pool)} exemplars in the pool)")
        study = ctx.study(STUDY)
        with ctx.stage_limit(ctx.stage_cap(SHARE, "random_cap")):
            try:
                for i, prompt in enumerate(cands):
                    source = "random" if i >= len(start) else "start"
                    if prompt.hash == ctx.seed_prompt.hash:
                        source = "seed"
                    outcome = ctx.race(prompt, study=study, source=source)
                    ctx.emit("random", f"candidate {i + 1}/{len(cands)}: {outcome}")
            except BudgetExhausted as exc:
                ctx.emit("random", f"random search stopped: {exc}")
        ids = {p.hash for p in cands}
        return [e.to_prompt() for e in ctx.log.complete() if e.id in ids] or list(start)
