"""How much a prompt's accuracy depends on the order of its few-shot exemplars."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from promptlathe.evaluator import Evaluator
from promptlathe.prompts import Prompt
from promptlathe.tasks import Example


@dataclass(frozen=True)
class OrderSensitivity:
    """Result of :func:`order_sensitivity`.

    Attributes:
        per_order: ``(permutation, mean score)`` per evaluated order, identity first; the
            permutation lists indices into the prompt's exemplars.
        min: lowest mean score.
        median: median of the mean scores.
        max: highest mean score.
        spread: ``max - min``.
        n: number of examples each order was scored on.
        calls: uncached LM calls spent.
    """

    per_order: tuple[tuple[tuple[int, ...], float], ...]
    min: float
    median: float
    max: float
    spread: float
    n: int
    calls: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "per_order": [
                {"permutation": list(perm), "accuracy": acc} for perm, acc in self.per_order
            ],
            "min": self.min,
            "median": self.median,
            "max": self.max,
            "spread": self.spread,
            "n": self.n,
            "calls": self.calls,
        }


def order_sensitivity(
    evaluator: Evaluator,
    prompt: Prompt,
    examples: Sequence[Example],
    n_orders: int = 6,
    seed: int = 0,
) -> OrderSensitivity:
    """Score ``prompt`` under several orders of its exemplars, on the same examples.

    Method: Lu et al. 2022, "Fantastically ordered prompts and where to find them:
    overcoming few-shot prompt order sensitivity".

    The identity order comes first. If there are at most ``n_orders`` permutations, all are
    used; otherwise ``n_orders - 1`` further distinct ones are drawn at random (seeded).

    Args:
        evaluator: scores a prompt on examples.
        prompt: the prompt whose exemplars are permuted.
        examples: evaluation examples, the same for every order.
        n_orders: maximum number of distinct orders (identity included).
        seed: seed for drawing permutations.

    Returns:
        An :class:`OrderSensitivity`; a single order when the prompt has at most one
        exemplar.

    Raises:
        ValueError: ``n_orders < 1`` or no examples.
    """
    if n_orders < 1:
        raise ValueError(f"n_orders must be >= 1, got {n_orders}")
    if not examples:
        raise ValueError("no examples to evaluate on")
    perms = _permutations(len(prompt.exemplars), n_orders, seed)
    per_order: list[tuple[tuple[int, ...], float]] = []
    calls = 0
    for perm in perms:
        variant = prompt.with_(exemplars=[prompt.exemplars[i] for i in perm])
        res = evaluator.evaluate(variant, examples)
        calls += res.calls
        per_order.append((perm, res.mean))
    accs = [acc for _, acc in per_order]
    return OrderSensitivity(
        per_order=tuple(per_order),
        min=min(accs),
        median=float(np.median(accs)),
        max=max(accs),
        spread=max(accs) - min(accs),
        n=len(examples),
        calls=calls,
    )


def _permutations(k: int, n_orders: int, seed: int) -> list[tuple[int, ...]]:
    """Up to ``n_orders`` distinct permutations of ``range(k)``, identity first."""
    identity = tuple(range(k))
    if math.factorial(k) <= n_orders:
        return list(itertools.permutations(identity))  # identity is the first
    rng = random.Random(seed)
    out = [identity]
    seen = {identity}
    while len(out) < n_orders:  # k! > n_orders here, so this ends
        perm = tuple(rng.sample(identity, k))
        if perm not in seen:
            seen.add(perm)
            out.append(perm)
    return out
