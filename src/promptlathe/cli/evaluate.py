"""``promptlathe eval``: one prompt on a task, accuracy with a 95 % interval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, cast

import numpy as np
import typer
from rich.markup import escape

from promptlathe._stats import wilson_interval
from promptlathe.analysis import Certificate, certify
from promptlathe.artifact import load_prompt
from promptlathe.cascade import evaluate_cascade_file, is_cascade
from promptlathe.cli._app import app
from promptlathe.cli._options import (
    BaseUrlOpt,
    CacheOpt,
    DecodeOpt,
    MaxTokensOpt,
    ModelOpt,
    NCtxOpt,
    ParallelOpt,
    SeedOpt,
    _check_output_file,
    _decode_labels,
    _open_lm,
)
from promptlathe.errors import PromptlatheError
from promptlathe.evaluator import Decoding, EvalResult, Evaluator
from promptlathe.lms import DEFAULT_MODEL
from promptlathe.metrics import Metric, task_metric, trivial_baselines
from promptlathe.prompts import Exemplar, Format, Mode, Prompt, read_prompt_file
from promptlathe.reporting import err_console, eval_table, out_console, progress_bar
from promptlathe.tasks import Example, Fields, load_examples, read_meta


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
    parallel: ParallelOpt = 16,
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
    if prompt is not None and is_cascade(read_prompt_file(prompt)):
        if shots or base_url or model != DEFAULT_MODEL:
            raise PromptlatheError(
                f"{prompt}: a cascade file names its steps' models and prompts; --model, "
                "--base-url and --shots do not apply to it"
            )
        examples = examples[:limit] if limit is not None else examples
        _eval_cascade(prompt, task, examples, metric, meta.metric, n_ctx, parallel, cache, json_out)
        return
    base = (
        load_prompt(prompt)
        if prompt
        else Prompt(instruction=instruction or "", format=Format(mode=cast(Mode, mode)))
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
    lm = _open_lm(model, base_url, n_ctx, cache, retries, parallel)
    evaluator = Evaluator(lm, scorer, Decoding(max_tokens=max_tokens, seed=seed), labels=labels)
    with progress_bar(f"eval {task.name}", enabled=progress) as update:
        result = evaluator.evaluate(base, examples, progress=update)
    out_console.print(
        f"[bold]{escape(task.name)}[/bold] · model {escape(model)} · metric {escape(scorer.name)}"
    )
    out_console.print(eval_table(result))
    cert = _certificate(result, scorer, examples)
    out_console.print(cert.sentence, markup=False, highlight=False)
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
            "certificate": cert.to_dict(),
        }
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        err_console.print(f"wrote {json_out}", markup=False)
    lm.close()


def _certificate(result: EvalResult, scorer: Metric, examples: list[Example]) -> Certificate:
    """The prompt's certified accuracy on these examples (no selection: one prompt), judged
    against the best constant answer on them."""
    records = result.records
    base = trivial_baselines(
        scorer,
        [e.target for e in examples],
        [r.targets for r in records],
        [r.answer for r in records],
        [r.score for r in records],
    )
    return certify(
        [r.score for r in records],
        baseline=base.best_constant_accuracy if base else None,
        covers="examples evaluated",
    )


def _eval_cascade(
    path: Path,
    task: Path,
    examples: list[Example],
    metric: str | None,
    sidecar: str | None,
    n_ctx: int,
    parallel: int,
    cache: Path | None,
    json_out: Path | None,
) -> None:
    """``eval --prompt cascade.json``: the cascade's accuracy with its interval and its
    certificate, its cost, and which step answered how much."""
    res = evaluate_cascade_file(
        path, examples, metric=metric, task_metric=sidecar, n_ctx=n_ctx, parallel=parallel,
        cache=cache,
    )  # fmt: skip
    lo, hi = wilson_interval(sum(res.scores), len(res.scores))
    out_console.print(f"[bold]{escape(task.name)}[/bold] · cascade {escape(str(path))}")
    out_console.print(
        f"accuracy {res.accuracy:.3f}  95% CI [{lo:.3f}, {hi:.3f}]  n={len(res.scores)}  "
        f"cost per 1,000 inputs {res.cost * 1000:.4g}",
        highlight=False,
    )
    shares = res.answered_by()
    out_console.print(
        "answered by: " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()),
        markup=False,
        highlight=False,
    )
    base = trivial_baselines(
        res.metric,
        [e.target for e in examples],
        [list(e.targets) for e in examples],
        [a.answer for a in res.answers],
        res.scores,
    )
    cert = certify(
        res.scores,
        baseline=base.best_constant_accuracy if base else None,
        covers="examples evaluated",
    )
    out_console.print(cert.sentence, markup=False, highlight=False)
    if json_out:
        payload = {
            "task": str(task),
            "cascade": str(path),
            "accuracy": res.accuracy,
            "ci95": [lo, hi],
            "n": len(res.scores),
            "cost_per_input": res.cost,
            "answered_by": shares,
            "certificate": cert.to_dict(),
            "records": [
                {"input": e.input, "answer": a.answer, "step": a.step, "score": sc,
                 "cost": a.cost, "confidence": a.confidence}
                for e, a, sc in zip(examples, res.answers, res.scores, strict=True)
            ],
        }  # fmt: skip
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        err_console.print(f"wrote {json_out}", markup=False)
