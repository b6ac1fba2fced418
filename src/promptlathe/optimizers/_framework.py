"""The framework every optimizer runs in: plan → ``optimizer.prepare`` → ``optimizer.search``
→ confirmation → test → artifact. Only this module touches the confirmation and test splits;
optimizers get a :class:`RunContext` without them. Every stage is resumable: LM calls, scored
records, the run log and the Optuna trials are on disk."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from promptlathe._hashing import sha256_file
from promptlathe._stats import wilson_interval
from promptlathe.analysis import Baselines, label_set, trivial_baselines
from promptlathe.errors import BudgetExhausted, PromptlatheError
from promptlathe.evaluator import Decoding, EvalResult, Evaluator, choose_decode
from promptlathe.lms import LM, MODELS, CachedLM, backend_class, get_lm, is_installed
from promptlathe.metrics import LabelMetric, is_code_metric, metric_reason, task_metric
from promptlathe.optimizers._budget import Budget
from promptlathe.optimizers._config import OptimizeConfig, Plan, make_plan
from promptlathe.optimizers._context import RunContext, SearchData
from promptlathe.optimizers._lock import RunLock
from promptlathe.optimizers._protocol import Optimizer, get_optimizer
from promptlathe.optimizers._runlog import RunLog
from promptlathe.optimizers._stages import seed_joint_search, shipped, strategy_choices
from promptlathe.prompts import Prompt, StrategySpec
from promptlathe.store import Store, is_server_url
from promptlathe.strategies import get_strategy
from promptlathe.tasks import Example, Split, load_examples, read_meta

log = logging.getLogger("promptlathe.optimize")

Callback = Callable[[dict[str, Any]], None]
"""Progress events: ``{"stage", "calls", "budget", "best", "best_ci", "message"}``."""


@dataclass
class Candidate:
    """A fully evaluated prompt with its validation and confirmation scores."""

    prompt: Prompt
    val: float
    val_n: int
    confirm: float | None = None
    confirm_n: int = 0
    source: str = ""
    tokens: float | None = None
    """Tokens per example (prompt + output, every call) when the run log recorded them."""

    @property
    def pooled(self) -> float:
        """Mean over validation and confirmation examples together.

        Confirmation alone is unbiased but small; validation is larger but was used to pick
        the finalists. Pooling lets a clear validation lead survive a small confirmation
        dip, while a lead that was luck shrinks. (The untouched test split gives the score
        that is reported.)
        """
        parts = [
            (m, n)
            for m, n in ((self.val, self.val_n), (self.confirm, self.confirm_n))
            if m is not None and n and m == m
        ]
        total = sum(n for _, n in parts)
        return sum(m * n for m, n in parts) / total if total else 0.0

    @property
    def n(self) -> int:
        """Examples behind :attr:`pooled`."""
        return self.val_n + (self.confirm_n if self.confirm is not None else 0)


COSTLIER = 1.5
"""A candidate this many times the tokens per example of another counts as costlier."""


def choose_winner(contenders: list[Candidate], seed: Candidate | None) -> Candidate:
    """The best pooled score; on a near-tie, the cheaper candidate.

    The seed wins exact ties (a new prompt wins only on evidence). A candidate that costs at
    least :data:`COSTLIER` times the tokens of another must also beat it by more than one
    example of the pooled count: a reasoning strategy that ties a direct answer at three
    times the tokens is not a win.
    """
    best = max(contenders, key=lambda c: (c.pooled, c is seed, c.val))
    if best.tokens is None:
        return best
    margin = 1.0 / max(best.n, 1) + 1e-9
    cheaper = [
        c
        for c in contenders
        if c.tokens is not None
        and c.tokens * COSTLIER <= best.tokens
        and c.pooled >= best.pooled - margin
    ]
    return max(cheaper, key=lambda c: (c.pooled, c is seed, c.val)) if cheaper else best


@dataclass
class OptimizeResult:
    """What an optimization produced. ``test``/``seed_test`` are on the untouched test split."""

    best_prompt: Prompt
    run_dir: Path
    best: Candidate
    seed: Candidate | None
    test: EvalResult | None
    seed_test: EvalResult | None
    calls_used: int
    budget: int
    plan: Plan
    trials: dict[str, int] = field(default_factory=dict)
    wall_seconds: float = 0.0
    confirmed: list[Candidate] = field(default_factory=list)
    baselines: Baselines | None = None
    seed_baselines: Baselines | None = None
    optimizer: str = "joint"
    notes: list[str] = field(default_factory=list)

    @property
    def best_prompt_path(self) -> Path:
        return self.run_dir / "best_prompt.json"

    def summary(self) -> dict[str, Any]:
        def ev(r: EvalResult | None) -> dict[str, Any] | None:
            return None if r is None else r.summary()

        return {
            "best_prompt": self.best_prompt.to_dict(),
            "best": {k: v for k, v in asdict(self.best).items() if k != "prompt"},
            "seed": None
            if self.seed is None
            else {k: v for k, v in asdict(self.seed).items() if k != "prompt"},
            "test": ev(self.test),
            "seed_test": ev(self.seed_test),
            "calls_used": self.calls_used,
            "budget": self.budget,
            "plan": self.plan.as_dict(),
            "trials": self.trials,
            "optimizer": self.optimizer,
            "notes": self.notes,
            "wall_seconds": self.wall_seconds,
            "baselines": self.baselines.to_dict() if self.baselines else None,
            "seed_baselines": self.seed_baselines.to_dict() if self.seed_baselines else None,
            "confirmed": [
                {
                    "prompt": c.prompt.to_dict(),
                    "prompt_hash": c.prompt.hash,
                    **{k: v for k, v in asdict(c).items() if k != "prompt"},
                }
                for c in self.confirmed
            ],
        }


def _default_proposer(cfg: OptimizeConfig) -> str:
    if cfg.proposer_model:
        return cfg.proposer_model
    best = MODELS.get("qwen2.5-coder-1.5b")
    if not cfg.base_url and best is not None and is_installed(best):
        return best.name
    return cfg.model


def run_store(cfg: OptimizeConfig, run_dir: Path) -> Store:
    """The run's store: the ``--storage`` database when it is a server (shared by every
    machine of the run, under the study's name), else ``calls.sqlite`` in the run directory."""
    if is_server_url(cfg.storage):
        assert cfg.storage is not None
        return Store(cfg.storage, namespace=f"{cfg.study}/")
    return Store(run_dir / "calls.sqlite")


class Optimization:
    """One run directory and everything needed to (re)start its stages.

    Args:
        cfg: the settings.
        resume: continue an existing run directory (otherwise it must not exist).
        callback: receives progress events.
        lm: use this task LM instead of building one from ``cfg`` (tests pass a double).
        proposer_lm: likewise for the proposer.
        worker: join the joint search of a running run (no lock, no config written; the
            main process holds the run directory's lock).
        code_metric_ok: ``cfg.metric`` was typed by the user (not read back from a run's
            ``config.json``), so it may name a Python function.

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
    ) -> None:
        self.cfg = cfg
        self.dir = Path(cfg.out)
        self.callback = callback or (lambda event: None)
        self._lock: RunLock | None = None if worker else RunLock.acquire(self.dir)
        try:
            self._init(resume, lm, proposer_lm, worker, code_metric_ok)
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise

    def _init(
        self,
        resume: bool,
        lm: LM | None,
        proposer_lm: LM | None,
        worker: bool,
        code_metric_ok: bool,
    ) -> None:
        cfg = self.cfg
        # Each worker samples with its own seed: with the main's seed it would propose the
        # very trials the main process is running (deduplicated, but wasted).
        self.sampler_seed = cfg.seed if not worker else (cfg.seed + os.getpid()) % 2**32
        if worker:  # on another machine, a worker's directory is new
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise PromptlatheError(
                    f"--out {self.dir}: cannot create it ({exc.strerror})"
                ) from None
        self._check_run_dir(resume)
        self.t0 = time.perf_counter()

        # ---- data ----------------------------------------------------------------------
        examples = load_examples(cfg.task)
        test_examples = load_examples(cfg.test) if cfg.test else None
        self._check_data(resume)
        self.meta = read_meta(cfg.task)
        n_test = len(test_examples) if test_examples is not None else None
        self.plan = make_plan(cfg, len(examples), n_test, scoring=not cfg.base_url)
        self.plan_for: Callable[[int], Plan] = lambda budget: make_plan(
            replace(cfg, budget_calls=budget), len(examples), n_test, scoring=not cfg.base_url
        )
        """The plan this run would have with another ``--budget-calls``."""
        self.split, self.confirm, self.test = self._split(examples, test_examples)
        targets = [e.target for e in examples]
        typed = cfg.metric if code_metric_ok or not is_code_metric(cfg.metric) else None
        self.metric = task_metric(
            typed,
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
            lm if lm is not None else backend_class(cfg.base_url),
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
            self._check_shared_run(resume, worker)
        self.budget = Budget(self.store, cfg.budget_calls, cfg.budget_tokens)
        if resume and not worker:
            # Holding the lock: give back what a killed process reserved but never called.
            leaked = self.budget.reconcile()
            if leaked:
                log.info("gave back %d calls reserved by an interrupted process", leaked)
        inner = lm or get_lm(cfg.model, base_url=cfg.base_url, **self._embedded_kwargs())
        self.task_lm = self.budget.wrap(inner)
        self.free_lm = CachedLM(inner, self.store)  # test evaluation: outside the budget
        self.proposer_name = _default_proposer(cfg)
        self._proposer_inner = proposer_lm
        self._proposer_lm: CachedLM | None = None
        same_model = self.proposer_name == cfg.model and cfg.proposer_base_url in (
            None,
            cfg.base_url,
        )
        if proposer_lm is None and (lm is not None or same_model):
            self._proposer_lm = self.task_lm
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
        self.storage = cfg.storage or f"sqlite:///{(self.dir / 'study.db').resolve()}"
        self.optimizer: Optimizer = get_optimizer(cfg.optimizer)
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
            storage=self.storage,
            optimizer=self.optimizer.name,
            metric=self.metric,
            labels=self.labels,
            emit=self.emit,
            sampler_seed=self.sampler_seed,
        )
        # Written last: a run whose data or model failed to load leaves no config behind.
        if not worker:
            (self.dir / "config.json").write_text(cfg.to_json() + "\n")
            if self.store.shared:  # for workers on other machines
                self.store.put_document("config", cfg.to_dict())

    def use_threads(self, n: int | None) -> None:
        """Run the embedded models on ``n`` threads (``None``: the configured number), e.g.
        while worker processes share the cores."""
        n = n or self.cfg.threads or os.cpu_count() or 1
        for lm in {id(x): x for x in (self.task_lm, self._proposer_lm) if x is not None}.values():
            set_threads = getattr(lm.inner, "set_threads", None)
            if set_threads is not None:
                set_threads(n)

    def _embedded_kwargs(self, embedded: bool = False) -> dict[str, Any]:
        """Backend options for an embedded model (none for a server)."""
        if self.cfg.base_url and not embedded:
            return {}
        return {"n_ctx": self.cfg.n_ctx, "n_threads": self.cfg.threads}

    @property
    def proposer_lm(self) -> CachedLM:
        """The model that writes instructions, loaded on first use (``report`` and workers
        never load it)."""
        if self._proposer_lm is None:
            inner = self._proposer_inner
            if inner is None and self.cfg.proposer_base_url:
                inner = get_lm(
                    self.proposer_name,
                    base_url=self.cfg.proposer_base_url,
                    api_key=os.environ.get("PROMPTLATHE_PROPOSER_API_KEY") or None,
                )
            elif inner is None:
                inner = get_lm(self.proposer_name, **self._embedded_kwargs(embedded=True))
            self._proposer_lm = self.budget.wrap(inner)
        return self._proposer_lm

    def plan_lines(self, analysis_calls: int | None = None) -> list[str]:
        """What the run will do and spend, every model call counted, for printing first."""
        lines = [f"metric: {self.metric.name} ({self.metric_reason})"]
        lines.append(f"proposer: {self.proposer_name} ({self.proposer_reason()})")
        lines.append(f"answers: {self.decode_reason}")
        lines.append(f"optimizer: {self.optimizer.name} ({self.optimizer.summary})")
        specs, skipped = strategy_choices(self.ctx)
        lines.append(self._strategy_line(specs, skipped))
        # A winner that samples k times per input (self-consistency, choice shuffling) makes
        # k calls per test input, and k per analysed one.
        seed_k = get_strategy(self.seed_prompt.strategy).calls_per_input()
        win_k = max([seed_k, *(get_strategy(s).calls_per_input() for s in specs)])
        test = self.plan.test_calls(win_k, seed_k)
        lines += self.plan.describe(self.optimizer.plan_lines(self.plan), win_k, seed_k)
        lines += [f"warning: {w}" for w in self.optimizer.warnings(self.plan, self.plan_for)]
        analyses = win_k * (analysis_calls or 0)
        total = self.plan.budget + test + analyses
        parts = [f"search ≤ {self.plan.budget}", f"test {'≤ ' if win_k > 1 else ''}{test}"]
        if analyses:
            parts.append(f"report analyses ≤ {analyses}")
        lines.append(f"all model calls: ≤ {total} ({' + '.join(parts)})")
        return lines

    def _strategy_line(self, specs: list[StrategySpec], skipped: dict[str, str]) -> str:
        if [s.name for s in specs] == ["direct"] and not skipped:
            line = "strategies: direct only (--strategies all searches reasoning and voting)"
        else:
            names = ", ".join(dict.fromkeys(s.name for s in specs))
            line = f"strategies: {names} searched"
            line += "".join(f"; {n} left out: {why}" for n, why in skipped.items())
            if any(get_strategy(s).reasoning for s in specs):
                line += f"; reasoned answers up to {self.cfg.reasoning_tokens} tokens"
        if self.cfg.max_cost_per_example is not None:
            line += f"; the winner costs ≤ {self.cfg.max_cost_per_example} tokens per example"
        return line

    def proposer_reason(self) -> str:
        if self.cfg.proposer_base_url:
            return "given by --proposer-model, on --proposer-base-url"
        if self.cfg.proposer_model:
            return "given by --proposer-model"
        best = MODELS.get("qwen2.5-coder-1.5b")
        if self.proposer_name == self.cfg.model and best is not None:
            if self.cfg.base_url:
                return "the task model on the server; --proposer-model picks another"
            return (
                f"the task model; {best.name} writes better instructions: "
                f"promptlathe models install {best.name}"
            )
        return "the strongest installed embedded model"

    # ---- setup helpers ----------------------------------------------------------------
    def _check_run_dir(self, resume: bool) -> None:
        cfg_path = self.dir / "config.json"
        if cfg_path.exists():
            if not resume:
                raise PromptlatheError(
                    f"{self.dir} already holds a run; add --resume to continue it, or choose "
                    "another --out"
                )
            old = OptimizeConfig.load(cfg_path)
            diff = old.differences(self.cfg)
            if diff:
                raise PromptlatheError(
                    f"{cfg_path}: --resume with different settings ({', '.join(diff)}); use the "
                    "same command, or another --out"
                )

    def _check_data(self, resume: bool) -> None:
        """Record the data files' sha256 on the first start; on --resume, refuse files whose
        content changed (the same path with other examples would silently mix two tasks)."""
        path = self.dir / "data.json"
        files = {"task": self.cfg.task, **({"test": self.cfg.test} if self.cfg.test else {})}
        now = {k: sha256_file(Path(v)) for k, v in files.items()}
        if resume and path.is_file():
            try:
                before = json.loads(path.read_text())
            except (OSError, ValueError):
                before = {}
            changed = [k for k in now if before.get(k) not in (None, now[k])]
            if changed:
                which = ", ".join(f"--{k} {files[k]}" for k in changed)
                raise PromptlatheError(
                    f"{which}: the file's content changed since the run started (sha256 differs "
                    f"from {path}); restore it, or start a new run with another --out"
                )
        if not path.is_file() or not resume:
            path.write_text(json.dumps({"v": 1, **now}, indent=2) + "\n")
        self._data_sha = now

    def _check_shared_run(self, resume: bool, worker: bool) -> None:
        """On a shared database: a new main process must not take over another run's study,
        and a worker's data files must be the main's (same content, wherever they live)."""
        cfg, where = self.cfg, f"--study {self.cfg.study}"
        doc = self.store.get_document("config")
        if not worker and doc is not None:
            if not resume:
                raise PromptlatheError(
                    f"{where}: the --storage database already holds a run of that name; add "
                    "--resume to continue it, or choose another --study"
                )
            diff = OptimizeConfig.from_dict(doc, where).differences(cfg)
            if diff:
                raise PromptlatheError(
                    f"{where}: --resume with different settings ({', '.join(diff)}) than the "
                    "run in --storage"
                )
        data = self.store.get_document("data")
        if worker and data is not None:
            changed = [k for k, v in self._data_sha.items() if data.get(k) not in (None, v)]
            if changed:
                files = {"task": cfg.task, "test": cfg.test}
                which = ", ".join(f"--{k} {files[k]}" for k in changed)
                raise PromptlatheError(
                    f"{which}: this machine's file differs from the one the run started with "
                    "(sha256); give every machine the same data"
                )
        elif not worker:
            self.store.put_document("data", {"v": 1, **self._data_sha})

    def _split(
        self, examples: list[Example], test: list[Example] | None
    ) -> tuple[Split, list[Example], list[Example]]:
        """Seeded shuffle, then test (unless a test file is given), validation, confirmation,
        and the rest for training (exemplars, bootstrapping, proposals)."""
        p = self.plan
        order = np.random.default_rng(self.cfg.seed).permutation(len(examples))
        shuffled = [examples[i] for i in order]
        n_test = 0 if test is not None else p.n_test
        test_part = test if test is not None else shuffled[:n_test]
        rest = shuffled[n_test:]
        val, confirm = rest[: p.n_val], rest[p.n_val : p.n_val + p.n_confirm]
        train = rest[p.n_val + p.n_confirm :]
        return Split(train=train, val=val, test=test_part), confirm, test_part

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
        """Run (or resume) every stage and return the result."""
        self.prepare()
        self.search()
        return self.finish()

    def prepare(self) -> None:
        """What the optimizer does in one process before the search can be shared."""
        self.budget.stage_limit = self.plan.search_limit
        self.ctx.fail_stale()
        try:
            self.optimizer.prepare(self.ctx)
        except BudgetExhausted as exc:
            self.emit("search", f"search stopped: {exc}")
        if "joint_instructions" not in self.ctx.load_state():
            self.ctx.set_space([self.seed_prompt.instruction])
        seed_joint_search(self.ctx)

    def search(self) -> None:
        """The optimizer's shared search; several processes may run it at once."""
        if "joint_instructions" not in self.ctx.load_state():
            raise PromptlatheError(
                f"{self.dir}: the run has not been prepared (no instruction race yet); start "
                "the main process first"
            )
        self.budget.stage_limit = self.plan.search_limit
        try:
            self.optimizer.search(self.ctx)
        except BudgetExhausted as exc:
            self.emit("search", f"search stopped: {exc}")

    def finish(self) -> OptimizeResult:
        """Confirmation on the held-out confirmation split, then the untouched test split."""
        self.budget.stage_limit = None
        best, seed, pool = self._stage_confirm()
        ship = shipped(best.prompt, [*self.split.train, *self.split.val, *self.confirm])
        test, seed_test = self._stage_test(ship, seed)
        result = OptimizeResult(
            best_prompt=ship,
            run_dir=self.dir,
            best=best,
            seed=seed,
            test=test,
            seed_test=seed_test,
            calls_used=self.budget.used,
            budget=self.cfg.budget_calls,
            plan=self.plan,
            trials=self.log.counts(),
            wall_seconds=time.perf_counter() - self.t0,
            confirmed=pool,
            baselines=self._baselines(test),
            seed_baselines=self._baselines(seed_test),
            optimizer=self.optimizer.name,
            notes=[
                *self.optimizer.result_notes(self.ctx),
                *self._strategy_notes(),
                *self._shipped_notes(best.prompt, ship),
            ],
        )
        self._write(result)
        self.emit("done", f"wrote {result.best_prompt_path}")
        return result

    @staticmethod
    def _shipped_notes(searched: Prompt, ship: Prompt) -> list[str]:
        if ship is searched:
            return []
        return [
            f"{ship.strategy.label()}: once chosen, the winner's pool grew from the "
            f"{len(searched.exemplars)} train examples it was searched with to all "
            f"{len(ship.exemplars)} labeled ones (train, validation, confirmation); its "
            "validation and confirmation scores are of the smaller pool, its test score of the "
            "prompt as shipped"
        ]

    def _strategy_notes(self) -> list[str]:
        """Which searched strategies the budget never let the search race to a decision
        (with how far they got: their screen score, or the race the budget stopped)."""
        state = self.ctx.load_state()
        specs = [StrategySpec(**x) for x in state.get("strategies", [])]
        seen: dict[str, tuple[float, int]] = {
            r["strategy"]: (r["score"], r["n"]) for r in state.get("strategy_screen", [])
        }
        entries = self.log.entries()
        raced = {e.to_prompt().strategy for e in entries if e.state in ("complete", "pruned")}
        for e in entries:  # races the budget stopped (longer than the screen)
            label = e.to_prompt().strategy.label()
            if e.state == "failed" and e.n > seen.get(label, (0.0, 0))[1]:
                seen[label] = (e.mean or 0.0, e.n)
        # knn_demos' k is the searched number of shots, not part of its choice
        names = {r.name for r in raced}
        untried = [
            s.label()
            for s in specs
            if s not in raced and not (get_strategy(s).demos == "pool" and s.name in names)
        ]
        if len(specs) < 2 or not untried:
            return []
        shown = [
            f"{u} ({seen[u][0]:.2f} on {seen[u][1]} examples when the budget ran out)"
            if u in seen
            else u
            for u in untried
        ]
        return [
            f"strategies the budget never let the search race to the end: {', '.join(shown)} "
            "(raise --budget-calls to race them)"
        ]

    def _stage_confirm(self) -> tuple[Candidate, Candidate | None, list[Candidate]]:
        """Re-score the top candidates of the run log on the confirmation split, which the
        search never saw."""
        cands = [
            Candidate(
                e.to_prompt(),
                e.mean or 0.0,
                e.n,
                source=f"{e.source} {e.id[:8]}",
                tokens=e.tokens_per_example,
            )
            for e in self.log.complete()
        ]
        seed = next((c for c in cands if c.prompt.hash == self.seed_prompt.hash), None)
        if seed is None:
            seed = Candidate(self.seed_prompt, float("nan"), 0, source="seed")
        if not cands:
            return seed, seed, [seed]
        top = cands[: self.plan.confirm_top]
        pool = top + ([seed] if seed not in top else [])
        if not self.confirm:
            return top[0], seed, pool
        self.emit("confirm", f"confirming {len(pool)} candidates on {len(self.confirm)} examples")
        # The seed right after the leader: if a costly strategy (k samples per input) spends
        # the reserve, the leader has still been compared with the seed.
        rest = [c for c in pool[1:] if c is not seed]
        for c in [top[0], *([seed] if seed is not top[0] else []), *rest]:
            try:
                res = self.evaluator.evaluate(c.prompt, self.confirm)
            except BudgetExhausted:
                break
            c.confirm, c.confirm_n = res.mean, res.n
            if c.tokens is None and res.n:
                c.tokens = res.tokens_per_example
        confirmed = [c for c in top if c.confirm is not None] or top[:1]
        # The seed is one more candidate, judged the same way; on a tie it stays (a new
        # prompt wins only on evidence), and on a near-tie the cheaper one wins.
        contenders = confirmed + ([seed] if seed.confirm is not None and seed not in top else [])
        best = choose_winner(contenders, seed)
        return best, seed, pool

    def _baselines(self, res: EvalResult | None) -> Baselines | None:
        """The test result against constant answers (majority label, the prompt's own most
        frequent answer): says when a "win" is no better than a constant."""
        if res is None:
            return None
        recs = res.records
        return trivial_baselines(
            self.metric,
            [e.target for e in self.split.train],
            [r.targets for r in recs],
            [r.answer for r in recs],
            [r.score for r in recs],
        )

    def _stage_test(
        self, best: Prompt, seed: Candidate | None
    ) -> tuple[EvalResult | None, EvalResult | None]:
        if not self.test:
            return None, None
        n = len(self.test)
        prompts = [best] + ([seed.prompt] if seed is not None else [])
        total = n * len(prompts)
        self.emit("test", f"evaluating winner and seed on {n} test examples", done=0, total=total)
        results = []
        for k, prompt in enumerate(prompts):
            results.append(
                self.test_evaluator.evaluate(
                    prompt,
                    self.test,
                    progress=lambda d, _t, k=k: self.emit("test", done=k * n + d, total=total),
                )
            )
        return results[0], (results[1] if seed is not None else None)

    # ---- persistence -----------------------------------------------------------------------
    def _write(self, result: OptimizeResult) -> None:
        extra = {
            "optimizer": self.optimizer.name,
            "model": self.cfg.model,
            "base_url": self.cfg.to_dict()["base_url"],
            "metric": self.metric.name,
            **({"labels": self.metric.labels} if isinstance(self.metric, LabelMetric) else {}),
            **(
                {"decode": "labels", "decode_labels": self.decode_labels}
                if self.decode_labels is not None
                else {}
            ),
            "decoding": asdict(self.decoding),
            "scores": {
                "val": result.best.val,
                "val_n": result.best.val_n,
                "confirm": result.best.confirm,
                "test": result.test.mean if result.test else None,
                "test_ci95": list(result.test.ci) if result.test else None,
            },
        }
        result.best_prompt.save(result.best_prompt_path, **extra)
        if result.test is not None:
            rows = {"winner": result.test.to_dict()["records"]}
            if result.seed_test is not None:
                rows["seed"] = result.seed_test.to_dict()["records"]
            (self.dir / "test_records.json").write_text(
                json.dumps(rows, indent=1, ensure_ascii=False) + "\n"
            )
        (self.dir / "result.json").write_text(
            json.dumps(result.summary(), indent=2, ensure_ascii=False, default=str) + "\n"
        )

    def close(self) -> None:
        """Release the models, the store and the run directory's lock (idempotent)."""
        try:
            self.task_lm.close()
            if self._proposer_lm is not None and self._proposer_lm is not self.task_lm:
                self._proposer_lm.close()
            self.store.close()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
