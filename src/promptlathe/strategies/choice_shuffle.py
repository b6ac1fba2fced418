"""``choice_shuffle`` (Medprompt's choice-shuffle ensemble): for a multiple-choice input, the
model answers ``k`` copies whose options are in different orders; each answer's letter is
mapped back to the original options and the majority wins. It cancels a small model's bias
for a position. Copy ``i`` rotates the options by ``i`` places (copy 0 keeps the original
order; with ``k`` = the number of options each option sits once in each place); copies past
the number of options are permuted at random, reproducibly (seeded by the input and the
copy's index). Answers are direct (one short call per copy)."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

from promptlathe.prompts import Prompt
from promptlathe.strategies._protocol import (
    AnswerOf,
    Call,
    Strategy,
    TaskView,
    majority,
    register,
)

_OPTION = re.compile(r"^(\s*)\(([A-Z])\)(\s*)(.*)$")
_LETTER = re.compile(r"^\(([A-Z])\)$")
MIN_SHARE = 0.9


def parse_options(text: str) -> list[tuple[int, str]]:
    """``(line index, option text)`` of each option line "(A) ...", "(B) ...", in order;
    empty unless there are at least two, lettered A, B, C, ... consecutively."""
    found = []
    for i, line in enumerate(text.splitlines()):
        m = _OPTION.match(line)
        if m:
            found.append((i, m.group(2), m.group(4)))
    letters = [f[1] for f in found]
    if len(found) < 2 or letters != [chr(ord("A") + j) for j in range(len(found))]:
        return []
    return [(i, body) for i, _, body in found]


def shuffled(text: str, sample: int) -> tuple[str, dict[str, str]]:
    """``text`` with its options in the order of copy ``sample`` (0: unchanged), and the
    map from each letter as shown to the letter of the same option in ``text``."""
    options = parse_options(text)
    n = len(options)
    if sample == 0 or n < 2:
        return text, {f"({chr(65 + j)})": f"({chr(65 + j)})" for j in range(n)}
    if sample < n:
        perm = [(j + sample) % n for j in range(n)]
    else:
        rng = np.random.default_rng([sample, zlib.crc32(text.encode())])
        perm = [int(x) for x in rng.permutation(n)]
    lines = text.splitlines()
    for j, (line_no, _) in enumerate(options):
        m = _OPTION.match(lines[line_no])
        assert m is not None
        lines[line_no] = f"{m.group(1)}({chr(65 + j)}){m.group(3)}{options[perm[j]][1]}"
    relabel = {f"({chr(65 + j)})": f"({chr(65 + perm[j])})" for j in range(n)}
    return "\n".join(lines), relabel


@register
class ChoiceShuffle(Strategy):
    name = "choice_shuffle"
    summary = "k orders of the options, answers mapped back, majority vote (multiple choice)"
    ks = (3, 5)

    def calls_per_input(self) -> int:
        return self.k

    def applies(self, task: TaskView) -> str | None:
        n = max(1, len(task.inputs))
        with_options = sum(bool(parse_options(t)) for t in task.inputs)
        letters = sum(bool(_LETTER.match(t.strip())) for t in task.targets)
        if with_options < MIN_SHARE * n or letters < MIN_SHARE * max(1, len(task.targets)):
            return "not a multiple-choice task (options lettered (A), (B), ... with letter targets)"
        return None

    def calls(self, prompt: Prompt, query: str) -> list[Call]:
        out = []
        for i in range(self.k):
            text, relabel = shuffled(query, i)
            out.append(Call(prompt, text, sample=i, relabel=relabel))
        return out

    def combine(self, calls: Sequence[Call], outputs: Sequence[str], answer_of: AnswerOf) -> str:
        """The majority of the answers in the original options' letters."""
        answers = []
        for call, out in zip(calls, outputs, strict=True):
            a = answer_of(out)
            answers.append((call.relabel or {}).get(a.upper(), a))
        return answers[majority(answers)]
