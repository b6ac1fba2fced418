"""A certificate for a prompt on data the search never saw: a lower confidence bound on its
accuracy from held-out scores, with the selection among finalists paid for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from promptlathe._stats import binomial_lower, hoeffding_lower


@dataclass(frozen=True)
class Certificate:
    """With probability at least ``1 - delta``, the prompt's accuracy on new data from the
    same distribution is at least ``lower``.

    Attributes:
        lower: the certified accuracy.
        mean: the prompt's mean score on the examples behind it.
        n: how many examples (never seen by the search).
        finalists: how many prompts were compared on them before this one was chosen; the
            bound holds for each at level ``delta / finalists`` (a union bound), so it holds
            for whichever the choice fell on.
        delta: the bound fails with probability at most this.
        method: ``"exact binomial"`` (Clopper–Pearson; 0/1 scores) or ``"Hoeffding"``
            (partial credit).
        baseline: the best trivial answer's accuracy (a constant), when known.
        vacuous: the certified accuracy is no better than ``baseline`` (or is 0): it says
            nothing a constant answer would not.
        covers: what data the bound is about, in words.
        sentence: the claim the certificate supports, for the report.
    """

    lower: float
    mean: float
    n: int
    finalists: int
    delta: float
    method: str
    baseline: float | None
    vacuous: bool
    covers: str
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def certify(
    scores: Sequence[float],
    *,
    finalists: int = 1,
    delta: float = 0.05,
    baseline: float | None = None,
    covers: str = "examples the prompt was not chosen on",
) -> Certificate:
    """The certificate of a prompt from its per-example scores on held-out examples.

    Args:
        scores: per-example scores in [0, 1] on examples the choice of the prompt did not see
            (or saw only to choose among ``finalists``).
        finalists: prompts compared on these examples before this one was chosen (1: none).
        delta: failure probability of the whole statement.
        baseline: the best trivial answer's accuracy; at or below it the certificate is
            reported as vacuous.
        covers: what the examples are (it goes into the sentence).

    Raises:
        ValueError: ``finalists < 1``, ``delta`` outside (0, 1), or a score outside [0, 1].
    """
    if finalists < 1:
        raise ValueError(f"finalists must be >= 1, got {finalists}")
    if any(not 0.0 <= s <= 1.0 for s in scores):
        raise ValueError("scores must be in [0, 1]")
    n = len(scores)
    mean = sum(scores) / n if n else 0.0
    each = delta / finalists
    binary = all(s in (0.0, 1.0) for s in scores)
    if binary:
        lower = binomial_lower(int(sum(scores)), n, each)
        method = "exact binomial"
    else:
        lower = hoeffding_lower(mean, n, each)
        method = "Hoeffding"
    vacuous = lower <= 0.0 or (baseline is not None and lower <= baseline)
    level = f"{(1 - delta) * 100:g} %"
    chosen = (
        f", allowing for the choice among {finalists} finalists compared on them"
        if finalists > 1
        else ""
    )
    sentence = (
        f"With probability ≥ {level}, this prompt's accuracy on new data from the same "
        f"distribution is at least {lower:.2f} ({method} bound from its {mean:.2f} on {n} "
        f"{covers}{chosen})."
    )
    if vacuous:
        than = f"the best constant answer's {baseline:.2f}" if baseline is not None else "0"
        sentence += f" That is no better than {than}: the certificate says nothing useful here."
    return Certificate(
        lower=lower,
        mean=mean,
        n=n,
        finalists=finalists,
        delta=delta,
        method=method,
        baseline=baseline,
        vacuous=vacuous,
        covers=covers,
        sentence=sentence,
    )
