"""``--optimizer joint``: the joint Optuna search over instruction × exemplars × order × format
× run-time strategy, every trial raced on validation.

The instructions are those of the candidates the stage starts from (the seed's, or what a
previous stage found: ``propose,joint``, ``reflect,joint``); their exemplar sets join the
bootstrapped ones. Before the search, the strategy screen scores every searched strategy on
the first rung (see :func:`~promptlathe.optimizers._stages.seed_joint_search`). The search
is the part worker processes join (``--workers``).
"""

from __future__ import annotations

from collections.abc import Sequence

from promptlathe.errors import BudgetExhausted, PromptlatheError
from promptlathe.optimizers._context import RunContext
from promptlathe.optimizers._plan import Plan
from promptlathe.optimizers._protocol import Optimizer, register
from promptlathe.optimizers._stages import ensure_demos, joint_search, seed_joint_search
from promptlathe.optimizers._state import DemoSet, ExemplarState, JointState
from promptlathe.prompts import Prompt

"""The state key holding the searched instructions (set once, when the stage starts)."""


@register
class JointOptimizer(Optimizer):
    name = "joint"
    summary = (
        "a joint search (Optuna TPE, raced trials) over instruction, exemplars, order, format "
        "and strategy"
    )

    def plan_lines(self, plan: Plan) -> list[str]:
        return [
            f"  bootstrap demos      ≤ {plan.stages['bootstrap']:>5} calls",
            f"  joint search         ≈ {plan.stages['search']:>5} calls (rungs {plan.rungs}; "
            "what earlier stages leave)",
        ]

    def run(self, ctx: RunContext, start: Sequence[Prompt]) -> list[Prompt]:
        ensure_demos(ctx)
        if ctx.state(JointState).instructions is None:
            self._set_space(ctx, start)
        seed_joint_search(ctx)
        ctx.shared(lambda: self._search(ctx))
        return [e.to_prompt() for e in ctx.log.complete()]

    def join(self, ctx: RunContext) -> bool:
        if ctx.state(JointState).instructions is None:
            raise PromptlatheError(
                "the run's joint search has not started yet (no search space); start the main "
                "process first"
            )
        self._search(ctx)
        return True

    @staticmethod
    def _set_space(ctx: RunContext, start: Sequence[Prompt]) -> None:
        """The start's instructions, and its exemplar sets that are not among the
        bootstrapped ones (a previous stage's demo choice stays searchable)."""
        sets = ctx.state(ExemplarState).demo_sets or []
        have = {tuple(s.exemplars) for s in sets}
        extra = []
        for p in start:
            if p.exemplars and tuple(p.exemplars) not in have and ctx.cfg.max_shots:
                have.add(tuple(p.exemplars))
                extra.append(DemoSet(kind="start", exemplars=list(p.exemplars)))
        if extra:
            ctx.update_state(ExemplarState, demo_sets=[*sets, *extra])
        ctx.update_state(JointState, instructions=ctx.starts(start))

    @staticmethod
    def _search(ctx: RunContext) -> None:
        try:
            joint_search(ctx, cap=ctx.stage_cap(JointOptimizer.share, "joint_cap"))
        except BudgetExhausted as exc:
            ctx.emit("search", f"search stopped: {exc}")
