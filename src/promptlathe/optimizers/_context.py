"""What every optimizer shares: :class:`RunContext`.

The context holds the training and validation examples only: the confirmation and test
splits stay with the framework (``_framework.py``), so no optimizer can evaluate them. Every
model call goes through the run's budget and cache; every raced candidate is written to the
run log as its race ends.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import optuna

from promptlathe._stats import wilson_interval
from promptlathe.errors import BudgetExhausted, ModelError
from promptlathe.evaluator import EvalResult, Evaluator, Record
from promptlathe.lms import CachedLM
from promptlathe.metrics import Metric
from promptlathe.optimizers._budget import Budget, StageBudget
from promptlathe.optimizers._config import OptimizeConfig
from promptlathe.optimizers._plan import Plan
from promptlathe.optimizers._racing import Incumbent, RaceOutcome, RacingPruner
from promptlathe.optimizers._runlog import LogEntry, RunLog, rung_means
from promptlathe.optimizers._search import fail_stale, open_study, run_trial
from promptlathe.optimizers._state import Rejected, RunState, StageState, VetState
from promptlathe.optimizers._state_file import StateFile
from promptlathe.prompts import Prompt
from promptlathe.proposers import filter_instructions, likelihood_screen
from promptlathe.store import Store
from promptlathe.tasks import Example

S = TypeVar("S", bound=StageState)

log = logging.getLogger("promptlathe.optimize")

Emit = Callable[..., None]
"""``emit(stage, message="", **extra)``: a progress event."""

Shared = Callable[[Callable[[], None]], None]
"""``shared(search)``: run ``search`` here while the run's extra worker processes join the
running stage (:meth:`Optimizer.join`), and wait for them."""


def _alone(search: Callable[[], None]) -> None:
    search()


@dataclass(frozen=True)
class SearchData:
    """The examples an optimizer may use: train (demos, bootstrapping, proposals) and
    validation (racing). Confirmation and test are not here."""

    train: list[Example]
    val: list[Example]


class RunContext:
    """The run as an optimizer sees it.

    Args:
        cfg: the settings.
        plan: the budget's plan.
        data: train and validation examples.
        seed_prompt: the user's seed prompt (always a candidate).
        evaluator: the budgeted, cached evaluator.
        task_lm: the budgeted task model (likelihood screens, label-free screens).
        proposer: returns the budgeted proposer model, loading it on first use.
        proposer_name: which model proposes (for messages).
        budget: the run's call budget (the stage sees it through :class:`StageBudget`: it
            can lower its limit, never lift it over the confirmation reserve).
        store: the run's store (run log, shared state).
        state_path: the file that keeps the optimizer's state between restarts.
        storage: the Optuna storage URL.
        optimizer: the running stage's name (stamped on its log entries; see
            :meth:`begin_stage`).
        labels: the task's label set when it is a classification task.
        emit: progress events.
        sampler_seed: the seed of this process's Optuna samplers.
        shared: runs a stage's shareable search with the run's worker processes.
    """

    def __init__(
        self,
        *,
        cfg: OptimizeConfig,
        plan: Plan,
        data: SearchData,
        seed_prompt: Prompt,
        evaluator: Evaluator,
        task_lm: CachedLM,
        proposer: Callable[[], CachedLM],
        proposer_name: str,
        budget: Budget,
        store: Store,
        state_path: Path,
        storage: str,
        optimizer: str,
        metric: Metric,
        labels: list[str] | None,
        emit: Emit,
        sampler_seed: int,
        shared: Shared = _alone,
    ) -> None:
        self.cfg = cfg
        self.plan = plan
        self.data = data
        self.seed_prompt = seed_prompt
        self.evaluator = evaluator
        self.task_lm = task_lm
        self._proposer = proposer
        self.proposer_name = proposer_name
        self.budget = StageBudget(budget)
        self.store = store
        self.log = RunLog(store)
        self.state_path = state_path
        self._state = StateFile(state_path, store)
        self.storage = storage
        self.optimizer = optimizer
        self.metric = metric
        self.labels = labels
        self.emit = emit
        self.seed = cfg.seed
        self.sampler_seed = sampler_seed
        self.last_stage = True
        self._shared = shared
        self._studies: dict[str, optuna.Study] = {}

    # ---- models ----------------------------------------------------------------------------
    @property
    def proposer_lm(self) -> CachedLM:
        """The model that writes instructions (loaded on first use)."""
        return self._proposer()

    # ---- state -----------------------------------------------------------------------------
    def state(self, kind: type[S]) -> S:
        """Section ``kind`` of the run's saved state (its defaults when never written)."""
        return self._state.get(kind)

    def update_state(self, kind: type[S], **fields: Any) -> S:
        """Set ``fields`` of section ``kind`` (validated; other fields and sections are kept,
        whichever process of the run wrote them) and return the section as saved."""
        return self._state.update(kind, **fields)

    # ---- stages ----------------------------------------------------------------------------
    def begin_stage(self, name: str, last: bool) -> None:
        """Called by the framework before each stage: its name stamps the log entries it
        races; ``last`` says whether another stage follows (see :meth:`stage_cap`)."""
        self.optimizer = name
        self.last_stage = last

    def stage_cap(self, share: float, key: str) -> int | None:
        """The call count a stage followed by another may reach: ``share`` of the search
        calls from where it starts (saved under ``key`` in the state, so a resumed stage keeps
        its cap). The last stage of a chain has no cap of its own (``None``): it may spend
        what is left up to the framework's ceiling."""
        caps = self.state(RunState).caps
        if key in caps:  # set when the stage first started (a worker reads it here)
            return caps[key]
        if self.last_stage:
            return None
        cap = self.budget.used + int(share * self.plan.stages["search"])
        self.update_state(RunState, caps={**caps, key: cap})
        return cap

    def shared(self, search: Callable[[], None]) -> None:
        """Run ``search`` (a stage's :meth:`~Optimizer.join`) here while the run's worker
        processes, if any, join it; returns when all are done."""
        self._shared(search)

    def starts(self, start: Sequence[Prompt]) -> list[str]:
        """The distinct instructions of ``start``, best first, the seed's always among them."""
        instrs = list(dict.fromkeys(p.instruction for p in start))
        if self.seed_prompt.instruction not in instrs:
            instrs.append(self.seed_prompt.instruction)
        return instrs

    # ---- racing ----------------------------------------------------------------------------
    def incumbent(self) -> Incumbent | None:
        """The best candidate scored on all of validation so far (any optimizer, any
        process)."""
        done = self.log.complete()
        return Incumbent(done[0].mean or 0.0, done[0].scores) if done else None

    def study(
        self, suffix: str, incumbent: Callable[[], Incumbent | None] | None = None
    ) -> optuna.Study:
        """The Optuna study ``{study}-{suffix}`` (created on first use). Its pruner races
        against ``incumbent`` (default: the run's best complete candidate)."""
        if suffix not in self._studies:
            pruner = RacingPruner(len(self.data.val), incumbent or self.incumbent, self.cfg.alpha)
            name = f"{self.cfg.study}-{suffix}"
            self._studies[suffix] = open_study(
                self.storage, name, self.cfg.sampler, self.sampler_seed, pruner
            )
            known = self.state(RunState).studies
            if suffix not in known:
                self.update_state(RunState, studies=[*known, suffix])
        elif incumbent is not None:
            racing = self._studies[suffix].pruner
            assert isinstance(racing, RacingPruner)
            racing.incumbent = incumbent
        return self._studies[suffix]

    def fail_stale(self) -> None:
        """Requeue the trials a killed process left running, in every study of the run."""
        for suffix in self.state(RunState).studies:
            fail_stale(self.study(suffix))

    def known(self) -> dict[str, LogEntry]:
        """Logged candidates by prompt hash (raced once per run)."""
        return {e.id: e for e in self.log.entries() if e.state != "failed"}

    def race(
        self,
        prompt: Prompt,
        *,
        study: optuna.Study,
        source: str,
        parent: str | None = None,
        trial: optuna.Trial | None = None,
    ) -> str:
        """Race ``prompt`` on validation rung by rung (pruned as soon as it cannot win) and
        log it. A prompt already raced costs nothing. Returns the outcome: ``complete``,
        ``pruned``, ``duplicate`` or ``skipped`` (another process is racing it).

        Raises:
            BudgetExhausted: the budget ran out mid-race (the candidate is logged as failed).
        """
        trial = trial or study.ask()
        trial.set_user_attr("source", source)
        start = self.budget.used
        out = RaceOutcome()
        try:
            run_trial(
                study,
                trial,
                prompt,
                self.data.val,
                self.evaluator,
                self.plan.rungs,
                self.known(),
                calls=lambda: self.budget.used,
                max_cost=self.cfg.max_cost_per_example,
                out=out,
            )
        except BudgetExhausted:
            self._log(prompt, source, parent, out, start)
            raise
        if out.state in ("complete", "pruned"):
            self._log(prompt, source, parent, out, start)
        return out.state

    def _log(
        self, prompt: Prompt, source: str, parent: str | None, out: RaceOutcome, start: int
    ) -> None:
        scores = [float(s) for s in out.scores]
        self.log.write(
            LogEntry(
                id=prompt.hash,
                optimizer=self.optimizer,
                source=source,
                parent=parent,
                prompt=prompt.to_dict(),
                scores=tuple(scores),
                rungs=rung_means(scores, self.plan.rungs),
                state=out.state,
                calls=self.budget.used - start,
                calls_at_end=self.budget.used,
                note=out.stopped,
                extra={"tokens_per_example": out.tokens_per_example},
            )
        )

    def records(self, prompt: Prompt, examples: Sequence[Example]) -> list[Record]:
        """``prompt``'s scored records on ``examples`` (free when it was raced on them)."""
        res: EvalResult = self.evaluator.evaluate(prompt, examples)
        return res.records

    @staticmethod
    def lower_bound(entry: LogEntry) -> float:
        """95 % Wilson lower bound of an entry's mean: compares candidates stopped at
        different rungs (3 of 8 is weaker evidence than 30 of 100)."""
        return wilson_interval(sum(entry.scores), len(entry.scores))[0] if entry.scores else 0.0

    # ---- proposals -------------------------------------------------------------------------
    def vet(self, raw: list[str], existing: list[str], source: str) -> list[dict[str, Any]]:
        """Sanity filters, then the likelihood screen; logs what was dropped and why.

        A proposal that restates one example is checked against every example a proposer may
        be shown: train (demonstrations) and validation (the failures ``reflect`` shows)."""
        shown = [*self.data.train, *self.data.val]
        kept, rejected = filter_instructions(raw, existing=existing, examples=shown)
        screened, lik = self._screen(kept)
        dropped = [k for k in kept if k not in screened]
        screened_out = "screened out: demos less likely than with no instruction"
        rows = [*rejected, *((text, screened_out) for text in dropped)]
        for text, why in rows:
            log.info("rejected %s proposal %r: %s", source, text, why)
        if rows:
            done = self.state(VetState).rejected
            new = [Rejected(instruction=t, source=source, reason=w) for t, w in rows]
            self.update_state(VetState, rejected=[*done, *(r for r in new if r not in done)])
        self.emit(
            "propose",
            f"{source.upper()}: {len(raw)} proposals, {len(rejected)} failed sanity checks, "
            f"{len(dropped)} off-task by likelihood, {len(screened)} kept",
        )
        return [{"instruction": k, "source": source, "loglik": lik.get(k)} for k in screened]

    def _screen(self, kept: list[str]) -> tuple[list[str], dict[str, float]]:
        if not kept or not self.plan.n_screen_demos:
            return kept, {}
        demos = self.data.train[: self.plan.n_screen_demos]
        try:
            return likelihood_screen(self.task_lm, kept, demos, self.seed_prompt.format)
        except (ModelError, BudgetExhausted):
            return kept, {}

    def stage_limit(self, limit: int | None) -> contextlib.AbstractContextManager[None]:
        """Cap the calls a stage may reach (the run's call count), restoring it after."""
        return self.budget.capped(limit)
