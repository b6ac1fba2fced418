"""``promptlathe report`` and ``promptlathe analyze``: the trust report of a run's winner, or of
any prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from promptlathe.artifact import load_prompt
from promptlathe.cli._app import app
from promptlathe.cli._options import (
    BaseUrlOpt,
    CacheOpt,
    DecodeOpt,
    MaxTokensOpt,
    ModelOpt,
    NCtxOpt,
    ParallelOpt,
    ScaleOpt,
    SeedOpt,
    _decode_labels,
    _open_lm,
)
from promptlathe.evaluator import Decoding, Evaluator
from promptlathe.lms import DEFAULT_MODEL
from promptlathe.metrics import task_metric
from promptlathe.reporting import err_console, out_console
from promptlathe.tasks import load_examples, read_meta


@app.command("report")
def report_cmd(
    run_dir: Annotated[
        Path,
        typer.Argument(
            help="A run directory made by optimize (with --models: its cascade page and each "
            "model's report), or a cascade file."
        ),
    ],
    analysis_scale: ScaleOpt = 1.0,
    metric: Annotated[
        str | None,
        typer.Option(help="The run's metric, when it is a Python function (module:function)."),
    ] = None,
) -> None:
    """Analyse a run's winner and write report.html and report.json into the run directory;
    for a cascade, draw its page (cascade.html, cascade.png) again from its file."""
    cascade = run_dir if run_dir.is_file() else run_dir / "cascade.json"
    if (run_dir / "result.json").is_file() or not cascade.is_file():
        write_report(run_dir, metric, analysis_scale)
        return
    from promptlathe.report import write_cascade_page

    for path in write_cascade_page(cascade):
        out_console.print(f"cascade page: {path}", markup=False)
    if run_dir.is_file():
        return
    # optimize --models: each model's run is in a directory of its own beside the cascade
    for sub in sorted(p for p in run_dir.iterdir() if (p / "result.json").is_file()):
        write_report(sub, metric, analysis_scale)


@app.command("analyze")
def analyze_cmd(
    prompt: Annotated[Path, typer.Option(help="The prompt JSON to analyse.")],
    task: Annotated[Path, typer.Option(help="Labeled examples (.jsonl/.csv), held out.")],
    baseline: Annotated[
        Path | None, typer.Option(help="A prompt JSON to compare with (paired significance test).")
    ] = None,
    model: ModelOpt = DEFAULT_MODEL,
    base_url: BaseUrlOpt = None,
    metric: Annotated[
        str | None, typer.Option(help="Metric (default: sidecar, else auto).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N examples.", min=1)] = None,
    max_tokens: MaxTokensOpt = 64,
    n_ctx: NCtxOpt = 4096,
    parallel: ParallelOpt = 16,
    out: Annotated[
        Path | None,
        typer.Option(help="Directory for report.html/report.json (default: <prompt>-report/)."),
    ] = None,
    analysis_scale: ScaleOpt = 1.0,
    seed: SeedOpt = 0,
    cache: CacheOpt = None,
    decode: DecodeOpt = "auto",
) -> None:
    """Run the trust analyses (significance, bound, format/order sensitivity) on any prompt."""
    from promptlathe.report import AnalysisSizes, analyze, build, write

    winner = load_prompt(prompt)
    base = load_prompt(baseline) if baseline else None
    examples = load_examples(task)[:limit] if limit else load_examples(task)
    meta = read_meta(task)
    scorer = task_metric(metric, meta.metric, meta.path, [e.target for e in examples])
    labels = _decode_labels(
        decode,
        scorer,
        base_url,
        [e.target for e in examples],
        str(task),
        prompt,
    )
    lm = _open_lm(model, base_url, n_ctx, cache, parallel=parallel)
    evaluator = Evaluator(
        lm, scorer, Decoding(max_tokens=max_tokens, seed=seed), lm.store, "analyze", labels=labels
    )
    try:
        res = analyze(
            lm=lm,
            evaluator=evaluator,
            winner=winner,
            baseline=base,
            examples=examples,
            sizes=AnalysisSizes().scaled(analysis_scale),
            seed=seed,
            note=lambda msg: err_console.print(f"[analyze] {msg}", highlight=False, markup=False),
        )
    finally:
        lm.close()
    report = build(
        title=prompt.name,
        model=model,
        metric=scorer.name,
        winner=winner,
        baseline=base,
        baseline_name=baseline.name if baseline else "baseline",
        winner_records=res.pop("winner_records"),
        baseline_records=res.pop("baseline_records", []),
        **res,
    )
    html, _ = write(out or prompt.with_name(f"{prompt.stem}-report"), report)
    out_console.print(f"report: {html}", markup=False)


def write_report(run_dir: Path, metric: str | None, scale: float) -> None:
    """The report of the finished run in ``run_dir``, read from its files (result, run log,
    data), never by rebuilding the run."""
    from promptlathe.report import AnalysisSizes, open_finished_run, report_run

    with open_finished_run(run_dir, metric=metric) as opened:
        html, _ = report_run(
            opened,
            AnalysisSizes().scaled(scale),
            note=lambda msg: err_console.print(f"[report] {msg}", highlight=False, markup=False),
        )
    out_console.print(f"report: {html}", markup=False)
