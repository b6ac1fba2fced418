"""How much a prompt's accuracy moves across meaning-preserving formats, on a call budget."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from promptlathe._stats import wilson_interval
from promptlathe.errors import BudgetExhausted
from promptlathe.evaluator import Evaluator
from promptlathe.prompts import Format, Prompt
from promptlathe.tasks import Example


@dataclass(frozen=True)
class FormatSpread:
    """Result of :func:`format_spread`.

    Attributes:
        per_format: ``(format as dict, mean score, n examples)`` for every format that was
            evaluated on at least one example, in the order of ``formats``.
        min: lowest mean score among them (NaN if none was evaluated).
        median: median of the mean scores (NaN if none).
        max: highest mean score (NaN if none).
        spread: ``max - min`` (NaN if none).
        worst: the format (as dict) with the lowest mean, ``None`` if none.
        best: the format (as dict) with the highest mean, ``None`` if none.
        calls: uncached LM calls spent (``EvalResult.calls`` summed).
        n_formats: number of formats given.
        budget_exhausted: a :class:`BudgetExhausted` stopped the estimation early.
    """

    per_format: tuple[tuple[dict[str, Any], float, int], ...]
    min: float
    median: float
    max: float
    spread: float
    worst: dict[str, Any] | None
    best: dict[str, Any] | None
    calls: int
    n_formats: int
    budget_exhausted: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "per_format": [
                {"format": dict(f), "accuracy": acc, "n": n} for f, acc, n in self.per_format
            ],
            "min": self.min,
            "median": self.median,
            "max": self.max,
            "spread": self.spread,
            "worst": self.worst,
            "best": self.best,
            "calls": self.calls,
            "n_formats": self.n_formats,
            "budget_exhausted": self.budget_exhausted,
        }


def format_spread(
    evaluator: Evaluator,
    prompt: Prompt,
    examples: Sequence[Example],
    formats: Sequence[Format],
    budget_calls: int,
    batch: int = 8,
    seed: int = 0,
) -> FormatSpread:
    """Estimate the best and worst accuracy of ``prompt`` over ``formats`` with few calls.

    Method: FormatSpread, Sclar et al. 2024, "Quantifying language models' sensitivity to
    spurious features in prompt design" (bandit search for the extreme formats).

    Every format (arm) is first scored on the same first ``batch`` examples (fewer if the
    budget cannot cover ``batch`` per arm). Then, round after round, the next ``batch``
    examples go to the arm with the highest upper Wilson bound (candidate best) and to the
    arm with the lowest lower Wilson bound (candidate worst), until ``budget_calls``
    evaluations (format × example, cached or not) are spent or every arm has seen every
    example. Counting cached evaluations too makes the search replay exactly on a rerun: the
    same pulls, served from the cache, the same numbers and no new calls. Arms always see the
    examples in the given order, so they are compared on common prefixes.

    Args:
        evaluator: scores a prompt on examples.
        prompt: the prompt whose format is varied.
        examples: the evaluation examples (shuffle them beforehand if their order matters).
        formats: the formats to compare (e.g. :func:`~promptlathe.formats.format_space`).
        budget_calls: cap on evaluations, hence on LM calls; never exceeded, since no
            evaluation is started with more examples than are left.
        batch: examples per pull.
        seed: breaks ties between arms with equal bounds (a seeded random order of the
            arms), so no format is favoured for its position in ``formats``.

    Returns:
        A :class:`FormatSpread` with each arm's mean over the examples it saw. If the
        evaluator's LM raises :class:`BudgetExhausted`, what was measured until then is
        reported (the calls of the interrupted evaluation are not counted).

    Raises:
        ValueError: no formats, no examples, ``budget_calls < 1`` or ``batch < 1``.
    """
    if not formats:
        raise ValueError("no formats to compare")
    if not examples:
        raise ValueError("no examples to evaluate on")
    if budget_calls < 1:
        raise ValueError(f"budget_calls must be >= 1, got {budget_calls}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")

    k, n_total = len(formats), len(examples)
    prompts = [prompt.with_(format=f) for f in formats]
    scores: list[list[float]] = [[] for _ in range(k)]
    calls = 0  # uncached LM calls, reported
    spent = 0  # evaluations, cached or not: what the budget counts
    exhausted = False
    tiebreak = random.Random(seed).sample(range(k), k)  # arm -> rank among equals

    def pull(arm: int, m: int) -> None:
        nonlocal calls, spent
        start = len(scores[arm])
        m = min(m, n_total - start, budget_calls - spent)
        if m <= 0:
            return
        res = evaluator.evaluate(prompts[arm], examples[start : start + m])
        calls += res.calls
        spent += res.n
        scores[arm].extend(r.score for r in res.records)

    def bounds(arm: int) -> tuple[float, float]:
        return wilson_interval(sum(scores[arm]), len(scores[arm]))

    try:
        first = min(batch, n_total, max(1, budget_calls // k))
        for arm in range(k):
            pull(arm, first)
        while spent < budget_calls:
            open_arms = [i for i in range(k) if len(scores[i]) < n_total]
            if not open_arms:
                break
            hi = max(open_arms, key=lambda i: (bounds(i)[1], -tiebreak[i]))
            lo = min(open_arms, key=lambda i: (bounds(i)[0], tiebreak[i]))
            pull(hi, batch)
            if lo != hi:
                pull(lo, batch)
    except BudgetExhausted:
        exhausted = True

    measured = [i for i in range(k) if scores[i]]
    per_format = tuple(
        (_format_dict(formats[i]), float(np.mean(scores[i])), len(scores[i])) for i in measured
    )
    if not measured:
        nan = math.nan
        return FormatSpread((), nan, nan, nan, nan, None, None, calls, k, exhausted)
    accs = [acc for _, acc, _ in per_format]
    worst = int(np.argmin(accs))
    best = int(np.argmax(accs))
    return FormatSpread(
        per_format=per_format,
        min=accs[worst],
        median=float(np.median(accs)),
        max=accs[best],
        spread=accs[best] - accs[worst],
        worst=per_format[worst][0],
        best=per_format[best][0],
        calls=calls,
        n_formats=k,
        budget_exhausted=exhausted,
    )


def _format_dict(f: Format) -> dict[str, Any]:
    return {name: getattr(f, name) for name in f.__dataclass_fields__}
