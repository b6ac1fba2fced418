"""LM backends behind one protocol: embedded llama.cpp, OpenAI-compatible HTTP, a test double.

:func:`get_lm` turns what a user typed (``--model``, ``--base-url``) into a backend.
"""

from __future__ import annotations

from typing import Any

from promptlathe.lms._backends import Backend, backend_for
from promptlathe.lms._base import (
    LM,
    Capabilities,
    Generation,
    GenerationRequest,
    LabelChoice,
    LabelRequest,
    LMStats,
    ScoreRequest,
    ScoreResult,
    request_key,
)
from promptlathe.lms._cached import CachedLM
from promptlathe.lms._open import open_cached
from promptlathe.lms._price import Price, default_price, parse_costs, price_for
from promptlathe.lms._registry import (
    DEFAULT_MODEL,
    MODELS,
    EmbeddedModel,
    cache_dir,
    is_installed,
    resolve_embedded,
)
from promptlathe.lms._scripted import ScriptedLM


def backend_class(base_url: str | None, model: str = DEFAULT_MODEL) -> type[LM]:
    """The class :func:`get_lm` builds for the spec, for reading its declared capabilities
    (``can_score``, ``labels_in_one_pass``, ``embedded``) before any model loads."""
    return backend_for(model, base_url).load()


STRONG_PROPOSER = "qwen2.5-coder-1.5b"
"""The embedded model that writes the best instructions (bench/proposers.py)."""


def default_proposer(model: str, base_url: str | None, proposer_model: str | None) -> str:
    """``proposer_model``, else the strongest installed embedded model when the task model
    is embedded, else the task model."""
    if proposer_model:
        return proposer_model
    best = MODELS.get(STRONG_PROPOSER)
    if backend_class(base_url, model).embedded and best is not None and is_installed(best):
        return best.name
    return model


def get_lm(model: str = DEFAULT_MODEL, base_url: str | None = None, **kwargs: Any) -> LM:
    """Build a backend (see :mod:`promptlathe.lms._backends` for which one serves a spec).

    Args:
        model: an embedded model name (``promptlathe models``), a path to a ``.gguf`` file, or,
            with ``base_url``, the server's model name.
        base_url: an OpenAI-compatible server (``http://host:port/v1``).
        **kwargs: passed to the backend (``n_ctx``, ``concurrency``, ``timeout``...).

    Raises:
        ModelError: unknown model, missing package, missing or corrupt file.
    """
    return backend_for(model, base_url).build(model, base_url, **kwargs)


__all__ = [
    "Price",
    "default_price",
    "parse_costs",
    "price_for",
    "DEFAULT_MODEL",
    "Backend",
    "backend_for",
    "LM",
    "Capabilities",
    "MODELS",
    "CachedLM",
    "EmbeddedModel",
    "Generation",
    "GenerationRequest",
    "LMStats",
    "LabelChoice",
    "LabelRequest",
    "ScoreRequest",
    "ScoreResult",
    "ScriptedLM",
    "open_cached",
    "STRONG_PROPOSER",
    "default_proposer",
    "backend_class",
    "cache_dir",
    "get_lm",
    "is_installed",
    "request_key",
    "resolve_embedded",
]
