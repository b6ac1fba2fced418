"""``promptlathe run``: a saved prompt applied to new inputs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from promptlathe._limits import MAX_TOKENS
from promptlathe.artifact import model_from, read_saved
from promptlathe.cascade import is_cascade, run_cascade_file
from promptlathe.cli._app import app
from promptlathe.cli._options import (
    BaseUrlOpt,
    CacheOpt,
    NCtxOpt,
    ParallelOpt,
    _open_lm,
)
from promptlathe.errors import PromptlatheError
from promptlathe.evaluator import Decoding, Evaluator
from promptlathe.metrics import get_metric
from promptlathe.prompts import read_prompt_file


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
    parallel: ParallelOpt = 16,
    cache: CacheOpt = None,
) -> None:
    """Apply a saved prompt (or cascade) to new inputs and print the answers, one line per
    input."""
    texts = [ln.rstrip("\n") for ln in sys.stdin] if inputs == ["-"] else inputs
    data = read_prompt_file(prompt)
    if is_cascade(data):  # a cascade names its models and servers itself
        if model or base_url or raw or max_tokens is not None:
            raise PromptlatheError(
                f"{prompt}: a cascade file names its steps' models; --model, --base-url, "
                "--raw and --max-tokens do not apply to it"
            )
        answers = run_cascade_file(
            prompt, texts, metric=metric, n_ctx=n_ctx, parallel=parallel, cache=cache, data=data
        )
        for a in answers:
            typer.echo(" ".join(a.answer.split()))
        return
    saved = read_saved(prompt)  # a malformed file or unknown strategy fails before any model
    p, fields = saved.prompt, saved.fields
    scorer = get_metric(
        metric or fields.metric,
        fields.labels,
        allow_code=metric is not None,
        source=str(prompt),
    )
    dec = fields.decoding
    if max_tokens is not None:
        dec = Decoding(**{**vars(dec), "max_tokens": max_tokens})
    model_name = model or model_from(fields, prompt, base_url)
    decode_labels = fields.labels_to_score
    with _open_lm(model_name, base_url, n_ctx, cache, parallel=parallel) as lm:
        evaluator = Evaluator(lm, scorer, dec, labels=decode_labels)
        outcomes = evaluator.answer(p, texts)
    for o in outcomes:
        typer.echo(o.text.strip() if raw else " ".join(o.answer.split()))
