"""Options several commands share, and helpers that check them before any model loads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from promptlathe._limits import (
    MAX_TOKENS,
    N_CTX,
    SEED,
)
from promptlathe.artifact import file_labels
from promptlathe.errors import PromptlatheError
from promptlathe.evaluator import choose_decode
from promptlathe.lms import (
    MODELS,
    CachedLM,
    backend_class,
    cache_dir,
    get_lm,
)
from promptlathe.metrics import Metric
from promptlathe.prompts import read_prompt_file
from promptlathe.store import Store

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
            return file_labels(data, prompt)
    labels, _ = choose_decode(decode, scorer, backend_class(base_url), targets, where)
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
