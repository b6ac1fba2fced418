"""How sure a prompt is of one answer, from what its calls already returned (no extra call).

Two signals exist without asking the model again: the probability label scoring gives the
chosen label (its log-probability normalised over the task's labels), and the share of a
strategy's samples that voted for the answer it returned (self-consistency). A single greedy
generation has neither; a cascade then scores the output it generated (one more pass, whose
tokens it counts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def label_confidence(
    logprobs: Sequence[float | None], upper_bounds: Sequence[float] | None = None
) -> float:
    """The chosen label's probability among the labels: ``softmax(logprobs)`` at its
    maximum. A label whose log-probability is ``None`` was proved to lose without being
    computed: it counts at its upper bound when one is given (so the probability is a lower
    bound, never an overstatement), else as probability 0."""
    known = [lp for lp in logprobs if lp is not None]
    if not known:
        return 0.0
    top = max(known)
    rest = [
        upper_bounds[k] if upper_bounds is not None else None
        for k, lp in enumerate(logprobs)
        if lp is None
    ]
    terms = known + [min(u, top) for u in rest if u is not None]
    return 1.0 / sum(math.exp(lp - top) for lp in terms)


def vote_share(votes: Sequence[str], chosen: str) -> float:
    """The share of ``votes`` (the samples' answers) equal to ``chosen``; 0 with no votes."""
    return sum(v == chosen for v in votes) / len(votes) if votes else 0.0


def mean_token_probability(logprob: float, n_tokens: int) -> float:
    """``exp(logprob / n_tokens)``: the geometric-mean probability of an output's tokens
    (1 for an empty output, which the model was sure to stop at)."""
    return math.exp(logprob / n_tokens) if n_tokens > 0 else 1.0
