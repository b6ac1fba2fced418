"""``promptlathe optimize``: search for the best prompt within a call budget.

Its settings are the fields of :class:`~promptlathe.optimizers.OptimizeConfig`, offered as
options generated from their declarations (:mod:`promptlathe.cli._settings`); only how the
command runs (resume, workers, report, progress) is declared here."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from promptlathe.cli._app import app
from promptlathe.cli._options import ScaleOpt
from promptlathe.cli._settings import config_values, setting_parameters
from promptlathe.cli.report import write_report
from promptlathe.errors import PromptlatheError
from promptlathe.reporting import err_console, out_console


def _how_it_runs(
    *,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out.")] = False,
    workers: Annotated[
        int,
        typer.Option(
            help="Processes running the joint search together "
            "(they share the study and the budget).",
            min=1,
            max=64,
        ),
    ] = 1,
    worker: Annotated[
        bool,
        typer.Option(
            help="Join the joint search of the run in --out as an extra worker, then exit."
        ),
    ] = False,
    report: Annotated[
        bool,
        typer.Option(
            help="Write report.html/report.json at the end (analysis calls are outside the budget)."
        ),
    ] = True,
    analysis_scale: ScaleOpt = 1.0,
    progress: Annotated[bool, typer.Option(help="Show live progress.")] = True,
    models: Annotated[
        str | None,
        typer.Option(
            help="SMALL,LARGE[,...]: optimize a prompt for each model (an equal share of the "
            "budget each, runs under --out/<model>/), then fit a cascade over them "
            "(--out/cascade.json)."
        ),
    ] = None,
    cost: Annotated[
        list[str] | None,
        typer.Option(
            help="With --models or --budget-cost: NAME=IN:OUT, a model's price per million "
            "input and output tokens (embedded models default to their parameters in "
            "billions, output 3x)."
        ),
    ] = None,
    server: Annotated[
        list[str] | None,
        typer.Option(help="With --models: NAME=URL, the OpenAI-compatible server of model NAME."),
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option(
            help="With --models: the most accurate cascade whose mean cost per input is at "
            "most this (in --cost's unit); default: the cheapest as accurate as the best.",
            min=0,
        ),
    ] = None,
) -> None:
    """The options of the command itself (not settings of the run)."""


_RUN_PARAMETERS = inspect.signature(_how_it_runs, eval_str=True).parameters
_RUN_OPTIONS = tuple(_RUN_PARAMETERS)


def optimize_cmd(**options: Any) -> None:
    """Search instructions, exemplars and formats for the best prompt within a call budget."""
    run_opts = {k: options.pop(k) for k in _RUN_OPTIONS}
    settings = config_values(options)
    if run_opts["worker"]:
        _join(settings)
        return
    task = settings.get("task")
    if task is None:
        raise PromptlatheError("--task is required (the training data)")
    settings.setdefault("out", str(Path("runs") / Path(task).name.split(".")[0]))
    models, costs, servers = run_opts.pop("models"), run_opts.pop("cost"), run_opts.pop("server")
    max_cost = run_opts.pop("max_cost")
    if models is None:
        if servers or max_cost is not None:
            raise PromptlatheError("--server and --max-cost go with --models")
        if costs and settings.get("budget_cost") is None:
            raise PromptlatheError("--cost goes with --models or --budget-cost")
        if costs:
            from promptlathe.lms import parse_costs

            settings["prices"] = {n: [p.input, p.output] for n, p in parse_costs(costs).items()}
        _optimize(settings, run_opts)
        return
    _optimize_models(settings, run_opts, models, costs or [], servers or [], max_cost)


optimize_cmd.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [*setting_parameters(), *_RUN_PARAMETERS.values()]
)
app.command("optimize")(optimize_cmd)


def _join(settings: dict[str, Any]) -> None:
    """``--worker``: join the shared search of the run in ``--out``."""
    from promptlathe.optimizers import Optimization
    from promptlathe.optimizers._workers import worker_config

    out = settings.get("out")
    if out is None:
        raise PromptlatheError("--worker needs --out (the run directory to join)")
    cfg = worker_config(Path(out), settings.get("storage"), settings["study"])
    if settings.get("threads"):
        cfg.threads = settings["threads"]
    if settings.get("storage"):
        cfg.storage = settings["storage"]
    metric = settings.get("metric")
    run = Optimization(
        cfg, resume=True, worker=True, code_metric_ok=metric is not None and metric == cfg.metric
    )
    try:
        run.search()
    finally:
        run.close()


def _optimize(settings: dict[str, Any], run_opts: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Run one optimization as the command does; returns its result and its validation,
    confirmation and test examples."""
    from promptlathe.optimizers import Optimization, OptimizeConfig
    from promptlathe.report import AnalysisSizes
    from promptlathe.reporting import OptimizeDisplay, optimize_table

    cfg = OptimizeConfig(**settings)
    display = OptimizeDisplay(cfg.budget_calls, enabled=run_opts["progress"])
    run = Optimization(
        cfg, resume=run_opts["resume"], callback=display, workers=run_opts["workers"]
    )
    scale = run_opts["analysis_scale"]
    analysis_calls = AnalysisSizes().scaled(scale).max_calls() if run_opts["report"] else None
    err_console.print(f"[bold]plan[/bold] for {escape(cfg.task)} on {escape(cfg.model)}:")
    for line in run.plan_lines(analysis_calls):
        err_console.print("  " + line, highlight=False, markup=False, soft_wrap=True)
    if run_opts["resume"]:
        err_console.print(f"  resuming: {run.budget.used} calls already made")
    try:
        with display:
            result = run.run()
        out_console.print(optimize_table(result))
        out_console.print(f"best prompt: {result.best_prompt_path}", markup=False)
        split = {"val": run.split.val, "confirm": run.confirm, "test": run.test}
    finally:
        run.close()
    if run_opts["report"]:  # read back from the run directory, as `promptlathe report` does
        write_report(run.dir, cfg.metric, scale)
    return result, split


def _optimize_models(
    settings: dict[str, Any],
    run_opts: dict[str, Any],
    models: str,
    costs: list[str],
    servers: list[str],
    max_cost: float | None,
) -> None:
    """``--models``: a run per model, each shown as a single run is, then the cascade."""
    from promptlathe.cascade import check_models, optimize_models, parse_models
    from promptlathe.cascade._optimize import plan_lines
    from promptlathe.cli.cascade import print_fitted, write_picture

    names = parse_models(models)
    by_server, prices = check_models(names, costs, servers, settings.get("base_url"))
    lines = plan_lines(settings, names, prices)
    err_console.print("[bold]cascade plan[/bold]:")
    for line in lines:
        err_console.print("  " + line, highlight=False, markup=False, soft_wrap=True)
    done = optimize_models(
        settings, names, servers=by_server, prices=prices,
        run_one=lambda sub: _optimize(sub, run_opts), max_cost=max_cost,
    )  # fmt: skip
    for line in done.offered_lines():
        err_console.print(line, highlight=False, markup=False, soft_wrap=True)
    print_fitted(done.fitted)
    err_console.print(
        f"cascade fitting: {done.fit_calls} model calls not in the runs' caches", highlight=False
    )
    err_console.print(f"wrote {done.path}", markup=False)
    write_picture(done.path)
