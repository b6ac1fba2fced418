"""The optimization pipeline: bootstrap → propose → race instructions → joint search →
confirm → test. Every stage is resumable: LM calls, scored records and trials are on disk."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from promptlathe._hashing import sha256_file
from promptlathe._stats import wilson_interval
from promptlathe.analysis import Baselines, label_set, screen_by_mi, trivial_baselines
from promptlathe.errors import BudgetExhausted, ModelError, PromptlatheError
from promptlathe.evaluator import Decoding, EvalResult, Evaluator, choose_decode
from promptlathe.formats import format_space
from promptlathe.lms import LM, MODELS, CachedLM, backend_class, get_lm, is_installed
from promptlathe.metrics import LabelMetric, is_code_metric, metric_reason, task_metric
from promptlathe.optimizers._budget import Budget
from promptlathe.optimizers._config import OptimizeConfig, Plan, make_plan
from promptlathe.optimizers._exemplars import (
    bootstrap,
    demo_sets,
    labeled,
    orders,
    sample_demos,
)
from promptlathe.optimizers._lock import RunLock
from promptlathe.optimizers._racing import RacingPruner
from promptlathe.optimizers._search import (
    Space,
    fail_stale,
    finished_by_hash,
    incumbent_of,
    open_study,
    run_trial,
)
from promptlathe.prompts import Exemplar, Prompt
from promptlathe.proposers import (
    APEProposer,
    OPROProposer,
    ScoredInstruction,
    filter_instructions,
    likelihood_screen,
)
from promptlathe.store import Store, is_server_url
from promptlathe.tasks import Example, Split, load_examples, read_meta

log = logging.getLogger("promptlathe.optimize")

Callback = Callable[[dict[str, Any]], None]
"""Progress events: ``{"stage", "calls", "budget", "best", "best_ci", "message"}``."""

JOINT_INSTRUCTIONS = 4
N_DEMO_SETS = 9
N_ORDERS = 4
MAX_JOINT_TRIALS = 300
MAX_IDLE_TRIALS = 40
MI_INPUTS = 8
RACE_SHARE = 0.5  # of the search calls, for racing instructions before the joint search


@dataclass
class Candidate:
    """A fully evaluated prompt with its validation and confirmation scores."""

    prompt: Prompt
    val: float
    val_n: int
    confirm: float | None = None
    confirm_n: int = 0
    source: str = ""

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
        self.plan = make_plan(
            cfg,
            len(examples),
            len(test_examples) if test_examples is not None else None,
            scoring=not cfg.base_url,
        )
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
        self.decoding = Decoding(max_tokens=cfg.max_tokens, seed=cfg.seed)
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
        self.cand_path = self.dir / "candidates.json"
        self._opened: list[optuna.Study] = []
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
        lines += self.plan.describe()
        test = 2 * self.plan.n_test
        total = self.plan.budget + test + (analysis_calls or 0)
        parts = [f"search ≤ {self.plan.budget}", f"test {test}"]
        if analysis_calls:
            parts.append(f"report analyses ≤ {analysis_calls}")
        lines.append(f"all model calls: ≤ {total} ({' + '.join(parts)})")
        return lines

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
        studies = self._studies(create=False)
        inc = incumbent_of(studies) if studies else None
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

    # ---- studies -------------------------------------------------------------------------
    def _pruner(self) -> RacingPruner:
        return RacingPruner(
            len(self.split.val), lambda: incumbent_of(self._studies(create=False)), self.cfg.alpha
        )

    def _studies(self, create: bool = True) -> list[optuna.Study]:
        """The run's studies. Opened once and reused: a ``Study`` reads the shared storage on
        every query, so other workers' trials are still seen, and progress events and the
        pruner need not reload the studies on every call."""
        if self._opened:
            return self._opened
        out = []
        for suffix in ("instructions", "joint"):
            name = f"{self.cfg.study}-{suffix}"
            if create:
                out.append(
                    open_study(
                        self.storage, name, self.cfg.sampler, self.sampler_seed, self._pruner()
                    )
                )
            else:
                with contextlib.suppress(KeyError, ValueError):
                    out.append(optuna.load_study(study_name=name, storage=self.storage))
        if create:
            self._opened = out
        return out

    # ---- stages ----------------------------------------------------------------------------
    def run(self) -> OptimizeResult:
        """Run (or resume) every stage and return the result."""
        self.prepare()
        self.search()
        return self.finish()

    def prepare(self) -> None:
        """Stages before the joint search: demos, proposals, instruction race."""
        self.budget.stage_limit = self.plan.search_limit
        studies = self._studies()
        for st in studies:
            fail_stale(st)
        cands = self._load_candidates()
        try:
            if "demo_sets" not in cands:
                cands.update(self._stage_demos())
                self._save_candidates(cands)
            if "instructions" not in cands:
                cands["instructions"] = self._stage_propose()
                self._save_candidates(cands)
            if "joint_instructions" not in cands:
                cands["calls_before_race"] = self.budget.used
                cands["joint_instructions"] = self._stage_race_instructions(cands, studies[0])
                cands["calls_after_race"] = self.budget.used
                self._save_candidates(cands)
        except BudgetExhausted as exc:
            self.emit("search", f"search stopped: {exc}")
            cands.setdefault("instructions", [{"instruction": self.seed_prompt.instruction}])
            cands.setdefault("joint_instructions", [self.seed_prompt.instruction])
            self._save_candidates(cands)

    def search(self) -> None:
        """The joint search; several processes may run it at once on one storage."""
        cands = self._load_candidates()
        if "joint_instructions" not in cands:
            raise PromptlatheError(
                f"{self.dir}: the run has not been prepared (no instruction race yet); start "
                "the main process first"
            )
        self.budget.stage_limit = self.plan.search_limit
        try:
            self._stage_joint(cands, self._studies())
        except BudgetExhausted as exc:
            self.emit("search", f"search stopped: {exc}")

    def finish(self) -> OptimizeResult:
        """Confirmation on the held-out confirmation split, then the untouched test split."""
        self.budget.stage_limit = None
        studies = self._studies()
        best, seed, pool = self._stage_confirm(studies)
        test, seed_test = self._stage_test(best, seed)
        result = OptimizeResult(
            best_prompt=best.prompt,
            run_dir=self.dir,
            best=best,
            seed=seed,
            test=test,
            seed_test=seed_test,
            calls_used=self.budget.used,
            budget=self.cfg.budget_calls,
            plan=self.plan,
            trials=self._trial_counts(studies),
            wall_seconds=time.perf_counter() - self.t0,
            confirmed=pool,
            baselines=self._baselines(test),
            seed_baselines=self._baselines(seed_test),
        )
        self._write(result)
        self.emit("done", f"wrote {result.best_prompt_path}")
        return result

    def _stage_demos(self) -> dict[str, Any]:
        k, train = self.cfg.max_shots, self.split.train
        if not k:
            return {"demo_sets": [], "orders": [], "n_bootstrapped": 0}
        pool = labeled(train)
        rng = np.random.default_rng(self.cfg.seed)
        teacher_demos = sample_demos(pool[: max(k, 4 * k)], k, rng)
        teacher = (
            self.seed_prompt.with_(exemplars=teacher_demos)
            if not self.seed_prompt.exemplars
            else self.seed_prompt
        )
        used = {d.input for d in teacher_demos}
        boot_inputs = [e for e in train if e.input not in used][: self.plan.n_boot]
        self.emit("bootstrap", f"running the seed prompt on {len(boot_inputs)} train examples")
        try:
            boot = bootstrap(self.evaluator, teacher, boot_inputs)
        except BudgetExhausted:
            boot = []
        sets = demo_sets(pool, boot, k, N_DEMO_SETS, self.cfg.seed)
        if self.seed_prompt.exemplars:  # the user's own exemplars are set 0
            from promptlathe.optimizers._exemplars import DemoSet

            sets.insert(0, DemoSet("seed", self.seed_prompt.exemplars))
        self.emit("bootstrap", f"{len(boot)} validated demos from {len(boot_inputs)} tries")
        return {
            "demo_sets": [
                {"kind": s.kind, "exemplars": [asdict(e) for e in s.exemplars]} for s in sets
            ],
            "orders": orders(k, N_ORDERS, self.cfg.seed),
            "n_bootstrapped": len(boot),
        }

    def _stage_propose(self) -> list[dict[str, Any]]:
        train = self.split.train
        self.emit("propose", f"APE: {self.plan.n_ape} proposals by {self.proposer_name}")
        raw: list[str] = []
        with contextlib.suppress(BudgetExhausted):
            raw = APEProposer(self.proposer_lm).propose(train, self.plan.n_ape, seed=self.cfg.seed)
        kept = self._vet(raw, [self.seed_prompt.instruction], "ape")
        out = [{"instruction": self.seed_prompt.instruction, "source": "seed"}]
        return out + kept

    def _vet(self, raw: list[str], existing: list[str], source: str) -> list[dict[str, Any]]:
        """Sanity filters, then the likelihood screen; logs what was dropped and why."""
        kept, rejected = filter_instructions(raw, existing=existing)
        screened, lik = self._screen(kept)
        dropped = [k for k in kept if k not in screened]
        for text, why in rejected:
            log.info("rejected %s proposal %r: %s", source, text, why)
        for text in dropped:
            log.info(
                "screened out %s proposal %r (demos less likely than with no instruction)",
                source,
                text,
            )
        self.emit(
            "propose",
            f"{source.upper()}: {len(raw)} proposals, {len(rejected)} failed sanity checks, "
            f"{len(dropped)} off-task by likelihood, {len(screened)} kept",
        )
        return [{"instruction": k, "source": source, "loglik": lik.get(k)} for k in screened]

    def _screen(self, kept: list[str]) -> tuple[list[str], dict[str, float]]:
        if not kept or not self.plan.n_screen_demos:
            return kept, {}
        demos = self.split.train[: self.plan.n_screen_demos]
        try:
            return likelihood_screen(self.task_lm, kept, demos, self.seed_prompt.format)
        except (ModelError, BudgetExhausted):
            return kept, {}

    def _stage_race_instructions(self, cands: dict[str, Any], study: optuna.Study) -> list[str]:
        """Race the seed and proposed instructions, then OPRO's; at most ``RACE_SHARE`` of the
        search calls, so the joint search over exemplars and formats keeps its share."""
        if "race_cap" not in cands:
            cands["race_cap"] = self.budget.used + int(RACE_SHARE * self.plan.stages["search"])
            self._save_candidates(cands)
        self.budget.stage_limit = min(self.plan.search_limit, cands["race_cap"])
        instrs = cands["instructions"]
        try:
            self._race_list(study, [c["instruction"] for c in instrs])
            # OPRO: show the proposer the scores so far and ask for better instructions.
            scored = self._instruction_scores(study)
            history = [ScoredInstruction(i, s) for i, s in scored.items()]
            self.emit("propose", f"OPRO: {self.plan.n_opro} proposals from {len(history)} scored")
            new = OPROProposer(self.proposer_lm).propose(
                self.split.train, self.plan.n_opro, history=history, seed=self.cfg.seed + 1000
            )
            vetted = self._vet(new, [c["instruction"] for c in instrs], "opro")
            instrs += vetted
            cands["instructions"] = instrs
            self._save_candidates(cands)
            self._race_list(study, [c["instruction"] for c in vetted])
        except BudgetExhausted as exc:
            self.emit("race instructions", f"instruction race stopped: {exc}")
        finally:
            self.budget.stage_limit = self.plan.search_limit
        scored = self._instruction_scores(study)
        ranked = sorted(scored, key=lambda i: -scored[i])
        top = ranked[:JOINT_INSTRUCTIONS]
        if self.seed_prompt.instruction not in top:
            top.append(self.seed_prompt.instruction)
        return top

    def _prescreen(self, instructions: list[str]) -> list[str]:
        """Label-free MI screen of proposed instructions (the seed is never screened out)."""
        seed = self.seed_prompt.instruction
        proposed = [i for i in instructions if i != seed]
        if self.cfg.prescreen != "mi" or len(proposed) < 2:
            return instructions
        labels = self.labels
        assert labels is not None  # checked in __init__
        inputs = [e.input for e in self.split.train[:MI_INPUTS]]
        prompts = [self.seed_prompt.with_(instruction=i) for i in proposed]
        try:
            kept, mis = screen_by_mi(self.task_lm, prompts, inputs, labels, keep=0.5)
        except (ModelError, NotImplementedError, BudgetExhausted) as exc:
            self.emit("prescreen", f"MI screen skipped: {exc}")
            return instructions
        cands = self._load_candidates()
        cands.setdefault("prescreen", []).extend(
            {"instruction": p, "mi": m, "kept": i in kept}
            for i, (p, m) in enumerate(zip(proposed, mis, strict=True))
        )
        self._save_candidates(cands)
        self.emit("prescreen", f"MI screen kept {len(kept)} of {len(proposed)} proposals")
        return [i for i in instructions if i == seed] + [proposed[i] for i in kept]

    def _race_list(self, study: optuna.Study, instructions: list[str]) -> None:
        for instr in self._prescreen(instructions):
            prompt = self.seed_prompt.with_(instruction=instr)
            known = finished_by_hash(self._studies(create=False))
            if prompt.hash in known:
                continue
            trial = study.ask()
            trial.set_user_attr("instruction_text", instr)
            self.emit("race instructions", f"racing {instr[:60]!r}")
            outcome = self._run_trial(study, trial, prompt, known)
            self.emit("race instructions", f"{outcome}: {instr[:60]!r}")

    def _run_trial(
        self,
        study: optuna.Study,
        trial: optuna.Trial,
        prompt: Prompt,
        known: dict[str, optuna.trial.FrozenTrial],
    ) -> str:
        return run_trial(
            study,
            trial,
            prompt,
            self.split.val,
            self.evaluator,
            self.plan.rungs,
            known,
            calls=lambda: self.budget.used,
        )

    def _instruction_scores(self, study: optuna.Study) -> dict[str, float]:
        """Each raced instruction's 95 % Wilson lower bound on the examples it was scored on.

        A trial pruned after 8 examples and one that saw the whole validation split are not
        comparable by their means (3 of 8 is not better evidence than 30 of 100); their
        lower bounds are, and they reward evidence as well as score."""
        out: dict[str, float] = {}
        for t in study.get_trials(deepcopy=False):
            instr = t.user_attrs.get("instruction_text")
            scores = t.user_attrs.get("scores")
            if instr is not None and scores:
                lower = wilson_interval(sum(scores), len(scores))[0]
                out[instr] = max(out.get(instr, 0.0), lower)
        return out

    def _space(self, cands: dict[str, Any]) -> Space:
        return Space(
            instructions=tuple(cands["joint_instructions"]),
            demo_sets=tuple(
                tuple(Exemplar(**e) for e in s["exemplars"]) for s in cands["demo_sets"]
            ),
            orders=tuple(tuple(o) for o in cands["orders"]),
            formats=tuple(format_space(self.seed_prompt.format)),
            max_shots=self.cfg.max_shots,
        )

    def _stage_joint(self, cands: dict[str, Any], studies: list[optuna.Study]) -> None:
        space = self._space(cands)
        study = studies[1]
        dists = space.distributions()
        if not study.trials:
            # The seed configuration with the best instruction, zero- and k-shot.
            study.enqueue_trial(
                {
                    "instruction": 0,
                    "format": 0,
                    **(
                        {"shots": self.cfg.max_shots, "demo_set": 0, "order": 0}
                        if "shots" in dists
                        else {}
                    ),
                }
            )
            if "shots" in dists:
                study.enqueue_trial(
                    {"instruction": 0, "format": 0, "shots": 0, "demo_set": 0, "order": 0}
                )
        idle = 0
        while len(study.trials) < MAX_JOINT_TRIALS and idle < MAX_IDLE_TRIALS:
            if self.budget.remaining is not None and self.budget.remaining <= 0:
                raise BudgetExhausted("search budget spent")
            trial = study.ask(dists)
            prompt = space.prompt(trial.params)
            outcome = self._run_trial(study, trial, prompt, finished_by_hash(studies))
            idle = idle + 1 if outcome in ("duplicate", "skipped") else 0
            self.emit("joint search", f"trial {trial.number}: {outcome}")

    def _stage_confirm(
        self, studies: list[optuna.Study]
    ) -> tuple[Candidate, Candidate | None, list[Candidate]]:
        """Re-score the top candidates on the confirmation split, which search never saw."""
        finished = []
        seen: set[str] = set()
        for st in studies:
            for t in st.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
                h = t.user_attrs.get("prompt_hash")
                if h and h not in seen and t.user_attrs.get("prompt"):
                    seen.add(h)
                    finished.append(t)
        finished.sort(key=lambda t: -(t.value or 0.0))
        cands = [
            Candidate(
                Prompt.from_dict(t.user_attrs["prompt"]),
                float(t.value or 0.0),
                len(t.user_attrs.get("scores", [])),
                source=f"trial {t.number}",
            )
            for t in finished
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
        for c in pool:
            try:
                res = self.evaluator.evaluate(c.prompt, self.confirm)
            except BudgetExhausted:
                break
            c.confirm, c.confirm_n = res.mean, res.n
        confirmed = [c for c in top if c.confirm is not None] or top[:1]
        # The seed is one more candidate, judged the same way; on a tie it stays (a new
        # prompt wins only on evidence).
        contenders = confirmed + ([seed] if seed.confirm is not None and seed not in top else [])
        best = max(contenders, key=lambda c: (c.pooled, c is seed, c.val))
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
        self, best: Candidate, seed: Candidate | None
    ) -> tuple[EvalResult | None, EvalResult | None]:
        if not self.test:
            return None, None
        n = len(self.test)
        prompts = [best.prompt] + ([seed.prompt] if seed is not None else [])
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
    def _load_candidates(self) -> dict[str, Any]:
        if self.store.shared:  # the main process may be on another machine
            return self.store.get_document("candidates") or {}
        if self.cand_path.exists():
            return json.loads(self.cand_path.read_text())
        return {}

    def _save_candidates(self, cands: dict[str, Any]) -> None:
        """Update ``candidates.json`` (and the shared store's copy) with ``cands`` (keys not
        in ``cands`` are kept)."""
        merged = {**self._load_candidates(), **cands}
        tmp = self.cand_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(merged, indent=2, ensure_ascii=False))
        tmp.replace(self.cand_path)
        if self.store.shared:
            self.store.put_document("candidates", merged)

    def _trial_counts(self, studies: list[optuna.Study]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for st in studies:
            for t in st.get_trials(deepcopy=False):
                counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
        return counts

    def _write(self, result: OptimizeResult) -> None:
        extra = {
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
