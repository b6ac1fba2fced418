"""The untouched test split: winner and seed evaluated outside the budget, and the trivial
baselines that say when a "win" is no better than a constant answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from promptlathe.evaluator import EvalResult, Evaluator
from promptlathe.metrics import Baselines, Metric, trivial_baselines
from promptlathe.prompts import Prompt
from promptlathe.tasks import Example


def evaluate_test(
    evaluator: Evaluator,
    best: Prompt,
    seed: Prompt,
    test: Sequence[Example],
    emit: Callable[..., None],
) -> tuple[EvalResult | None, EvalResult | None]:
    """Winner and seed on the test split (``None, None`` when there is none)."""
    if not test:
        return None, None
    n = len(test)
    total = 2 * n
    emit("test", f"evaluating winner and seed on {n} test examples", done=0, total=total)

    def progress(k: int) -> Callable[[int, int], None]:
        return lambda done, _total: emit("test", done=k * n + done, total=total)

    return (
        evaluator.evaluate(best, test, progress=progress(0)),
        evaluator.evaluate(seed, test, progress=progress(1)),
    )


def baselines(metric: Metric, train: Sequence[Example], res: EvalResult | None) -> Baselines | None:
    """The test result against constant answers (majority label, the prompt's own most
    frequent answer)."""
    if res is None:
        return None
    recs = res.records
    return trivial_baselines(
        metric,
        [e.target for e in train],
        [r.targets for r in recs],
        [r.answer for r in recs],
        [r.score for r in recs],
    )
