"""The backend registry: which :class:`LM` class serves a model spec (what the user typed as
``--model`` and ``--base-url``). Capabilities are read off the class before any model loads;
nothing else ever guesses them from a URL.

Built in, tried in order: an OpenAI-compatible server (a ``--base-url``), a ``.gguf`` file,
an embedded model's name. A third-party package adds a backend by declaring a
:class:`Backend` under the ``promptlathe.backends`` entry-point group; it is tried first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptlathe.errors import ModelError
from promptlathe.lms._base import LM
from promptlathe.lms._registry import resolve_embedded

ENTRY_POINTS = "promptlathe.backends"


@dataclass(frozen=True)
class Backend:
    """One kind of backend.

    Attributes:
        name: for messages.
        accepts: whether it serves ``(model, base_url)``.
        load: the :class:`LM` subclass (imported on first use, so an optional dependency is
            only needed by those who use it).
        build: a backend for ``(model, base_url, **options)``.
    """

    name: str
    accepts: Callable[[str, str | None], bool]
    load: Callable[[], type[LM]]
    build: Callable[..., LM]


def _http() -> type[LM]:
    from promptlathe.lms._http import OpenAICompatLM

    return OpenAICompatLM


def _llama() -> type[LM]:
    from promptlathe.lms._llama import LlamaCppLM

    return LlamaCppLM


def _is_gguf(model: str, base_url: str | None) -> bool:
    return not base_url and (model.endswith(".gguf") or Path(model).is_file())


def _build_http(model: str, base_url: str, **kw: Any) -> LM:
    from promptlathe.lms._http import OpenAICompatLM

    return OpenAICompatLM(base_url=base_url, model=model, **kw)


def _build_gguf(model: str, base_url: None, **kw: Any) -> LM:
    from promptlathe.lms._llama import LlamaCppLM

    return LlamaCppLM(model, **kw)


def _build_embedded(model: str, base_url: None, **kw: Any) -> LM:
    from promptlathe.lms._llama import LlamaCppLM

    return LlamaCppLM(resolve_embedded(model), name=model, **kw)


BUILTIN: tuple[Backend, ...] = (
    Backend("openai-compatible server", lambda m, url: bool(url), _http, _build_http),
    Backend("GGUF file", _is_gguf, _llama, _build_gguf),
    Backend("embedded model", lambda m, url: not url, _llama, _build_embedded),
)


def _plugins() -> list[Backend]:
    from importlib.metadata import entry_points

    found = []
    for ep in entry_points(group=ENTRY_POINTS):
        try:
            backend = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plug-in names itself
            raise ModelError(f"backend plug-in {ep.name!r} ({ep.value}) failed: {exc}") from None
        if not isinstance(backend, Backend):
            raise ModelError(f"backend plug-in {ep.name!r} ({ep.value}) is not a Backend")
        found.append(backend)
    return found


def backend_for(model: str, base_url: str | None = None) -> Backend:
    """The first backend (plug-ins, then the built-in ones) that serves the spec."""
    for backend in (*_plugins(), *BUILTIN):
        if backend.accepts(model, base_url):
            return backend
    raise ModelError(f"no backend serves --model {model!r}")  # pragma: no cover
