"""Opening the models of a cascade's steps: one call cache, one loaded model per name."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from promptlathe.cascade import CascadeAnswer, Step, read_cascade, run_cascade
from promptlathe.cli._options import _open_lm
from promptlathe.errors import PromptlatheError
from promptlathe.evaluator import Evaluator
from promptlathe.lms import CachedLM
from promptlathe.metrics import Metric, get_metric


def parse_servers(specs: Sequence[str], option: str = "--server") -> dict[str, str]:
    """``["NAME=URL", ...]`` as URLs by model name (one line naming a malformed entry)."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, url = spec.partition("=")
        if not sep or not name.strip() or not url.strip().startswith(("http://", "https://")):
            raise PromptlatheError(f"{option} {spec!r}: expected NAME=http(s)://host:port/v1")
        out[name.strip()] = url.strip()
    return out


@contextlib.contextmanager
def open_evaluators(
    steps: Sequence[Step],
    metric: Metric,
    n_ctx: int,
    parallel: int,
    caches: Sequence[Path | None],
) -> Iterator[list[Evaluator]]:
    """An evaluator per step, each running its step's decoding and labels and keeping its
    calls in ``caches[i]``; steps on the same model and cache share one loaded model."""
    lms: dict[tuple[str, str | None, Path | None], CachedLM] = {}
    try:
        evaluators = []
        for s, cache in zip(steps, caches, strict=True):
            key = (s.model, s.base_url, cache)
            if key not in lms:
                lms[key] = _open_lm(s.model, s.base_url, n_ctx, cache, parallel=parallel)
            f = s.saved.fields
            evaluators.append(Evaluator(lms[key], metric, f.decoding, labels=f.labels_to_score))
        yield evaluators
    finally:
        for lm in lms.values():
            lm.close()


def run_cascade_file(
    path: Path,
    data: dict[str, Any],
    texts: Sequence[str],
    metric: str | None,
    n_ctx: int,
    parallel: int,
    cache: Path | None,
) -> list[CascadeAnswer]:
    """A cascade file's answers to ``texts``; the file is checked whole before any model
    loads. Answers are read by ``metric`` (typed by the user) or the file's built-in one."""
    steps, thresholds = read_cascade(path, data)
    named = data.get("metric") if isinstance(data.get("metric"), str) else None
    labels = steps[-1].saved.fields.labels
    scorer = get_metric(metric or named, labels, allow_code=metric is not None, source=str(path))
    with open_evaluators(steps, scorer, n_ctx, parallel, [cache] * len(steps)) as evaluators:
        return run_cascade(steps, thresholds, evaluators, texts)
