"""``promptlathe optimize``: search for the best prompt within a call budget."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from promptlathe._limits import (
    BUDGET_CALLS,
    BUDGET_TOKENS,
    CONFIRM_SIZE,
    MAX_COST,
    MAX_SHOTS,
    REASONING_TOKENS,
    THREADS,
    VAL_SIZE,
)
from promptlathe.cli._app import app
from promptlathe.cli._options import (
    BaseUrlOpt,
    DecodeOpt,
    MaxTokensOpt,
    ModelOpt,
    NCtxOpt,
    ScaleOpt,
    SeedOpt,
)
from promptlathe.cli.report import write_report
from promptlathe.errors import PromptlatheError
from promptlathe.lms import DEFAULT_MODEL
from promptlathe.reporting import err_console, out_console


@app.command("optimize")
def optimize_cmd(
    task: Annotated[
        Path | None,
        typer.Option(
            help="Training data (.jsonl/.csv): split into train, validation and confirmation "
            "(required unless --worker)."
        ),
    ] = None,
    test: Annotated[
        Path | None, typer.Option(help="Held-out test file (default: carve 25% of --task).")
    ] = None,
    model: ModelOpt = DEFAULT_MODEL,
    base_url: BaseUrlOpt = None,
    proposer_model: Annotated[
        str | None,
        typer.Option(
            help="Model that writes instructions "
            "(default: qwen2.5-coder-1.5b if installed, else --model)."
        ),
    ] = None,
    proposer_base_url: Annotated[
        str | None,
        typer.Option(
            help="OpenAI-compatible server that runs --proposer-model (key: "
            "$PROMPTLATHE_PROPOSER_API_KEY, else the task's); default: embedded."
        ),
    ] = None,
    instruction: Annotated[str, typer.Option(help="Seed instruction (always a candidate).")] = "",
    prompt: Annotated[
        Path | None, typer.Option(help="Seed prompt JSON (instead of --instruction).")
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="Metric (default: the task's .meta.json metric, else auto).")
    ] = None,
    budget_calls: Annotated[
        int,
        typer.Option(
            help="Hard cap on LM calls for the search.", min=BUDGET_CALLS[0], max=BUDGET_CALLS[1]
        ),
    ] = 600,
    budget_tokens: Annotated[
        int | None,
        typer.Option(
            help="Optional cap on the search's tokens (prompt + output, every call).",
            min=BUDGET_TOKENS[0],
            max=BUDGET_TOKENS[1],
        ),
    ] = None,
    max_shots: Annotated[
        int,
        typer.Option(
            help="Largest number of exemplars searched.", min=MAX_SHOTS[0], max=MAX_SHOTS[1]
        ),
    ] = 4,
    max_tokens: MaxTokensOpt = 64,
    strategies: Annotated[
        str,
        typer.Option(
            help="Run-time strategies searched, comma-separated, or 'all': direct, cot, "
            "plan_and_solve, cot_demos, self_consistency, choice_shuffle, knn_demos.",
        ),
    ] = "direct",
    max_cost_per_example: Annotated[
        int | None,
        typer.Option(
            metavar="TOKENS",
            help="The winner may cost at most this many tokens per example (prompt + output, "
            "every call of its strategy).",
            min=MAX_COST[0],
            max=MAX_COST[1],
        ),
    ] = None,
    reasoning_tokens: Annotated[
        int,
        typer.Option(
            help="Output cap of reasoned answers (cot, plan_and_solve, cot_demos, "
            "self_consistency).",
            min=REASONING_TOKENS[0],
            max=REASONING_TOKENS[1],
        ),
    ] = 256,
    seed: SeedOpt = 0,
    out: Annotated[Path | None, typer.Option(help="Run directory (default: runs/<task>).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out.")] = False,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Database for the study; a PostgreSQL URL also holds the budget and call cache, "
            "so workers on several machines share them (default: SQLite in the run directory)."
        ),
    ] = None,
    study: Annotated[str, typer.Option(help="Optuna study name prefix.")] = "promptlathe",
    sampler: Annotated[str, typer.Option(help="tpe or random.")] = "tpe",
    n_ctx: NCtxOpt = 4096,
    val_size: Annotated[
        int | None,
        typer.Option(
            help="Validation examples (default: planned from the budget).",
            min=VAL_SIZE[0],
            max=VAL_SIZE[1],
        ),
    ] = None,
    confirm_size: Annotated[
        int | None,
        typer.Option(
            help="Confirmation examples (default: planned from the budget).",
            min=CONFIRM_SIZE[0],
            max=CONFIRM_SIZE[1],
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Processes running the joint search together "
            "(they share the study and the budget).",
            min=1,
            max=64,
        ),
    ] = 1,
    threads: Annotated[
        int | None,
        typer.Option(
            help="CPU threads per process for embedded models "
            "(default: all cores, divided among --workers).",
            min=THREADS[0],
            max=THREADS[1],
        ),
    ] = None,
    worker: Annotated[
        bool,
        typer.Option(
            help="Join the joint search of the run in --out as an extra worker, then exit."
        ),
    ] = False,
    prescreen: Annotated[
        str | None,
        typer.Option(
            help="'mi': drop half the proposed instructions by label-free mutual information "
            "before racing (classification tasks)."
        ),
    ] = None,
    report: Annotated[
        bool,
        typer.Option(
            help="Write report.html/report.json at the end (analysis calls are outside the budget)."
        ),
    ] = True,
    analysis_scale: ScaleOpt = 1.0,
    progress: Annotated[bool, typer.Option(help="Show live progress.")] = True,
    decode: DecodeOpt = "auto",
    optimizer: Annotated[
        str,
        typer.Option(
            help="The optimizer stages, run in order, each from what the previous one found "
            "(e.g. propose,joint, the default; reflect,joint; random,joint). "
            "`promptlathe optimizers` lists them.",
        ),
    ] = "propose,joint",
) -> None:
    """Search instructions, exemplars and formats for the best prompt within a call budget."""
    from promptlathe.optimizers import Optimization, OptimizeConfig
    from promptlathe.optimizers._workers import worker_config
    from promptlathe.reporting import OptimizeDisplay, optimize_table

    if worker:
        if out is None:
            raise PromptlatheError("--worker needs --out (the run directory to join)")
        wcfg = worker_config(out, storage, study)
        if threads:
            wcfg.threads = threads
        if storage:
            wcfg.storage = storage
        wrun = Optimization(
            wcfg,
            resume=True,
            worker=True,
            code_metric_ok=metric is not None and metric == wcfg.metric,
        )
        try:
            wrun.search()
        finally:
            wrun.close()
        return
    if task is None:
        raise PromptlatheError("--task is required (the training data)")
    stem = task.name.split(".")[0]
    cfg = OptimizeConfig(
        task=str(task),
        test=str(test) if test else None,
        model=model,
        base_url=base_url,
        proposer_model=proposer_model,
        proposer_base_url=proposer_base_url,
        instruction=instruction,
        seed_prompt=str(prompt) if prompt else None,
        metric=metric,
        budget_calls=budget_calls,
        budget_tokens=budget_tokens,
        max_shots=max_shots,
        max_tokens=max_tokens,
        seed=seed,
        out=str(out or Path("runs") / stem),
        storage=storage,
        study=study,
        sampler=sampler,
        n_ctx=n_ctx,
        threads=threads,
        val_size=val_size,
        confirm_size=confirm_size,
        prescreen=prescreen,
        decode=decode,
        optimizer=optimizer,
        strategies=strategies.split(","),
        max_cost_per_example=max_cost_per_example,
        reasoning_tokens=reasoning_tokens,
    )
    display = OptimizeDisplay(budget_calls, enabled=progress)
    run = Optimization(cfg, resume=resume, callback=display, workers=workers)
    from promptlathe.report import AnalysisSizes

    analysis_calls = AnalysisSizes().scaled(analysis_scale).max_calls() if report else None
    err_console.print(f"[bold]plan[/bold] for {escape(str(task))} on {escape(model)}:")
    for line in run.plan_lines(analysis_calls):
        err_console.print("  " + line, highlight=False, markup=False, soft_wrap=True)
    if resume:
        err_console.print(f"  resuming: {run.budget.used} calls already made")
    try:
        with display:
            result = run.run()
        out_console.print(optimize_table(result))
        out_console.print(f"best prompt: {result.best_prompt_path}", markup=False)
    finally:
        run.close()
    if report:  # read back from the run directory, as `promptlathe report` does
        write_report(run.dir, metric, analysis_scale)
