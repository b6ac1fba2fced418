"""The models of a cascade's steps, opened once each behind their call caches."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from promptlathe.cascade._answers import Step
from promptlathe.evaluator import Evaluator
from promptlathe.lms import CachedLM, open_cached
from promptlathe.metrics import Metric


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
                lms[key] = open_cached(s.model, s.base_url, cache, n_ctx=n_ctx, parallel=parallel)
            f = s.saved.fields
            evaluators.append(Evaluator(lms[key], metric, f.decoding, labels=f.labels_to_score))
        yield evaluators
    finally:
        for lm in lms.values():
            lm.close()
