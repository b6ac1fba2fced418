"""Trivial baselines: is the winner better than always giving one answer?

On a yes/no task a prompt that answers "No" to everything scores the share of "No" — which
can look like a win. The winner is compared with the majority label of the training data,
with always giving its own most frequent answer, and with the best constant label on the
evaluated examples; for classification, balanced accuracy (mean recall per label) is
reported next to accuracy, since a constant answer has a balanced accuracy of 1 / #labels.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from promptlathe.metrics._base import Metric
from promptlathe.metrics._labels import label_set_of


@dataclass(frozen=True)
class Baselines:
    """The winner against constant answers, on the same examples.

    Attributes:
        winner_accuracy: the winner's mean score.
        majority_label: the most common training target (classification tasks), else None.
        majority_accuracy: accuracy of always answering ``majority_label``.
        best_constant: the constant answer that scores best here (a label, or the winner's
            most frequent answer).
        best_constant_accuracy: its accuracy.
        winner_top_answer: the winner's most frequent answer and ``winner_top_share`` the
            share of examples it gives it (1.0: the winner is a constant).
        balanced_accuracy: the winner's mean recall over labels (classification), else None.
        chance_balanced: the balanced accuracy of any constant answer (1 / #labels).
        hollow: the winner is no better than the best constant answer.
        verdict: one sentence saying so, or by how much it beats it.
    """

    winner_accuracy: float
    majority_label: str | None
    majority_accuracy: float | None
    best_constant: str
    best_constant_accuracy: float
    winner_top_answer: str
    winner_top_share: float
    balanced_accuracy: float | None
    chance_balanced: float | None
    hollow: bool
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def balanced_accuracy(scores: Sequence[float], labels: Sequence[str]) -> float:
    """Mean over labels of the mean score of the examples with that (first) target."""
    by: dict[str, list[float]] = {}
    for s, lab in zip(scores, labels, strict=True):
        by.setdefault(lab.strip(), []).append(s)
    return sum(sum(v) / len(v) for v in by.values()) / len(by)


def trivial_baselines(
    metric: Metric,
    train_targets: Sequence[str],
    targets: Sequence[Sequence[str]],
    answers: Sequence[str],
    scores: Sequence[float],
) -> Baselines | None:
    """Compare a prompt's results with constant answers.

    Args:
        metric: scores an answer against targets (``metric.score``).
        train_targets: the first target of every training example (for the majority label).
        targets: each evaluated example's acceptable targets.
        answers: the prompt's extracted answer on each example.
        scores: its score on each example.

    Returns:
        :class:`Baselines`, or ``None`` when nothing was evaluated.
    """
    if not scores:
        return None
    n = len(scores)

    def accuracy(answer: str) -> float:
        return sum(metric.score(answer, list(t)) for t in targets) / n

    winner = sum(scores) / n
    labels = label_set_of([t.strip() for t in train_targets])
    majority = Counter(t.strip() for t in train_targets).most_common(1)[0][0] if labels else None
    top, top_count = Counter(a.strip() for a in answers).most_common(1)[0]
    candidates = {top, *(labels or [])}
    const_acc = {c: accuracy(c) for c in sorted(candidates)}
    best = max(const_acc, key=lambda c: (const_acc[c], c == top))
    first_targets = [t[0] for t in targets]
    classification = labels is not None or label_set_of(first_targets) is not None
    balanced = balanced_accuracy(scores, first_targets) if classification else None
    n_labels = len(set(t.strip() for t in first_targets))
    chance = 1.0 / n_labels if classification and n_labels else None
    hollow = winner <= const_acc[best] + 1e-9
    if hollow:
        verdict = (
            f"The winner is no better than always answering {best!r} "
            f"({const_acc[best]:.3f} on these {n} examples)"
            + (", which is what it does" if top_count == n and best == top else "")
            + ": its accuracy says nothing about the task."
        )
    else:
        verdict = (
            f"The winner beats the best constant answer ({best!r}, {const_acc[best]:.3f}) by "
            f"{winner - const_acc[best]:+.3f}."
        )
    return Baselines(
        winner_accuracy=winner,
        majority_label=majority,
        majority_accuracy=const_acc.get(majority) if majority is not None else None,
        best_constant=best,
        best_constant_accuracy=const_acc[best],
        winner_top_answer=top,
        winner_top_share=top_count / n,
        balanced_accuracy=balanced,
        chance_balanced=chance,
        hollow=hollow,
        verdict=verdict,
    )
