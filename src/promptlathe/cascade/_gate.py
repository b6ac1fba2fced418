"""A learned gate: the probability that a step's answer is already right, from what is known
when the step has answered (a logistic regression fitted on the fit split).

Features, in this order: the step's confidence, whether its answer agrees with the previous
step's (0 for the first step), and the input's length (log of 1 + characters). A threshold on
this probability replaces the threshold on the bare confidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from promptlathe.cascade._answers import StepAnswer

FEATURES = ("confidence", "agrees_with_previous", "log_input_chars")


def features(answer: StepAnswer, previous: StepAnswer | None) -> list[float]:
    agrees = previous is not None and " ".join(previous.answer.split()) == " ".join(
        answer.answer.split()
    )
    return [answer.confidence, float(agrees), math.log1p(answer.input_chars)]


@dataclass(frozen=True)
class Gate:
    """``P(right) = sigmoid(weights · features + bias)``."""

    weights: tuple[float, ...]
    bias: float

    def prob(self, x: Sequence[float]) -> float:
        z = self.bias + sum(w * v for w, v in zip(self.weights, x, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


def fit_gate(x: Sequence[Sequence[float]], right: Sequence[bool]) -> Gate:
    """A logistic regression (L2, C = 1, standardised features folded back into the weights)
    of ``right`` on ``x``; with one class only, a constant gate at its smoothed rate."""
    y = np.asarray(right, dtype=int)
    if y.min() == y.max():
        rate = (y.sum() + 0.5) / (len(y) + 1.0)
        return Gate(tuple(0.0 for _ in FEATURES), math.log(rate / (1 - rate)))
    from sklearn.linear_model import LogisticRegression

    arr = np.asarray(x, dtype=float)
    mu, sd = arr.mean(axis=0), arr.std(axis=0)
    sd[sd < 1e-9] = 1.0  # a constant feature (up to rounding) gets no scaling
    model = LogisticRegression(C=1.0).fit((arr - mu) / sd, y)
    w = model.coef_[0] / sd
    b = float(model.intercept_[0] - (w * mu).sum())
    return Gate(tuple(float(v) for v in w), b)
