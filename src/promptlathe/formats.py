"""A small grammar of meaning-preserving prompt formats.

Formats vary only the surface (field labels, separators, casing, chat layout), never what is
asked, so the same instruction and exemplars mean the same thing under each. The optimizer
searches this space; format-sensitivity analyses sample it.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

from promptlathe.prompts import Format, Mode

LABEL_PAIRS: tuple[tuple[str, str], ...] = (
    ("Input", "Output"),
    ("Question", "Answer"),
    ("Q", "A"),
    ("Text", "Answer"),
    ("INPUT", "OUTPUT"),
    ("input", "output"),
)
SEPARATORS: tuple[str, ...] = (": ", ":\n", " = ")
MODES: tuple[Mode, ...] = ("chat", "chat_single")


def format_space(seed: Format | None = None, modes: tuple[Mode, ...] = MODES) -> list[Format]:
    """Every format of the grammar, with ``seed`` (the user's format) first.

    The list is deterministic, so an index into it is a stable search coordinate.
    Completion mode is kept out unless the seed uses it (a chat model's default is chat).
    """
    seed = seed or Format()
    if seed.mode == "completion":
        modes = ("completion",)
    out = [seed]
    for (inp, outp), sep, mode in itertools.product(LABEL_PAIRS, SEPARATORS, modes):
        f = replace(seed, input_label=inp, output_label=outp, separator=sep, mode=mode)
        if f not in out:
            out.append(f)
    return out
