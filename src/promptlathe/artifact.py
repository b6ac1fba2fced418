"""A saved prompt file (``best_prompt.json``): the prompt and how to run it as it was
evaluated (decoding, model, answer extraction, label scoring). Every malformed field is a
one-line error naming the file, before any model loads. Data only: nothing in it is run."""

from __future__ import annotations

from pathlib import Path

from promptlathe._limits import MAX_TOKENS
from promptlathe.errors import PromptlatheError
from promptlathe.evaluator import Decoding
from promptlathe.lms import (
    DEFAULT_MODEL,
    MODELS,
)
from promptlathe.prompts import Prompt
from promptlathe.strategies import get_strategy


def file_labels(data: dict[str, object], where: Path) -> list[str] | None:
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


def load_prompt(path: Path) -> Prompt:
    """A prompt file, its strategy checked (one line naming the file, before any model)."""
    p = Prompt.load(path)
    get_strategy(p.strategy, where=str(path))
    return p


def str_field(data: dict[str, object], key: str, where: Path) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise PromptlatheError(f"{where}: field {key!r} must be a string")
    return value


def decoding_from(data: dict[str, object], where: Path) -> Decoding:
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


def model_from(data: dict[str, object], where: Path, base_url: str | None) -> str:
    """The model a prompt file names: an embedded model's name (or a server's model name
    with --base-url); never a file path, which would load whatever the file points at."""
    named = str_field(data, "model", where)
    if named is None:
        return DEFAULT_MODEL
    if base_url or named in MODELS:
        return named
    raise PromptlatheError(
        f"{where}: names the model {named!r}, which is not an embedded model; pass --model "
        "(and --base-url for a server) to say which model to run"
    )
