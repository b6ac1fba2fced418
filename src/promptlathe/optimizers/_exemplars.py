"""Candidate exemplar sets: labeled subsets of train, and the model's own validated outputs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from promptlathe.errors import BudgetExhausted
from promptlathe.evaluator import Evaluator
from promptlathe.metrics import label_set_of, normalize
from promptlathe.prompts import Exemplar, Prompt
from promptlathe.tasks import Example


@dataclass(frozen=True)
class DemoSet:
    """An ordered set of exemplars and where they came from (labeled/bootstrapped/mixed)."""

    kind: str
    exemplars: tuple[Exemplar, ...]


def labeled(examples: Sequence[Example]) -> list[Exemplar]:
    return [Exemplar(input=e.input, output=e.target) for e in examples]


def sample_demos(pool: Sequence[Exemplar], m: int, rng: np.random.Generator) -> list[Exemplar]:
    """``m`` exemplars drawn from ``pool``, stratified by output when the outputs form a label
    set: a set of four "no" demos teaches a constant answer, so each label is drawn in turn
    (round-robin over the labels in random order) before any is drawn twice."""
    m = min(m, len(pool))
    outputs = [normalize(e.output) for e in pool]
    if label_set_of(outputs) is None:
        return [pool[i] for i in rng.choice(len(pool), size=m, replace=False)]
    by_label: dict[str, list[int]] = {}
    for i in rng.permutation(len(pool)):
        by_label.setdefault(outputs[i], []).append(int(i))
    queues = [by_label[k] for k in rng.permutation(sorted(by_label))]
    picked: list[int] = []
    while len(picked) < m:
        for q in queues:
            if q and len(picked) < m:
                picked.append(q.pop())
    return [pool[i] for i in rng.permutation(picked)]


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


def bootstrap_until(
    evaluator: Evaluator,
    teacher: Prompt,
    examples: Sequence[Example],
    want: int,
    first: int,
) -> tuple[list[Exemplar], int]:
    """Walk ``examples`` (their number is the cap) with :func:`bootstrap` until ``want``
    outputs validate, as DSPy's BootstrapFewShot walks its train set until it has its demos.

    The first batch is ``first`` examples; each later one is what the rate so far needs to
    reach ``want`` (never past the cap). A first batch with nothing validated ends the walk:
    at that rate the cap would rarely be enough, and the calls are better spent searching.
    Running out of budget ends it too, keeping what validated so far. Returns the validated
    exemplars and how many examples were tried.
    """
    kept: list[Exemplar] = []
    tried, n = 0, min(first, len(examples))
    while n > 0:
        try:
            kept += bootstrap(evaluator, teacher, examples[tried : tried + n])
        except BudgetExhausted:
            break
        tried += n
        if len(kept) >= want or not kept:
            break
        n = min(math.ceil((want - len(kept)) * tried / len(kept)), len(examples) - tried)
    return kept, tried


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
        return sample_demos(pool, m, rng)

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
