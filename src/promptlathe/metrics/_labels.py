"""Answers for classification tasks: an output that states exactly one label counts as it."""

from __future__ import annotations

from collections.abc import Sequence

from promptlathe.metrics._base import Metric
from promptlathe.metrics._extract import extract_answer, normalize, tokens

MAX_LABELS = 20


def label_set_of(targets: Sequence[str]) -> list[str] | None:
    """The labels of a classification task: 2 to ``MAX_LABELS`` distinct targets, each seen
    on average at least twice (so a small open-ended task is not mistaken for one)."""
    labels = list(dict.fromkeys(t.strip() for t in targets))
    if 2 <= len(labels) <= MAX_LABELS and len(targets) >= 2 * len(labels):
        return labels
    return None


class LabelMetric(Metric):
    """Normalized comparison, after reading a chatty output as the one label it states.

    Small chat models answer a yes/no question with a sentence ("No, the statement ... is
    not ..."); taken whole, every such output scores 0 and the search is blind. The output
    counts as label ``X`` when, in this order: the usual extraction gives ``X``; the first
    line begins with ``X`` ("No, ...", "Positive."); or ``X`` is the only label the first line
    mentions as whole words. Otherwise the usual extraction is scored as it is.

    Args:
        labels: the task's label set (e.g. from :func:`label_set_of`).
    """

    name = "label"

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        # Longest first, so "not entailment" wins over "entailment".
        self._tokens = sorted(
            ((tuple(tokens(lab)), lab) for lab in self.labels if tokens(lab)),
            key=lambda tl: -len(tl[0]),
        )
        self._norm = {normalize(lab): lab for lab in self.labels}

    def extract(self, output: str) -> str:
        answer = extract_answer(output)
        if normalize(answer) in self._norm:
            return self._norm[normalize(answer)]
        lines = [ln for ln in output.strip().splitlines() if ln.strip()]
        first = tokens(lines[0]) if lines else []
        for toks, lab in self._tokens:
            if tuple(first[: len(toks)]) == toks:
                return lab
        mentioned = {
            lab
            for toks, lab in self._tokens
            if any(tuple(first[i : i + len(toks)]) == toks for i in range(len(first)))
        }
        # A label inside a longer one ("entailment" in "not entailment") is not a mention.
        mentioned = {
            m
            for m in mentioned
            if not any(m != o and f" {normalize(m)} " in f" {normalize(o)} " for o in mentioned)
        }
        if len(mentioned) == 1:
            return mentioned.pop()
        return answer

    def match(self, answer: str, target: str) -> float:
        return 1.0 if normalize(answer) == normalize(target) else 0.0
