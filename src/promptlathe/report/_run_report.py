"""The report of an optimization run directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptlathe.analysis import Certificate, certify
from promptlathe.report._analyze import AnalysisSizes, Note, analyze
from promptlathe.report._build import build, write

if TYPE_CHECKING:
    from promptlathe.optimizers._runlog import LogEntry
    from promptlathe.report._finished import OpenRun


def _trials(log: list[LogEntry], confirmed: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The candidates of the run log, in the order their races ended (a race the budget
    stopped only if it was confirmed: it led when it was cut short)."""
    rows = []
    for number, e in enumerate(log):
        if e.state == "failed" and e.id not in confirmed:
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
