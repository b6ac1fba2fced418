"""``promptlathe cascade``: combine optimized prompts of several models into a cascade that
spends the expensive model only where the cheap one is unsure."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from promptlathe.artifact import model_from, read_saved
from promptlathe.cascade import (
    Fitted,
    Step,
    fit_cascade,
    open_evaluators,
    parse_costs,
    parse_servers,
    price_for,
    write_cascade,
)
from promptlathe.cascade._file import step_prompt
from promptlathe.cli._app import app
from promptlathe.cli._options import CacheOpt, NCtxOpt, ParallelOpt, SeedOpt, _check_output_file
from promptlathe.errors import PromptlatheError
from promptlathe.metrics import task_metric
from promptlathe.reporting import err_console, out_console, stage_bars
from promptlathe.tasks import Fields, load_examples, read_meta, split_examples


@app.command("cascade")
def cascade_cmd(
    step: Annotated[
        list[Path],
        typer.Option(
            help="A prompt file of one step (e.g. runs/small/best_prompt.json); give two or "
            "more. Each runs on the model its file names."
        ),
    ],
    task: Annotated[
        Path, typer.Option(help="Labeled examples to fit on (half) and judge on (half).")
    ],
    test: Annotated[
        Path | None, typer.Option(help="Test examples, answered once at the end.")
    ] = None,
    cost: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=IN:OUT: a model's price per million input and output tokens "
            "(default for embedded models: their parameters in billions, output 3x)."
        ),
    ] = None,
    server: Annotated[
        list[str] | None,
        typer.Option(help="NAME=URL: the OpenAI-compatible server that runs model NAME."),
    ] = None,
    tolerance: Annotated[
        float,
        typer.Option(
            help="Accuracy (0-1) the cascade may give up against the best single step.",
            min=0.0,
            max=1.0,
        ),
    ] = 0.0,
    max_cost: Annotated[
        float | None,
        typer.Option(help="Fit the most accurate cascade within this mean cost per input.", min=0),
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(help="Metric name or module:function (default: the task's, else auto)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Where to write the cascade file.")] = Path(
        "cascade.json"
    ),
    seed: SeedOpt = 0,
    n_ctx: NCtxOpt = 4096,
    parallel: ParallelOpt = 16,
    cache: CacheOpt = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Fit a cascade over (model, prompt) steps: thresholds on each step's confidence chosen
    on half of --task, the cascade or the best single step kept on the other half, and
    --test answered once. Writes a cascade file that `promptlathe run` executes."""
    if len(step) < 2:
        raise PromptlatheError("--step: a cascade needs at least two steps")
    _check_output_file(out, "--out")
    servers = parse_servers(server or [])
    prices = parse_costs(cost or [])
    steps, prompts = [], []
    for path in step:
        saved = read_saved(path)
        base_url = servers.get(saved.fields.model or "")
        model = model_from(saved.fields, path, base_url)
        steps.append(Step(model, saved, price_for(model, prices), base_url=base_url))
        prompts.append(step_prompt(path))
    unknown = set(servers) - {s.model for s in steps}
    if unknown:
        raise PromptlatheError(f"--server: no step runs {sorted(unknown)[0]!r}")
    examples = load_examples(task, Fields())
    if len(examples) < 4:
        raise PromptlatheError(f"{task}: {len(examples)} examples; fitting needs at least 4")
    test_examples = load_examples(test, Fields()) if test else []
    meta = read_meta(task)
    scorer = task_metric(metric, meta.metric, meta.path, [e.target for e in examples])
    halves = split_examples(examples, (0.5, 0.5, 0.0), seed)
    with (
        open_evaluators(steps, scorer, n_ctx, parallel, [cache] * len(steps)) as evaluators,
        stage_bars(progress) as say,
    ):
        fitted = fit_cascade(
            steps,
            evaluators,
            scorer,
            halves.train,
            halves.val,
            test_examples,
            tolerance=tolerance,
            max_cost=max_cost,
            say=say,
        )
    print_fitted(fitted)
    by_step = {id(s): p for s, p in zip(steps, prompts, strict=True)}
    write_cascade(
        out,
        fitted.steps,
        [by_step[id(s)] for s in fitted.steps],
        fitted.kept,
        **fitted.record(scorer.name),
    )
    err_console.print(f"wrote {out}", markup=False)
    write_picture(out)


def print_fitted(f: Fitted) -> None:
    """The fit split's front, the judge split's comparison, the test table and the verdict."""
    table = Table(title=f"Fit split (n = {f.n_fit}): Pareto front of cost and accuracy")
    for col in ("policy", "accuracy", "cost / 1k inputs"):
        table.add_column(col)
    for p in f.front:
        table.add_row(escape(f.describe(p.policy)), f"{p.accuracy:.3f}", _k(p.cost))
    out_console.print(table)
    if f.comparison is not None:
        j, c = f.judge, f.comparison
        out_console.print(
            f"judge split (n = {j['n']}): cascade {j['cascade_accuracy']:.3f} at "
            f"{_k(j['cascade_cost'])} per 1k inputs vs {escape(f.label(f.reference))} "
            f"{j['reference_accuracy']:.3f} at {_k(j['reference_cost'])}; difference "
            f"{c.diff:+.3f} (95 % CI {c.boot_ci[0]:+.3f} to {c.boot_ci[1]:+.3f})"
        )
    if f.test:
        t = Table(title="Test split (answered once; ref.: the single step best on the fit split)")
        for col in (
            "policy",
            "accuracy",
            "95 % CI",
            "cost / 1k inputs",
            "cost vs ref.",
            "escalated",
        ):
            t.add_column(col)
        ref_cost = f.test[f.label(f.reference)]["cost"]
        for name, row in f.test.items():
            lo, hi = row["ci95"]
            esc = f"{row['escalated']:.0%}" if row["cascade"] else "-"
            rel = f"{row['cost'] / ref_cost:.0%}" if ref_cost > 0 else "-"
            mark = " (kept)" if row["kept"] else ""
            t.add_row(
                escape(name) + mark, f"{row['accuracy']:.3f}", f"[{lo:.2f}, {hi:.2f}]",
                _k(row["cost"]), rel, esc,
            )  # fmt: skip
        out_console.print(t)
    if f.tradeoff is not None:
        for line in f.tradeoff.sentences():
            out_console.print(line, markup=False, highlight=False)
    out_console.print(f.verdict(), markup=False, highlight=False)


def write_picture(cascade_file: Path) -> None:
    """The cascade's page (``.html``, with the test split's cost–accuracy picture) and the
    picture alone (``.png``), beside the cascade file, drawn from it."""
    from promptlathe.report import write_cascade_page

    for path in write_cascade_page(cascade_file):
        err_console.print(f"wrote {path}", markup=False)


def _k(cost: float) -> str:
    """A mean cost per input, as the cost of 1,000 inputs (3 significant digits)."""
    return f"{cost * 1000:.3g}"
