"""A finished run as the report reads it: its typed result, its run log and its data, opened
from the run directory without rebuilding the run (no budget, no proposer, no stage)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from promptlathe.artifact import read_saved
from promptlathe.errors import PromptlatheError
from promptlathe.evaluator import Decoding, Evaluator
from promptlathe.lms import LM, CachedLM, backend_class, get_lm
from promptlathe.metrics import is_code_metric, task_metric
from promptlathe.optimizers import OptimizeConfig
from promptlathe.optimizers._lock import RunLock
from promptlathe.optimizers._rundir import check_data, run_store
from promptlathe.optimizers._runlog import LogEntry, RunLog
from promptlathe.prompts import Prompt
from promptlathe.report._result_file import load_result
from promptlathe.tasks import Example, load_examples, read_meta, run_split


@dataclass(frozen=True)
class FinishedRun:
    """What the report of a run reads: its result, the seed it started from, its run log and
    the examples the winner is analysed on (the run's test split) — data only.

    Attributes:
        dir: the run directory (where the report is written).
        task: the task file's name (the report's title).
        model: the task model.
        seed: the run's seed (seeds the analyses' sampling).
        result: ``result.json``, checked (:func:`~promptlathe.report.load_result`).
        seed_prompt: the prompt the search started from (the report's baseline).
        log: the run log's entries, in the order their races ended.
        test: the run's test split, as the run cut it.
        train_targets: the train split's targets (the trivial baselines' pool).
    """

    dir: Path
    task: str
    model: str
    seed: int
    result: dict[str, Any]
    seed_prompt: Prompt
    log: list[LogEntry]
    test: list[Example]
    train_targets: list[str]

    @property
    def winner(self) -> Prompt:
        return Prompt.from_dict(self.result["best_prompt"], where=str(self.dir / "result.json"))


@dataclass(frozen=True)
class OpenRun:
    """A finished run opened for analysis: the run, the task model outside any budget (its
    calls cached in the run's store) and an evaluator that scores as the search did."""

    run: FinishedRun
    lm: LM
    evaluator: Evaluator


@contextmanager
def open_finished_run(
    run_dir: Path, *, metric: str | None = None, lm: LM | None = None
) -> Iterator[OpenRun]:
    """Open the finished run in ``run_dir`` for its report (holding its lock meanwhile).

    Args:
        run_dir: the run directory; it may have moved since the run (files are read from
            here, not from where the config says).
        metric: the metric typed by the user; a ``module:function`` metric runs only when it
            is the one the run recorded.
        lm: the task model to use instead of loading the run's (tests pass a double).

    Raises:
        PromptlatheError: not a finished run, a damaged file, or data that changed since the
            run (one line naming the file).
    """
    cfg_path, result_path = run_dir / "config.json", run_dir / "result.json"
    if not (cfg_path.is_file() and result_path.is_file()):
        raise PromptlatheError(f"{run_dir}: not a finished optimize run (no config/result.json)")
    cfg = replace(OptimizeConfig.load(cfg_path), out=str(run_dir))
    result = load_result(result_path)  # a damaged result is one line, before any work
    sizes = {k: result["plan"][k] for k in ("n_test", "n_val", "n_confirm")}  # checked
    labels = read_saved(run_dir / "best_prompt.json").fields.labels_to_score
    with ExitStack() as stack:
        stack.callback(RunLock.acquire(run_dir).release)
        check_data(cfg, run_dir, resume=True)
        examples = load_examples(cfg.task)
        parts = run_split(
            examples, load_examples(cfg.test) if cfg.test else None, seed=cfg.seed, **sizes
        )
        meta = read_meta(cfg.task)
        typed = metric is not None and metric == cfg.metric
        scorer = task_metric(
            cfg.metric if typed or not is_code_metric(cfg.metric) else None,
            cfg.metric or meta.metric,
            meta.path if not cfg.metric else str(cfg_path),
            [e.target for e in examples],
        )
        store = run_store(cfg, run_dir)
        stack.callback(store.close)
        inner = lm or get_lm(
            cfg.model,
            base_url=cfg.base_url,
            **(
                {"n_ctx": cfg.n_ctx, "n_threads": cfg.threads, "parallel": cfg.parallel}
                if backend_class(cfg.base_url, cfg.model).embedded
                else {}
            ),
        )
        free = CachedLM(inner, store)
        stack.callback(free.close)
        decoding = Decoding(
            max_tokens=cfg.max_tokens, seed=cfg.seed, reasoning_tokens=cfg.reasoning_tokens
        )
        evaluator = Evaluator(free, scorer, decoding, store, "opt", labels=labels)
        seed_prompt = (
            Prompt.load(cfg.seed_prompt) if cfg.seed_prompt else Prompt(instruction=cfg.instruction)
        )
        run = FinishedRun(
            dir=run_dir,
            task=Path(cfg.task).name,
            model=cfg.model,
            seed=cfg.seed,
            result=result,
            seed_prompt=seed_prompt,
            log=RunLog(store).entries(),
            test=list(parts.test),
            train_targets=[e.target for e in parts.train],
        )
        yield OpenRun(run=run, lm=free, evaluator=evaluator)
