"""The framework every optimizer runs in: plan → stages → confirmation → test → artifact.

The stages of ``--optimizer`` (e.g. ``propose,joint``) run in order, each starting from what
the previous one returned. Only this module touches the confirmation and test splits and the
budget's ceiling; stages get a :class:`RunContext` without them. Every step is resumable: LM
calls, scored records, the run log and the Optuna trials are on disk."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from promptlathe._stats import wilson_interval
from promptlathe.errors import BudgetExhausted, PromptlatheError
from promptlathe.evaluator import Decoding, Evaluator, choose_decode
from promptlathe.lms import LM, CachedLM, backend_class
from promptlathe.metrics import is_code_metric, metric_reason, task_metric
from promptlathe.optimizers import _plan_text, _workers
from promptlathe.optimizers._budget import Budget
from promptlathe.optimizers._config import OptimizeConfig
from promptlathe.optimizers._confirm import confirm, with_cut_leader
from promptlathe.optimizers._context import RunContext, SearchData
from promptlathe.optimizers._held_out import baselines, evaluate_test
from promptlathe.optimizers._lock import RunLock
from promptlathe.optimizers._models import RunModels
from promptlathe.optimizers._notes import cap_notes, shipped_notes, strategy_notes
from promptlathe.optimizers._plan import Plan
from promptlathe.optimizers._planning import make_plan
from promptlathe.optimizers._protocol import get_optimizer, parse_chain
from promptlathe.optimizers._result import OptimizeResult, write_result
from promptlathe.optimizers._rundir import check_data, check_run_dir, check_shared_run, run_store
from promptlathe.optimizers._runlog import RunLog
from promptlathe.optimizers._stages import shipped
from promptlathe.prompts import Prompt
from promptlathe.proposers import label_set
from promptlathe.tasks import Split, load_examples, read_meta, run_split

log = logging.getLogger("promptlathe.optimize")

Callback = Callable[[dict[str, Any]], None]
"""Progress events: ``{"stage", "calls", "budget", "best", "best_ci", "message"}``."""


class _Paused(Exception):
    """Raised by :meth:`Optimization.prepare` where a stage's shared search would start."""


class Optimization:
    """One run directory and everything needed to (re)start its stages.

    Args:
        cfg: the settings.
        resume: continue an existing run directory (otherwise it must not exist).
        callback: receives progress events.
        lm: use this task LM instead of building one from ``cfg`` (tests pass a double).
        proposer_lm: likewise for the proposer.
        worker: join the shared search of a running run (no lock, no config written; the
            main process holds the run directory's lock).
        code_metric_ok: ``cfg.metric`` was typed by the user (not read back from a run's
            ``config.json``), so it may name a Python function.
        workers: processes on this machine that run a stage's shared search (the joint
            search), this one included; they share the cores.

    Raises:
        RunInUseError: another process (not a worker) holds the run directory.
    """

    def __init__(
        self,
        cfg: OptimizeConfig,
        resume: bool = False,
        callback: Callback | None = None,
        lm: LM | None = None,
        proposer_lm: LM | None = None,
        worker: bool = False,
        code_metric_ok: bool = True,
        workers: int = 1,
    ) -> None:
        if workers < 1 or (workers > 1 and (lm is not None or worker)):
            raise PromptlatheError(
                f"workers={workers}: needs a whole number ≥ 1, and models given by name (a "
                "worker process loads its own)"
            )
        self.cfg = cfg
        self.dir = Path(cfg.out)
        self.workers = workers
        self.code_metric_ok = code_metric_ok
        self.callback = callback or (lambda event: None)
        self.final: list[Prompt] | None = None
        """What the last stage returned (``None`` until the stages ran)."""
        self._pause = False
        # a stage name that is not registered is one line before the run directory exists
        self.chain = [get_optimizer(n) for n in parse_chain(cfg.optimizer)]
        self._lock: RunLock | None = None if worker else RunLock.acquire(self.dir)
        try:
            self._init(resume, lm, proposer_lm, worker, code_metric_ok)
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise

    def _init(
        self, resume: bool, lm: LM | None, proposer_lm: LM | None, worker: bool, typed: bool
    ) -> None:
        cfg = self.cfg
        # Each worker samples with its own seed: with the main's seed it would propose the
        # very trials the main process is running (deduplicated, but wasted).
        sampler_seed = cfg.seed if not worker else (cfg.seed + os.getpid()) % 2**32
        if worker:  # on another machine, a worker's directory is new
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise PromptlatheError(
                    f"--out {self.dir}: cannot create it ({exc.strerror})"
                ) from None
        check_run_dir(cfg, self.dir, resume)
        self.t0 = time.perf_counter()

        # ---- data ----------------------------------------------------------------------
        examples = load_examples(cfg.task)
        test_examples = load_examples(cfg.test) if cfg.test else None
        digests = check_data(cfg, self.dir, resume)
        self.meta = read_meta(cfg.task)
        n_test = len(test_examples) if test_examples is not None else None
        # What the task model can do, declared by its backend class (read before it loads).
        self.backend: LM | type[LM] = (
            lm if lm is not None else backend_class(cfg.base_url, cfg.model)
        )
        scoring = self.backend.embedded  # likelihood screens only where scoring is cheap
        self.plan = make_plan(cfg, len(examples), n_test, scoring=scoring)
        self.plan_for: Callable[[int], Plan] = lambda budget: make_plan(
            replace(cfg, budget_calls=budget), len(examples), n_test, scoring=scoring
        )
        """The plan this run would have with another ``--budget-calls``."""
        parts = run_split(
            examples,
            test_examples,
            n_test=self.plan.n_test,
            n_val=self.plan.n_val,
            n_confirm=self.plan.n_confirm,
            seed=cfg.seed,
        )
        self.split = Split(train=parts.train, val=parts.val, test=parts.test)
        self.confirm, self.test = parts.confirm, parts.test
        targets = [e.target for e in examples]
        metric_typed = cfg.metric if typed or not is_code_metric(cfg.metric) else None
        self.metric = task_metric(
            metric_typed,
            cfg.metric or self.meta.metric,
            self.meta.path if not cfg.metric else f"{self.dir / 'config.json'}",
            targets,
        )
        self.metric_reason = metric_reason(
            cfg.metric, self.meta.metric, self.meta.path, self.metric
        )
        self.labels = label_set([e.target for e in self.split.train])
        self.decode_labels, self.decode_reason = choose_decode(
            cfg.decode,
            self.metric,
            lm if lm is not None else self.backend,
            [e.target for e in self.split.train],
            cfg.task,
        )
        if cfg.prescreen == "mi" and self.labels is None:
            raise PromptlatheError(
                f"{cfg.task}: --prescreen mi needs a classification task (at most 20 distinct "
                "targets); this one is open-ended"
            )

        # ---- models, store, budget ----------------------------------------------------
        self.store = run_store(cfg, self.dir)
        if self.store.shared:
            check_shared_run(cfg, self.store, digests, resume, worker)
        prices = cfg.model_prices() if cfg.budget_cost is not None else {}
        self.budget = Budget(
            self.store, cfg.budget_calls, cfg.budget_tokens, cfg.budget_cost,
            max(prices.values(), default=(0.0, 0.0), key=lambda p: p[0] + p[1]),
        )  # fmt: skip
        if resume and not worker:
            # Holding the lock: give back what a killed process reserved but never called.
            leaked = self.budget.reconcile()
            if leaked:
                log.info("gave back %d calls reserved by an interrupted process", leaked)
        self.models = RunModels(
            cfg, self.backend.embedded, self.budget, self.store, lm, proposer_lm, prices
        )
        self.task_lm, self.free_lm = self.models.task_lm, self.models.free_lm
        self.proposer_name = self.models.proposer_name
        self.decoding = Decoding(
            max_tokens=cfg.max_tokens, seed=cfg.seed, reasoning_tokens=cfg.reasoning_tokens
        )
        self.evaluator = Evaluator(
            self.task_lm, self.metric, self.decoding, self.store, "opt", labels=self.decode_labels
        )
        self.test_evaluator = Evaluator(
            self.free_lm, self.metric, self.decoding, self.store, "opt", labels=self.decode_labels
        )
        self.seed_prompt = (
            Prompt.load(cfg.seed_prompt) if cfg.seed_prompt else Prompt(instruction=cfg.instruction)
        )
        self.log = RunLog(self.store)
        self.ctx = RunContext(
            cfg=cfg,
            plan=self.plan,
            data=SearchData(train=self.split.train, val=self.split.val),
            seed_prompt=self.seed_prompt,
            evaluator=self.evaluator,
            task_lm=self.task_lm,
            proposer=lambda: self.proposer_lm,
            proposer_name=self.proposer_name,
            budget=self.budget,
            store=self.store,
            state_path=self.dir / "candidates.json",
            storage=cfg.storage or f"sqlite:///{(self.dir / 'study.db').resolve()}",
            optimizer=self.chain[0].name,
            metric=self.metric,
            labels=self.labels,
            emit=self.emit,
            sampler_seed=sampler_seed,
            shared=self._shared,
        )
        # Written last: a run whose data or model failed to load leaves no config behind.
        if not worker:
            (self.dir / "config.json").write_text(cfg.to_json() + "\n")
            if self.store.shared:  # for workers on other machines
                self.store.put_document("config", cfg.to_dict())

    @property
    def optimizer_name(self) -> str:
        """The chain as given (``propose,joint``)."""
        return ",".join(o.name for o in self.chain)

    def use_threads(self, n: int | None) -> None:
        """Run the embedded models on ``n`` threads (``None``: the configured number)."""
        self.models.use_threads(n)

    @property
    def proposer_lm(self) -> CachedLM:
        """The model that writes instructions, loaded on first use."""
        return self.models.proposer_lm

    def plan_lines(self, analysis_calls: int | None = None) -> list[str]:
        """What the run will do and spend, every model call counted, for printing first."""
        return _plan_text.run_plan_lines(self, analysis_calls)

    def emit(self, stage: str, message: str = "", **extra: Any) -> None:
        ctx = getattr(self, "ctx", None)
        inc = ctx.incumbent() if ctx is not None else None
        best = inc.value if inc else None
        ci = wilson_interval(sum(inc.scores), len(inc.scores)) if inc and inc.scores else None
        self.callback(
            {
                "stage": stage,
                "calls": self.budget.used,
                "budget": self.cfg.budget_calls,
                "best": best,
                "best_ci": ci,
                "message": message,
                **extra,
            }
        )

    # ---- stages ----------------------------------------------------------------------------
    def run(self) -> OptimizeResult:
        """Run (or resume) every stage, then confirmation and test; returns the result."""
        self.run_stages()
        return self.finish()

    def run_stages(self) -> None:
        """The optimizer's stages in order, each from what the previous one returned (the
        first from the seed). A stage the budget stops hands on what it started from."""
        self.budget.ceiling = self.plan.search_limit
        self.ctx.fail_stale()
        cands = [self.seed_prompt]
        for i, stage in enumerate(self.chain):
            self.budget.stage_limit = None
            self.ctx.begin_stage(stage.name, last=i == len(self.chain) - 1)
            try:
                cands = stage.run(self.ctx, cands) or cands
            except BudgetExhausted as exc:
                self.emit("search", f"search stopped: {exc}")
            except _Paused:
                return
        self.budget.stage_limit = None
        self.final = cands

    def prepare(self) -> None:
        """Run the stages up to the first shared search and stop there, for processes that
        are then joined by hand (:meth:`search`)."""
        self._pause = True
        try:
            self.run_stages()
        finally:
            self._pause = False

    def search(self) -> None:
        """Join the shared search of the run's stages (what a worker process does); several
        processes may run it at once."""
        self.budget.ceiling = self.plan.search_limit
        joined = False
        for i, stage in enumerate(self.chain):
            self.budget.stage_limit = None
            self.ctx.begin_stage(stage.name, last=i == len(self.chain) - 1)
            try:
                joined = stage.join(self.ctx) or joined
            except BudgetExhausted as exc:
                self.emit("search", f"search stopped: {exc}")
        if not joined:
            raise PromptlatheError(
                f"--optimizer {self.optimizer_name}: no stage has a search worker processes "
                "can join (the joint stage has)"
            )

    def _shared(self, search: Callable[[], None]) -> None:
        """A stage's shared search: here, and in ``workers - 1`` more processes."""
        if self._pause:
            raise _Paused
        if self.workers <= 1:
            search()
            return
        # llama.cpp threads spin: N processes each using every core run slower than one.
        # While workers search, each process (this one too) gets its share of the cores.
        share = self.cfg.threads or max(1, (os.cpu_count() or 2) // self.workers)
        metric = self.cfg.metric if self.code_metric_ok else None
        self.use_threads(share)
        procs = _workers.spawn(self.cfg.out, self.cfg.storage, metric, share, self.workers - 1)
        try:
            search()
            _workers.wait(procs)
        finally:
            _workers.stop(procs)
            self.use_threads(None)

    def finish(self) -> OptimizeResult:
        """Confirmation on the held-out confirmation split, then the untouched test split."""
        self.budget.stage_limit = None
        self.budget.ceiling = None
        entries = self.log.complete()
        if self.final is not None:  # what the last stage returned, and the seed
            ids = {p.hash for p in self.final}
            chosen = [e for e in entries if e.id in ids]
            seed = [e for e in entries if e.id == self.seed_prompt.hash and e.id not in ids]
            entries = chosen + seed if chosen else entries
        if not entries:  # nothing reached all of validation (a race stops prompts that
            # score 0 on their first rung): the best partly raced ones are confirmed with
            # the seed all the same, so even a hollow run says what its prompts are worth
            raced = [e for e in self.log.entries() if e.scores]
            entries = sorted(raced, key=lambda e: (-(e.mean or 0.0), -e.n))
        elif self.plan.confirm_top >= 2:  # a race the budget cut short while it led
            entries = with_cut_leader(entries, self.log.entries(), self.plan.rungs[0], self.emit)
        best, seed_c, pool = confirm(
            entries,
            self.seed_prompt,
            self.evaluator,
            self.confirm,
            self.plan.confirm_top,
            self.emit,
        )
        ship = shipped(best.prompt, [*self.split.train, *self.split.val, *self.confirm])
        test, seed_test = evaluate_test(
            self.test_evaluator, ship, seed_c.prompt, self.test, self.emit
        )
        result = OptimizeResult(
            best_prompt=ship,
            run_dir=self.dir,
            best=best,
            seed=seed_c,
            test=test,
            seed_test=seed_test,
            calls_used=self.budget.used,
            budget=self.cfg.budget_calls,
            plan=self.plan,
            trials=self.log.counts(),
            wall_seconds=time.perf_counter() - self.t0,
            confirmed=pool,
            baselines=baselines(self.metric, self.split.train, test),
            seed_baselines=baselines(self.metric, self.split.train, seed_test),
            optimizer=self.optimizer_name,
            notes=[
                *(n for o in self.chain for n in o.result_notes(self.ctx)),
                *strategy_notes(self.ctx),
                *shipped_notes(best.prompt, ship),
                *cap_notes(ship, test, self.cfg.max_tokens, self.cfg.reasoning_tokens),
            ],
        )
        write_result(result, self.cfg, self.metric, self.decode_labels, self.decoding)
        self.emit("done", f"wrote {result.best_prompt_path}")
        return result

    def close(self) -> None:
        """Release the models, the store and the run directory's lock (idempotent)."""
        try:
            self.models.close()
            self.store.close()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
