"""``--optimizer reflect``: reflective prompt evolution (after GEPA, Agrawal et al., 2025),
done with our racing and statistics.

1. The seed instruction is scored on all of validation (with the first demo set's exemplars
   when the seed prompt has none: see :meth:`ReflectOptimizer.root`).
2. Each round picks a parent from the **Pareto front** of fully scored candidates (a
   candidate stays on it while it is the best on some validation example; parents are drawn
   in proportion to how many examples they lead), so the search does not collapse onto one
   lucky prompt.
3. The proposer sees the parent's instruction and a minibatch of its validation examples
   (input, output, extracted answer, target; failures first, a few successes for contrast),
   diagnoses the failures and writes a revised instruction. Truncated or template-echoing
   answers are refused; the usual filters and likelihood screen apply.
4. The child is **raced against its parent** on the same examples in the same order
   (paired): it stops as soon as it cannot beat the parent or the sign test says it is worse.
   Only survivors are scored on all of validation and join the front.
5. The stage returns the best instructions (with the root's exemplars); chained as
   ``reflect,joint`` they go into the joint search over demos, order and format (small
   models need exemplars as much as wording).

Every round's choices are saved before its proposal, so a killed run replays them from the
cache. The plan warns before the run, and the result says after, when the budget allows
fewer than ``MIN_ROUNDS`` rounds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from promptlathe.errors import BudgetExhausted, PromptlatheError
from promptlathe.optimizers._context import RunContext
from promptlathe.optimizers._plan import Plan
from promptlathe.optimizers._protocol import Optimizer, register
from promptlathe.optimizers._racing import Incumbent
from promptlathe.optimizers._runlog import LogEntry
from promptlathe.optimizers._stages import (
    JOINT_INSTRUCTIONS,
    ensure_demos,
    top_instructions,
    with_first_demos,
)
from promptlathe.optimizers._state import RunState, StageState
from promptlathe.prompts import Prompt
from promptlathe.proposers import ReflectProposer, Trace

STUDY = "reflect"
REFLECT_SHARE = 0.6
"""Of the calls left after bootstrapping, the share reflection may spend when a stage follows
(the rest is the next stage's, e.g. the joint search)."""
MIN_ROUNDS = 3
MAX_ROUNDS = 40
SHOW_FAILURES = 5
SHOW_SUCCESSES = 2
MAX_IDLE_ROUNDS = 6


class Round(BaseModel):
    """One reflection round: the parent, the validation examples shown (by id) and, once it
    ended, its outcome, the reflector's diagnosis and the instruction it wrote."""

    model_config = ConfigDict(extra="forbid")
    parent: str
    examples: list[str]
    outcome: str | None = None
    diagnosis: str | None = None
    instruction: str | None = None


class ReflectState(StageState):
    """The rounds so far, and the instructions handed on (``None``: not ended)."""

    section: ClassVar[str] = "reflect"
    rounds: list[Round] = []
    reflect_top: list[str] | None = None


"""Rounds in a row without a new complete candidate before reflection stops early."""


def pareto_front(entries: list[LogEntry]) -> dict[str, int]:
    """Candidates on the Pareto front over validation examples, each with the number of
    examples on which it has the best score (ties count for all tied). Dominated candidates
    (no better anywhere, worse somewhere than another) are left out."""
    full = [e for e in entries if e.scores]
    if not full:
        return {}
    n = min(len(e.scores) for e in full)
    wins: dict[str, int] = {}
    for i in range(n):
        best = max(e.scores[i] for e in full)
        if best <= 0:
            continue
        for e in full:
            if e.scores[i] == best:
                wins[e.id] = wins.get(e.id, 0) + 1
    by_id = {e.id: e for e in full}

    def dominated(a: LogEntry) -> bool:
        return any(
            b.id != a.id
            and all(x >= y for x, y in zip(b.scores[:n], a.scores[:n], strict=True))
            and any(x > y for x, y in zip(b.scores[:n], a.scores[:n], strict=True))
            for b in full
        )

    front = {i: w for i, w in wins.items() if not dominated(by_id[i])}
    if not front:  # everything scored zero: the best mean (the seed, first) is the front
        top = max(full, key=lambda e: e.mean or 0.0)
        front = {top.id: 1}
    return front


@register
class ReflectOptimizer(Optimizer):
    name = "reflect"
    summary = (
        "the proposer reflects on failing validation examples; Pareto front of candidates; "
        "each child raced against its parent"
    )
    share = REFLECT_SHARE

    def __init__(self) -> None:
        self._parent: Incumbent | None = None

    # ---- the plan --------------------------------------------------------------------------
    @staticmethod
    def round_cost(plan: Plan) -> int:
        """Expected calls of one round: the proposal, the likelihood screen, the first rung
        against the parent and, for about a third of children, the rest of validation."""
        first = plan.rungs[0]
        return 1 + plan.n_screen_demos + first + (plan.n_val - first) // 3

    def rounds(self, plan: Plan) -> int:
        share = int(REFLECT_SHARE * (plan.search_limit - plan.n_boot)) - plan.n_val
        return max(0, min(MAX_ROUNDS, share // self.round_cost(plan)))

    def plan_lines(self, plan: Plan) -> list[str]:
        share = int(REFLECT_SHARE * (plan.search_limit - plan.n_boot))
        return [
            f"  bootstrap demos      ≤ {plan.stages['bootstrap']:>5} calls",
            f"  reflect              ≈ {share:>5} calls (seed on validation, then ≈ "
            f"{self.rounds(plan)} rounds of ≈ {self.round_cost(plan)}: 1 reflection, "
            f"screen, race vs parent, rungs {plan.rungs})",
            f"  (followed by another stage: ≈ {plan.search_limit - plan.n_boot - share} calls "
            "left for it; alone, reflection takes them too)",
        ]

    def warnings(self, plan: Plan, plan_for: Callable[[int], Plan]) -> list[str]:
        r = self.rounds(plan)
        if r >= MIN_ROUNDS:
            return []
        need = self._budget_for(MIN_ROUNDS, plan.budget, plan_for)
        advice = (
            f"--budget-calls {need} or more gives it {MIN_ROUNDS}"
            if need is not None
            else "raise --budget-calls"
        )
        return [
            f"the budget allows only about {r} reflection round(s) (fewer than {MIN_ROUNDS}): "
            f"reflect will under-search; {advice}"
        ]

    def _budget_for(self, rounds: int, budget: int, plan_for: Callable[[int], Plan]) -> int | None:
        """The smallest budget above ``budget`` whose plan allows ``rounds`` rounds (the split
        sizes grow with the budget, so each candidate budget is planned in full)."""
        for b in range(budget + 1, max(2000, 20 * budget)):
            try:
                if self.rounds(plan_for(b)) >= rounds:
                    return b
            except PromptlatheError:
                continue
        return None

    # ---- the search ------------------------------------------------------------------------
    def run(self, ctx: RunContext, start: Sequence[Prompt]) -> list[Prompt]:
        ensure_demos(ctx)
        state = ctx.state(ReflectState)
        root = self.root(ctx, start)
        if state.reflect_top is not None:
            return [root.with_(instruction=i) for i in state.reflect_top]
        caps = ctx.state(RunState).caps
        if "reflect_cap" not in caps:
            share = REFLECT_SHARE * (ctx.plan.search_limit - ctx.budget.used)
            cap0 = None if ctx.last_stage else ctx.budget.used + int(share)
            caps = ctx.update_state(RunState, caps={**caps, "reflect_cap": cap0}).caps
        cap = caps["reflect_cap"]
        study = ctx.study(STUDY, incumbent=lambda: self._parent)
        with ctx.stage_limit(cap):
            try:
                if root.hash not in ctx.known():
                    self._parent = None  # the root is scored on all of validation
                    ctx.emit("reflect", "scoring the seed instruction on validation")
                    ctx.race(root, study=study, source="seed")
                idle = 0
                for r in range(MAX_ROUNDS):
                    remaining = ctx.budget.remaining
                    if remaining is not None and remaining < ctx.plan.rungs[0] + 1:
                        break
                    if idle >= MAX_IDLE_ROUNDS:
                        ctx.emit("reflect", f"stopping: {idle} rounds without a new candidate")
                        break
                    outcome = self._round(ctx, r)
                    if outcome == "done":
                        break
                    idle = 0 if outcome == "complete" else idle + 1
            except BudgetExhausted as exc:
                ctx.emit("reflect", f"reflection stopped: {exc}")
        top = top_instructions(ctx, self._entries(ctx), JOINT_INSTRUCTIONS)
        ctx.update_state(ReflectState, reflect_top=top)
        return [root.with_(instruction=i) for i in top]

    @staticmethod
    def root(ctx: RunContext, start: Sequence[Prompt] = ()) -> Prompt:
        """Where reflection starts: the best start candidate (the seed prompt when reflection
        runs first), with the first demo set's exemplars when it has none. Small models
        often answer nothing right zero-shot whatever the instruction says, which leaves
        reflection no signal; with demos, the failures it reads are near misses, and
        instructions are judged as the joint search will use them."""
        return with_first_demos(ctx, start[0] if start else ctx.seed_prompt)

    @staticmethod
    def _entries(ctx: RunContext) -> list[LogEntry]:
        return [e for e in ctx.log.entries() if e.optimizer == ReflectOptimizer.name]

    def _round(self, ctx: RunContext, r: int) -> str:
        rounds = ctx.state(ReflectState).rounds
        if r < len(rounds) and rounds[r].outcome:
            return str(rounds[r].outcome).split(":")[0]
        if r < len(rounds):
            plan = rounds[r]  # a killed round: replay its choices
        else:
            new = self._plan_round(ctx, r)
            if new is None:
                return "done"
            plan = new
            rounds.append(plan)
            ctx.update_state(ReflectState, rounds=rounds)
        parent = ctx.log.get(plan.parent)
        assert parent is not None
        parent_prompt = parent.to_prompt()
        by_id = {e.id: e for e in ctx.data.val}
        shown = [by_id[i] for i in plan.examples if i in by_id]
        records = ctx.records(parent_prompt, shown)
        traces = [
            Trace(rec.input, rec.output, rec.answer, ex.target, rec.score >= 1.0)
            for rec, ex in zip(records, shown, strict=True)
        ]
        ctx.emit(
            "reflect",
            f"round {r + 1}: {ctx.proposer_name} reflects on {sum(not t.correct for t in traces)}"
            f" failures of {parent.source} {parent.id[:8]} (val {parent.mean or 0:.2f})",
        )
        reflection = ReflectProposer(ctx.proposer_lm).reflect(
            parent_prompt.instruction, traces, seed=ctx.seed + 7919 * (r + 1)
        )
        outcome = self._try_child(ctx, r, parent, reflection.instruction, reflection.rejected)
        rounds = ctx.state(ReflectState).rounds
        rounds[r] = rounds[r].model_copy(
            update={
                "outcome": outcome,
                "diagnosis": reflection.diagnosis,
                "instruction": reflection.instruction,
            }
        )
        ctx.update_state(ReflectState, rounds=rounds)
        return outcome.split(":")[0]

    def _try_child(
        self, ctx: RunContext, r: int, parent: LogEntry, instruction: str, rejected: str
    ) -> str:
        if rejected:
            ctx.emit("reflect", f"round {r + 1}: reflection refused: {rejected}")
            return f"rejected: {rejected}"
        existing = [e.prompt.get("instruction", "") for e in self._entries(ctx)]
        vetted = ctx.vet([instruction], existing, "reflect")
        if not vetted:
            return "rejected: filtered (see the log)"
        child = parent.to_prompt().with_(instruction=vetted[0]["instruction"])
        self._parent = Incumbent(parent.mean or 0.0, parent.scores)
        outcome = ctx.race(child, study=ctx.study(STUDY), source="reflect", parent=parent.id)
        ctx.emit("reflect", f"round {r + 1}: child {outcome} ({vetted[0]['instruction'][:60]!r})")
        return outcome

    def _plan_round(self, ctx: RunContext, r: int) -> Round | None:
        """Pick the parent from the front and the examples to show (seeded by the round)."""
        entries = self._entries(ctx)
        complete = [e for e in entries if e.state == "complete"]
        if not complete:
            # Nothing has finished validation: the root scored 0 on the first rung and was
            # pruned (a small model often answers nothing right at first). Its failures are
            # what reflection is for, so it is the parent, on the examples it was scored on.
            complete = [e for e in entries if e.scores and e.source == "seed"][:1]
        front = pareto_front(complete)
        if not front:
            return None
        rng = np.random.default_rng([ctx.seed, r])
        ids = sorted(front)
        weights = np.array([front[i] for i in ids], dtype=float)
        parent_id = ids[int(rng.choice(len(ids), p=weights / weights.sum()))]
        parent = next(e for e in complete if e.id == parent_id)
        val = ctx.data.val[: parent.n]
        failed = [i for i, s in enumerate(parent.scores) if s < 1.0]
        passed = [i for i, s in enumerate(parent.scores) if s >= 1.0]
        if not failed:
            ctx.emit("reflect", "the parent is right on every validation example")
            return None
        pick_f = rng.permutation(failed)[:SHOW_FAILURES]
        pick_p: list[int] = list(rng.permutation(passed)[:SHOW_SUCCESSES]) if passed else []
        return Round(parent=parent_id, examples=[val[int(i)].id for i in [*pick_f, *pick_p]])

    def result_notes(self, ctx: RunContext) -> list[str]:
        rounds = ctx.state(ReflectState).rounds
        done = [x for x in rounds if x.outcome]
        kept = sum(x.outcome == "complete" for x in done)
        refused = sum(str(x.outcome).startswith("rejected") for x in done)
        notes = [
            f"reflect: {len(done)} reflection rounds, {kept} children survived the race "
            f"against their parent, {refused} reflections refused (truncated, echoed or "
            "off-task)"
        ]
        if len(done) < MIN_ROUNDS:
            notes.append(
                f"reflect under-searched: only {len(done)} round(s) (fewer than {MIN_ROUNDS}); "
                "raise --budget-calls"
            )
        return notes
