"""Candidate exemplar sets: labeled subsets of train, and the model's own validated outputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from promptlathe.evaluator import Evaluator
from promptlathe.prompts import Exemplar, Prompt
from promptlathe.tasks import Example


@dataclass(frozen=True)
class DemoSet:
    """An ordered set of exemplars and where they came from (labeled/bootstrapped/mixed)."""

    kind: str
    exemplars: tuple[Exemplar, ...]


def labeled(examples: Sequence[Example]) -> list[Exemplar]:
    return [Exemplar(input=e.input, output=e.target) for e in examples]


def bootstrap(evaluator: Evaluator, teacher: Prompt, examples: Sequence[Example]) -> list[Exemplar]:
    """Run ``teacher`` on ``examples``; keep the outputs the metric fully validated.

    The kept exemplars carry the model's own wording (and reasoning, if it gave any), which
    is what the model finds easiest to imitate.
    """
    result = evaluator.evaluate(teacher, examples)
    return [
        Exemplar(input=r.input, output=r.output.strip())
        for r in result.records
        if r.score >= 1.0 and r.output.strip()
    ]


def demo_sets(
    labeled_pool: Sequence[Exemplar],
    boot_pool: Sequence[Exemplar],
    k: int,
    n_sets: int,
    seed: int,
) -> list[DemoSet]:
    """``n_sets`` candidate sets of ``k`` exemplars each.

    Labeled sets are always included (bootstrapping can starve when the model rarely gets a
    train example right); bootstrapped and mixed sets are added as far as the validated
    pool allows. Set 0 is labeled, so a seed configuration is always available.
    """
    rng = np.random.default_rng(seed)
    sets: list[DemoSet] = []
    seen: set[tuple[Exemplar, ...]] = set()

    def add(kind: str, items: Sequence[Exemplar]) -> None:
        t = tuple(items)
        if t and t not in seen:
            seen.add(t)
            sets.append(DemoSet(kind, t))

    def sample(pool: Sequence[Exemplar], m: int) -> list[Exemplar]:
        idx = rng.choice(len(pool), size=min(m, len(pool)), replace=False)
        return [pool[i] for i in idx]

    kinds = ["labeled", "bootstrapped", "mixed"] if boot_pool else ["labeled"]
    attempts = 0
    while len(sets) < n_sets and attempts < n_sets * 10 and labeled_pool:
        kind = kinds[len(sets) % len(kinds)]
        if kind == "labeled":
            add(kind, sample(labeled_pool, k))
        elif kind == "bootstrapped":
            add(kind, sample(boot_pool, k))
        else:
            half = max(1, k // 2)
            mixed = sample(boot_pool, half) + sample(labeled_pool, k - half)
            add(kind, [mixed[i] for i in rng.permutation(len(mixed))])
        attempts += 1
    return sets


def orders(k: int, n: int, seed: int) -> list[tuple[int, ...]]:
    """``n`` distinct permutations of ``range(k)``, the identity first."""
    rng = np.random.default_rng(seed)
    out = [tuple(range(k))]
    attempts = 0
    while len(out) < n and attempts < n * 20:
        p = tuple(int(i) for i in rng.permutation(k))
        if p not in out:
            out.append(p)
        attempts += 1
    return out
