"""The final answer of a reasoned output: the span a metric then extracts its answer from.

A chain of thought mentions many candidate answers before it settles on one ("... is not (0,
0), so we are not where we started. So the answer is No."). Its answer is what follows the
last "the answer is" / "Answer:", else the last ``\\boxed{...}``, else the last line. A chain
cut at the token limit has no last line to trust ("9. **Fifth step**: Now you take 4"): its
answer is a marked or boxed one, or none.
LaTeX wrappers small models like to write (``\\(\\boxed{\\text{Yes}}\\)``) are dropped.
"""

from __future__ import annotations

import re

_MARKER = re.compile(r"\banswer\s*(?:is|would\s+be|will\s+be|:|=)\s*:?", re.IGNORECASE)
_BOXED = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_TEXT = re.compile(r"\\(?:text|textbf|mathrm)\s*\{([^{}]*)\}")
_MATH_DELIMS = re.compile(r"\\[()\[\]]|\$\$?")


def _unlatex(text: str) -> str:
    text = _BOXED.sub(r"\1", text)
    text = _TEXT.sub(r"\1", text)
    return _MATH_DELIMS.sub("", text)


def final_answer(output: str, *, cut: bool = False) -> str:
    """The span of a reasoned ``output`` that states its final answer ("" when the output
    stops before giving one, e.g. cut off at the token limit).

    Args:
        output: the model's reasoning and answer.
        cut: the output stopped at the token limit, so its last line is where the model
            was cut, not an answer.
    """
    text = output.strip()
    if not text:
        return ""
    boxed = _BOXED.findall(text)
    for m in reversed(list(_MARKER.finditer(text))):
        rest = text[m.end() :]
        if not rest.strip():
            return ""  # cut off right where the answer was to come
        line = next(ln for ln in rest.splitlines() if ln.strip())
        span = _unlatex(line).strip().strip("*").strip()
        span = _first_sentence(span)
        if span.strip(" .,:;!\"'*"):
            return _trim(span)
    if boxed:
        return _trim(_unlatex(boxed[-1]))
    if cut:
        return ""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return _trim(_unlatex(lines[-1])) if lines else ""


_SENTENCE_END = re.compile(r"(\S*)[.!?]\s+(?=[A-Z])")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "vs", "mt", "ft"}


def _first_sentence(span: str) -> str:
    """ "No. The instructions show ..." -> "No": the answer ends where a sentence begins, but
    not after a title or an initial ("Mr. Smith", "J. R. R. Tolkien")."""
    for m in _SENTENCE_END.finditer(span):
        word = m.group(1).lower().strip("(\"'")
        if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            continue
        return span[: m.start() + len(m.group(1))]
    return span


def _trim(span: str) -> str:
    return re.sub(r"[.\s]+$", "", span.strip())
