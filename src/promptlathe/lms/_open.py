"""A model behind its call cache, opened by name: what every command that runs a model does."""

from __future__ import annotations

from pathlib import Path

from promptlathe.lms._cached import CachedLM
from promptlathe.lms._registry import cache_dir
from promptlathe.store import Store


def open_cached(
    model: str,
    base_url: str | None,
    cache: Path | None,
    *,
    n_ctx: int = 4096,
    parallel: int = 1,
    retries: int = 5,
) -> CachedLM:
    """``model`` (embedded, or served at ``base_url``) with its calls kept in ``cache`` (an
    SQLite file; default ``$PROMPTLATHE_HOME/cache.sqlite``). A bad cache path fails before
    the model loads."""
    from promptlathe.lms import get_lm

    kwargs = {"max_retries": retries} if base_url else {"n_ctx": n_ctx, "parallel": parallel}
    store = Store(cache or cache_dir() / "cache.sqlite")
    try:
        return CachedLM(get_lm(model, base_url=base_url, **kwargs), store)
    except BaseException:
        store.close()
        raise
