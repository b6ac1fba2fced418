"""The report of an optimization run directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError

from promptlathe._validation import describe
from promptlathe.analysis import Certificate, certify
from promptlathe.errors import PromptlatheError
from promptlathe.optimizers._result import RESULT_VERSION
from promptlathe.report._analyze import AnalysisSizes, Note, analyze
from promptlathe.report._build import build, write

if TYPE_CHECKING:
    from promptlathe.optimizers._runlog import LogEntry
    from promptlathe.report._finished import OpenRun


def _trials(log: list[LogEntry], confirmed: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The candidates of the run log, in the order their races ended."""
    rows = []
    for number, e in enumerate(log):
        if e.state == "failed":
            continue
        conf = confirmed.get(e.id, {})
        rows.append(
            {
                "study": e.source,
                "number": number,
                "state": e.state,
                "value": e.mean,
                "calls_at_end": e.calls_at_end,
                "prompt": e.prompt,
                "prompt_hash": e.id,
                "parent": e.parent,
                "scores": list(e.scores),
                "tokens_per_example": e.tokens_per_example,
                "confirm": conf.get("confirm"),
                "confirm_n": conf.get("confirm_n"),
            }
        )
    rows.sort(key=lambda r: (r["calls_at_end"] is None, r["calls_at_end"] or 0))
    return rows


class _Scores(BaseModel):
    """A candidate's scores as ``result.json`` holds them (the fields the report reads)."""

    model_config = ConfigDict(extra="allow")
    val: float | None = None
    val_n: NonNegativeInt = 0
    confirm: float | None = None
    confirm_n: NonNegativeInt = 0
    confirm_scores: list[Annotated[float, Field(ge=0.0, le=1.0)]] = []


class _SplitSizes(BaseModel):
    model_config = ConfigDict(extra="allow")
    n_test: NonNegativeInt
    n_val: NonNegativeInt
    n_confirm: NonNegativeInt


class ResultFile(BaseModel):
    """What the report reads of a finished run's ``result.json``, declared once (other keys
    are kept as they are)."""

    model_config = ConfigDict(extra="allow")
    best_prompt: dict[str, Any]
    best: _Scores
    seed: _Scores | None = None
    confirmed: list[_Scores] = []
    calls_used: NonNegativeInt
    budget: NonNegativeInt
    plan: _SplitSizes
    trials: dict[str, int]
    baselines: dict[str, Any] | None = None


def load_result(path: Path) -> dict[str, Any]:
    """A finished run's ``result.json``, checked against :class:`ResultFile`; a damaged one
    is a one-line error naming it and the field."""
    again = "rerun the optimize command with --resume to write it again"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PromptlatheError(
            f"{path}: cannot read the run's result ({type(exc).__name__}); {again}"
        ) from None
    if not isinstance(data, dict):
        raise PromptlatheError(f"{path}: not a promptlathe result (not a JSON object); {again}")
    version = data.get("v", 1)
    if version not in (1, RESULT_VERSION):
        raise PromptlatheError(
            f"{path}: result version {version!r} is not one this promptlathe reads (1 to "
            f"{RESULT_VERSION}); upgrade promptlathe, or rerun the optimize command"
        )
    try:
        ResultFile.model_validate(data)
    except ValidationError as exc:
        raise PromptlatheError(
            f"{path}: not a promptlathe result ({describe(exc)}); {again}"
        ) from None
    return data


def _seed_val(result: dict[str, Any]) -> tuple[float, int] | None:
    """The seed's validation score as the terminal shows it (``None`` if never scored)."""
    seed = result.get("seed") or {}
    val, n = seed.get("val"), seed.get("val_n")
    if val is None or not n or val != val:
        return None
    return float(val), int(n)


def holdout_certificate(result: dict[str, Any], delta: float = 0.05) -> Certificate | None:
    """The winner's certificate from its confirmation scores (``None`` when the run had no
    confirmation split): the search never saw those examples; the winner was chosen among
    the finalists compared there, which the certificate pays for (a union bound)."""
    scores = result["best"].get("confirm_scores") or []
    if not scores:
        return None
    finalists = sum(1 for c in result.get("confirmed", []) if c.get("confirm") is not None)
    baselines = result.get("baselines") or {}
    return certify(
        scores,
        finalists=max(1, finalists),
        delta=delta,
        baseline=baselines.get("best_constant_accuracy"),
        covers="confirmation examples, which the search never saw",
    )


def report_run(
    opened: OpenRun, sizes: AnalysisSizes | None = None, note: Note | None = None
) -> tuple[Path, Path]:
    """Analyse the winner of a finished run and write ``report.html``/``report.json`` into
    its directory. ``opened`` comes from :func:`open_finished_run` (or, at the end of an
    optimize run, from the live run's pieces).

    Analysis calls are outside the search budget; they are cached in the run's store.
    """
    run = opened.run
    result = run.result
    winner = run.winner
    best = result["best"]
    val = (best["val"], best["val_n"]) if best.get("val_n") else None
    analyses = analyze(
        lm=opened.lm,
        evaluator=opened.evaluator,
        winner=winner,
        baseline=run.seed_prompt,
        examples=run.test,
        val=val,
        sizes=sizes,
        seed=run.seed,
        note=note,
        train_targets=run.train_targets,
    )
    confirmed = {c["prompt_hash"]: c for c in result.get("confirmed", [])}
    certificate = holdout_certificate(result)
    report = build(
        title=run.task,
        model=run.model,
        metric=opened.evaluator.metric.name,
        winner=winner,
        baseline=run.seed_prompt,
        winner_records=analyses.pop("winner_records"),
        baseline_records=analyses.pop("baseline_records", []),
        val=val,
        baseline_val=_seed_val(result),
        trial_counts=result.get("trials"),
        trials=_trials(run.log, confirmed),
        certificate=certificate.to_dict() if certificate else None,
        run_dir=str(run.dir),
        extra={"optimization": {k: result[k] for k in ("calls_used", "budget", "plan", "trials")}},
        **analyses,
    )
    return write(run.dir, report)
