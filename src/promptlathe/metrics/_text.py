"""String-matching metrics: exact, normalized exact, contains, token F1, set equality, regex."""

from __future__ import annotations

import re
from collections import Counter

from promptlathe.metrics._base import BinaryMetric, Metric
from promptlathe.metrics._extract import normalize, tokens


class Exact(BinaryMetric):
    """The answer equals a target exactly (surrounding whitespace ignored)."""

    name = "exact"

    def is_correct(self, answer: str, target: str) -> bool:
        return answer.strip() == target.strip()


class NormalizedExact(BinaryMetric):
    """Equal after lower-casing, collapsing whitespace and dropping edge punctuation."""

    name = "normalized"

    def is_correct(self, answer: str, target: str) -> bool:
        return normalize(answer) == normalize(target)


class Contains(BinaryMetric):
    """The target occurs as whole words in the answer (after normalisation)."""

    name = "contains"

    def extract(self, output: str) -> str:
        return output.strip()

    def is_correct(self, answer: str, target: str) -> bool:
        t = " ".join(tokens(target))
        return bool(t) and f" {t} " in f" {' '.join(tokens(answer))} "


class TokenF1(Metric):
    """Token-level F1 between answer and target (max over targets)."""

    name = "f1"

    def match(self, answer: str, target: str) -> float:
        a, t = tokens(answer), tokens(target)
        if not a or not t:
            return float(a == t)
        common = sum((Counter(a) & Counter(t)).values())
        if common == 0:
            return 0.0
        precision, recall = common / len(a), common / len(t)
        return 2 * precision * recall / (precision + recall)


class SetEqual(BinaryMetric):
    """The sets of words (comma- or space-separated) are equal."""

    name = "set"

    def is_correct(self, answer: str, target: str) -> bool:
        return set(tokens(answer)) == set(tokens(target))


class RegexMatch(BinaryMetric):
    """Each target is a regular expression the answer must match in full."""

    name = "regex"

    def is_correct(self, answer: str, target: str) -> bool:
        try:
            return re.fullmatch(target, answer.strip(), flags=re.IGNORECASE | re.DOTALL) is not None
        except re.error:
            return False
