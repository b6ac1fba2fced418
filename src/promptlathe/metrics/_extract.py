"""Answer extraction and normalisation shared by the metrics."""

from __future__ import annotations

import re
import string

_ANSWER_IS = re.compile(
    r"the\s+(?:final\s+)?answer\s+is\s*:?|final\s+answer\s*:|answer\s*:", re.IGNORECASE
)
_EDGE_MARKS = "*`\"'“”‘’«» \t"
# 'The negation of the sentence "X" is "Y."' -> Y: a quoted answer that ends the line.
_QUOTED_TAIL = re.compile(r"\bis\s*:?\s*[\"“]([^\"“”]+)[\"”]\s*\.?\s*$")
_QUERY_LABEL = re.compile(r"^\s*(?:q|input|question|query)\s*[:=]", re.IGNORECASE)
_LABEL_PREFIX = re.compile(r"^\s*(?:output|answer|a|response|result)\s*[:=]\s*", re.IGNORECASE)
_PUNCT_EDGE = string.punctuation + "“”‘’«»"
# Chat models' preambles: "Sure! Here is the negation:", "Certainly. The answer:" ...
_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|certainly|of course|okay|ok|absolutely)\b[^\n:]*?[.!,]?\s*)?"
    r"(?:here(?:'s|’s| is| are)\b[^\n:]*:|(?:sure|certainly|of course)\b[^\n:]*:)\s*",
    re.IGNORECASE,
)


def extract_answer(output: str) -> str:
    """Pull the answer out of a model output.

    Takes the text after the last "The answer is" / "Answer:" if present, otherwise the first
    non-empty line after a chat preamble ("Sure! Here is the negation:"), or the quoted
    answer that ends it ('The negation of "X" is "Y."'); drops a leading field label
    ("Output:") and surrounding quotes/markdown.
    """
    text = output.strip()
    for m in reversed(list(_ANSWER_IS.finditer(text))):
        rest = text[m.end() :].lstrip(" \t\r\n:")
        # The answer ends at the line end or where the next sentence begins.
        first = re.split(r"\n|(?<=[.!?])\s+(?=[A-Z])", rest, maxsplit=1)[0]
        first = re.sub(r"\.\s*$", "", first.strip())
        if first.strip(_PUNCT_EDGE + " "):
            text = first
            break
    else:
        pre = _PREAMBLE.match(text)
        if pre and text[pre.end() :].strip():
            text = text[pre.end() :]
        lines = [ln for ln in text.splitlines() if ln.strip()]
        # A first line that echoes the query ("Q: ...", "Input: ...") followed by the answer
        # line ("A: ...", "Output: ..."): the answer line is the answer.
        if len(lines) > 1 and _QUERY_LABEL.match(lines[0]):
            answer_line = next((ln for ln in lines[1:] if _LABEL_PREFIX.match(ln)), None)
            if answer_line is not None:
                lines = [answer_line]
        # A label alone on its line ("Output:") labels the next line.
        if len(lines) > 1 and not _LABEL_PREFIX.sub("", lines[0]).strip():
            lines = lines[1:]
        text = lines[0] if lines else ""
        quoted = _QUOTED_TAIL.search(text)
        if quoted:
            text = quoted.group(1)
    text = _LABEL_PREFIX.sub("", text)
    return text.strip(_EDGE_MARKS)


def normalize(text: str) -> str:
    """Lower-case, collapse whitespace, strip surrounding quotes and trailing punctuation.

    Text that is nothing but punctuation (a Dyck word's closing brackets) keeps it: stripped,
    every such answer would equal every such target.
    """
    t = " ".join(text.lower().split())
    return t.strip(_PUNCT_EDGE + " ").strip() or t


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens with punctuation removed (punctuation-only text keeps its
    punctuation tokens, as :func:`normalize` does)."""
    t = text.lower().translate(str.maketrans(string.punctuation, " " * len(string.punctuation)))
    return t.split() or text.lower().split()
