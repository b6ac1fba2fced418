"""``--optimizer propose``: APE proposals (the proposer reads demonstrations) raced, then OPRO
proposals (the proposer reads the scored instructions) raced; returns the best instructions.
The chain ``propose,joint`` hands them to the joint search over demos, order, format
and strategy."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from promptlathe.errors import BudgetExhausted, ModelError
from promptlathe.optimizers._context import RunContext
from promptlathe.optimizers._plan import Plan
from promptlathe.optimizers._protocol import Optimizer, register
from promptlathe.optimizers._stages import (
    JOINT_INSTRUCTIONS,
    ensure_demos,
    instruction_scores,
    race_instructions,
    top_instructions,
)
from promptlathe.optimizers._state import StageState
from promptlathe.prompts import Prompt
from promptlathe.proposers import APEProposer, OPROProposer, ScoredInstruction, screen_by_mi

MI_INPUTS = 8
RACE_SHARE = 0.5
"""Of the search calls, the share for racing instructions when a stage follows (the joint
search keeps the rest)."""
STUDY = "instructions"


def proposals(budget: int) -> tuple[int, int]:
    """How many instructions APE and OPRO write for a run of ``budget`` calls."""
    return min(8, max(2, budget // 60)), min(4, max(1, budget // 120))


class Proposal(BaseModel):
    """An instruction in the race, and who wrote it (seed, ape, opro)."""

    model_config = ConfigDict(extra="forbid")
    instruction: str
    source: str = "seed"
    loglik: float | None = None


class PrescreenRow(BaseModel):
    """A proposal's label-free mutual information, and whether the screen kept it."""

    model_config = ConfigDict(extra="forbid")
    instruction: str
    mi: float
    kept: bool


class ProposeState(StageState):
    """The proposals (``None``: not proposed yet), the best raced instructions handed on
    (``None``: the race has not ended), the calls around the race and the MI screen."""

    section: ClassVar[str] = "propose"
    instructions: list[Proposal] | None = None
    propose_top: list[str] | None = None
    calls_before_race: int | None = None
    calls_after_race: int | None = None
    prescreen: list[PrescreenRow] = []


@register
class ProposeOptimizer(Optimizer):
    name = "propose"
    summary = "APE and OPRO proposals by the proposer model, raced on validation"
    share = RACE_SHARE

    def set_aside(self, budget: int, n_screen_demos: int) -> dict[str, int]:
        n_ape, n_opro = proposals(budget)
        return {"propose": n_ape + n_opro + n_screen_demos * (n_ape + n_opro + 1)}

    def plan_lines(self, plan: Plan) -> list[str]:
        s = plan.stages
        n_ape, n_opro = proposals(plan.budget)
        return [
            f"  bootstrap demos      ≤ {s['bootstrap']:>5} calls",
            f"  propose instructions ≤ {s['propose']:>5} calls (APE {n_ape}, OPRO "
            f"{n_opro}, likelihood screen)",
            f"  race instructions    ≈ {int(RACE_SHARE * s['search']):>5} calls (rungs "
            f"{plan.rungs}; all of the search when no stage follows)",
        ]

    def run(self, ctx: RunContext, start: Sequence[Prompt]) -> list[Prompt]:
        ensure_demos(ctx)
        if ctx.state(ProposeState).instructions is None:
            ctx.update_state(ProposeState, instructions=self._propose(ctx, ctx.starts(start)))
        top = ctx.state(ProposeState).propose_top
        if top is None:
            ctx.update_state(ProposeState, calls_before_race=ctx.budget.used)
            top = self._race(ctx)
            ctx.update_state(ProposeState, propose_top=top, calls_after_race=ctx.budget.used)
        return [ctx.seed_prompt.with_(instruction=i) for i in top]

    def _propose(self, ctx: RunContext, given: list[str]) -> list[Proposal]:
        n_ape, _ = proposals(ctx.plan.budget)
        ctx.emit("propose", f"APE: {n_ape} proposals by {ctx.proposer_name}")
        raw: list[str] = []
        with contextlib.suppress(BudgetExhausted):
            raw = APEProposer(ctx.proposer_lm).propose(ctx.data.train, n_ape, seed=ctx.seed)
        return [
            *(Proposal(instruction=i) for i in given),
            *(Proposal(**c) for c in ctx.vet(raw, given, "ape")),
        ]

    def _race(self, ctx: RunContext) -> list[str]:
        """Race the seed and proposed instructions, then OPRO's; at most ``RACE_SHARE`` of
        the search calls, so the joint search over exemplars and formats keeps its share."""
        cap = ctx.stage_cap(RACE_SHARE, "race_cap")
        instrs = ctx.state(ProposeState).instructions or []
        with ctx.stage_limit(cap):
            try:
                self._race_list(ctx, instrs)
                # OPRO: show the proposer the scores so far and ask for better instructions.
                scored = instruction_scores(self._raced(ctx))
                history = [ScoredInstruction(i, s) for i, s in scored.items()]
                _, n_opro = proposals(ctx.plan.budget)
                ctx.emit("propose", f"OPRO: {n_opro} proposals from {len(history)} scored")
                new = OPROProposer(ctx.proposer_lm).propose(
                    ctx.data.train, n_opro, history=history, seed=ctx.seed + 1000
                )
                vetted = [
                    Proposal(**c) for c in ctx.vet(new, [c.instruction for c in instrs], "opro")
                ]
                instrs += vetted
                ctx.update_state(ProposeState, instructions=instrs)
                self._race_list(ctx, vetted)
            except BudgetExhausted as exc:
                ctx.emit("race instructions", f"instruction race stopped: {exc}")
        return top_instructions(ctx, self._raced(ctx), JOINT_INSTRUCTIONS)

    @staticmethod
    def _raced(ctx: RunContext) -> list:
        return [e for e in ctx.log.entries() if e.source in ("seed", "ape", "opro")]

    def _race_list(self, ctx: RunContext, cands: list[Proposal]) -> None:
        texts = self._prescreen(ctx, [c.instruction for c in cands])
        source = {c.instruction: c.source for c in cands}
        race_instructions(ctx, STUDY, texts, [source[t] for t in texts])

    def _prescreen(self, ctx: RunContext, instructions: list[str]) -> list[str]:
        """Label-free MI screen of proposed instructions (the seed is never screened out)."""
        seed = ctx.seed_prompt.instruction
        proposed = [i for i in instructions if i != seed]
        if ctx.cfg.prescreen != "mi" or len(proposed) < 2:
            return instructions
        assert ctx.labels is not None  # checked when the run was set up
        inputs = [e.input for e in ctx.data.train[:MI_INPUTS]]
        prompts = [ctx.seed_prompt.with_(instruction=i) for i in proposed]
        try:
            kept, mis = screen_by_mi(ctx.task_lm, prompts, inputs, ctx.labels, keep=0.5)
        except (ModelError, NotImplementedError, BudgetExhausted) as exc:
            ctx.emit("prescreen", f"MI screen skipped: {exc}")
            return instructions
        rows = ctx.state(ProposeState).prescreen
        rows += [
            PrescreenRow(instruction=p, mi=m, kept=i in kept)
            for i, (p, m) in enumerate(zip(proposed, mis, strict=True))
        ]
        ctx.update_state(ProposeState, prescreen=rows)
        ctx.emit("prescreen", f"MI screen kept {len(kept)} of {len(proposed)} proposals")
        return [i for i in instructions if i == seed] + [proposed[i] for i in kept]
