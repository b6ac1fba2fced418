"""Label-free prompt screening: mutual information between inputs and predicted labels."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from promptlathe.lms import LM
from promptlathe.prompts import Prompt
from promptlathe.requests import answer_continuation, score_request


def label_set(targets: Sequence[str], max_labels: int = 20) -> list[str] | None:
    """The distinct targets of a classification task, or ``None`` if it is not one.

    Args:
        targets: the canonical target of every example.
        max_labels: most distinct labels a classification task may have.

    Returns:
        The distinct targets in first-seen order if there are between 2 and ``max_labels``
        of them; otherwise ``None`` (free-form answers, or a single label that leaves nothing
        to discriminate).
    """
    labels = list(dict.fromkeys(targets))
    return labels if 2 <= len(labels) <= max_labels else None


def label_distribution(lm: LM, prompt: Prompt, query: str, labels: Sequence[str]) -> np.ndarray:
    """``P(y | query, prompt)`` over ``labels``: the LM's label log-probabilities, softmaxed.

    One ``lm.score`` call with ``len(labels)`` requests.
    """
    reqs = [score_request(prompt, query, answer_continuation(prompt, y)) for y in labels]
    lps = np.array([r.logprob for r in lm.score(reqs)], dtype=np.float64)
    z = np.exp(lps - lps.max())
    return z / z.sum()


def _entropy(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


def mutual_information(
    lm: LM, prompt: Prompt, inputs: Sequence[str], labels: Sequence[str]
) -> float:
    """Mutual information between the input and the label the prompt makes the LM predict.

    Method: Sorensen et al. 2022, "An information-theoretic approach to prompt engineering
    without ground truth labels".

    ``MI = H(mean_x P(.|x)) - mean_x H(P(.|x))`` in nats, with ``P(y|x)`` the LM's
    probability of each label after the rendered prompt, normalised over ``labels``. High MI
    means confident answers that vary with the input; a prompt that gives every input the
    same label distribution scores 0. Costs ``len(inputs) * len(labels)`` scorings.

    Args:
        lm: a backend that can score continuations.
        prompt: the candidate prompt.
        inputs: unlabeled inputs.
        labels: the finite label set (see :func:`label_set`).

    Returns:
        The mutual information, in ``[0, ln len(labels)]``.

    Raises:
        ValueError: no inputs, fewer than two labels, or repeated labels.
        NotImplementedError: the backend cannot score.
    """
    if not inputs:
        raise ValueError("no inputs")
    if len(labels) < 2:
        raise ValueError(f"need at least two labels, got {len(labels)}")
    if len(set(labels)) != len(labels):
        raise ValueError("labels must be distinct")
    dists = np.stack([label_distribution(lm, prompt, x, labels) for x in inputs])
    mi = _entropy(dists.mean(axis=0)) - float(np.mean([_entropy(p) for p in dists]))
    return max(0.0, mi)  # clip rounding noise below zero


def screen_by_mi(
    lm: LM,
    prompts: Sequence[Prompt],
    inputs: Sequence[str],
    labels: Sequence[str],
    keep: float = 0.5,
) -> tuple[list[int], list[float]]:
    """Keep the prompts with the highest mutual information, without any labels.

    Method: Sorensen et al. 2022, "An information-theoretic approach to prompt engineering
    without ground truth labels" (see also Yang et al. 2024, probability-based prompt
    selection).

    Args:
        lm: a backend that can score continuations.
        prompts: candidate prompts.
        inputs: unlabeled inputs.
        labels: the finite label set.
        keep: fraction of prompts to keep, in (0, 1]; at least one is always kept.

    Returns:
        ``(kept, mis)``: indices of the kept prompts, highest MI first (ties by index), and
        the MI of every prompt in input order.

    Raises:
        ValueError: no prompts, or ``keep`` outside (0, 1]; see also
            :func:`mutual_information`.
    """
    if not prompts:
        raise ValueError("no prompts to screen")
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    mis = [mutual_information(lm, p, inputs, labels) for p in prompts]
    n_keep = max(1, math.ceil(keep * len(prompts) - 1e-9))
    order = sorted(range(len(prompts)), key=lambda i: (-mis[i], i))
    return order[:n_keep], mis
