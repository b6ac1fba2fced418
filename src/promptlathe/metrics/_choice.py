"""Multiple-choice letters (BBH style "(A)")."""

from __future__ import annotations

import re

from promptlathe.metrics._base import BinaryMetric
from promptlathe.metrics._extract import normalize

_PAREN = re.compile(r"\(([A-Z])\)")
# "answer is (b)", "Answer: B"; a bare letter must be upper-case ("the answer is a dog" is no A).
_ANSWER_IS = re.compile(r"(?i:answer(?:\s+is|\s*:))\s*:?\s*(?:\(([A-Za-z])\)|([A-Z])(?![A-Za-z]))")
_BARE = re.compile(r"^\(?([A-Z])(?:\)|\.|:|$)")
CHOICE_TARGET = re.compile(r"^\([A-Z]\)$")


class Choice(BinaryMetric):
    """Extracts an option letter and compares it with the target's letter.

    Targets that are not letters (e.g. "Yes") are compared after normalisation.
    """

    name = "choice"

    def extract(self, output: str) -> str:
        text = output.strip()
        m = list(_ANSWER_IS.finditer(text))
        if m:
            return f"({(m[-1].group(1) or m[-1].group(2)).upper()})"
        m2 = _BARE.match(text)
        if m2:
            return f"({m2.group(1)})"
        parens = _PAREN.findall(text)
        if parens:
            return f"({parens[-1]})"
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return lines[0].strip() if lines else ""

    def is_correct(self, answer: str, target: str) -> bool:
        return normalize(answer) == normalize(target)
