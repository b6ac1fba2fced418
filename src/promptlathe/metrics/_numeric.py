"""Numeric answers (GSM8K style: the last number in the output)."""

from __future__ import annotations

import math
import re

from promptlathe.metrics._base import BinaryMetric

# A minus sign only where it cannot be a hyphen or a range dash ("10-20" is 10 and 20);
# commas only as thousands separators ("1,234", but "3,4,5" is three numbers).
_NUMBER = re.compile(
    r"(?<![\w.])-?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\d,]*\d)|(?<![\w.])-?\.\d+"
)
_ANSWER_IS = re.compile(r"answer(?:\s+is|\s*:)\s*:?\s*(.*)", re.IGNORECASE | re.DOTALL)


def parse_number(text: str) -> float | None:
    """The number in ``text`` ("1,234", "$5", "-3.5"); the last one if there are several."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    raw = found[-1].replace(",", "").replace("$", "").replace(" ", "")
    try:
        return float(raw)
    except ValueError:
        return None


class Numeric(BinaryMetric):
    """Compares the final number of the output with the target number."""

    name = "numeric"

    def extract(self, output: str) -> str:
        m = list(_ANSWER_IS.finditer(output))
        region = m[-1].group(1) if m and _NUMBER.search(m[-1].group(1)) else output
        if m and region is not output:
            found = _NUMBER.findall(region)
            raw = found[0] if found else ""
        else:
            found = _NUMBER.findall(output)
            raw = found[-1] if found else ""
        value = parse_number(raw) if raw else None
        if value is None:
            return ""
        return str(int(value)) if value.is_integer() else repr(value)

    def is_correct(self, answer: str, target: str) -> bool:
        a, t = parse_number(answer), parse_number(target)
        if a is None or t is None:
            return False
        return math.isclose(a, t, rel_tol=1e-6, abs_tol=1e-9)
