"""Options several commands share, and helpers that check them before any model loads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from promptlathe.artifact import file_labels
from promptlathe.cli._settings import option
from promptlathe.errors import PromptlatheError
from promptlathe.evaluator import choose_decode
from promptlathe.lms import CachedLM, backend_class, open_cached
from promptlathe.metrics import Metric
from promptlathe.prompts import read_prompt_file

# Declared once, with the run's settings (promptlathe.optimizers.OptimizeConfig).
ModelOpt = option("model")
BaseUrlOpt = option("base_url")
SeedOpt = option("seed")
MaxTokensOpt = option("max_tokens")
NCtxOpt = option("n_ctx")
ParallelOpt = option("parallel")
DecodeOpt = option("decode")
ScaleOpt = Annotated[
    float, typer.Option(help="Scale the report's analysis budgets.", min=0.01, max=100.0)
]
CacheOpt = Annotated[
    Path | None,
    typer.Option(help="SQLite file for the call cache (default: $PROMPTLATHE_HOME/cache.sqlite)."),
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
            return file_labels(data, prompt)
    labels, _ = choose_decode(decode, scorer, backend_class(base_url), targets, where)
    return labels


def _open_lm(
    model: str,
    base_url: str | None,
    n_ctx: int,
    cache: Path | None,
    retries: int = 5,
    parallel: int = 1,
) -> CachedLM:
    return open_cached(model, base_url, cache, n_ctx=n_ctx, parallel=parallel, retries=retries)


def _check_output_file(path: Path, option: str) -> None:
    """Fail now, not after the model work, if ``path`` cannot be written."""
    if path.is_dir():
        raise PromptlatheError(f"{option} {path}: is a directory; give a file name")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise PromptlatheError(f"{option} {path}: {parent} is a file, not a directory")
