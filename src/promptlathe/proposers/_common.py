"""Helpers shared by the proposers: seeded demo sampling, pair rendering, batched calls."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from promptlathe.lms import LM, GenerationRequest
from promptlathe.proposers._filter import clean_instruction
from promptlathe.tasks import Example


def check_n(n: int) -> None:
    """Raise ``ValueError`` for a negative number of proposals."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")


def sample_demos(demos: Sequence[Example], k: int, seed: int) -> list[Example]:
    """``min(k, len(demos))`` distinct demos in random order, drawn with ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(demos), size=min(k, len(demos)), replace=False)
    return [demos[int(i)] for i in idx]


def format_pairs(demos: Sequence[Example]) -> str:
    """``Input: ...\\nOutput: ...`` blocks separated by blank lines (``target`` as output)."""
    return "\n\n".join(f"Input: {d.input}\nOutput: {d.target}" for d in demos)


def generate_instructions(
    lm: LM,
    prompts: Sequence[str],
    seed: int,
    temperature: float,
    max_tokens: int,
) -> list[str]:
    """Send one user message per prompt in a single batch and clean the answers.

    Request ``i`` uses sampling seed ``seed + i``. Answers that clean to nothing are dropped.
    """
    requests = [
        GenerationRequest.chat(
            [_user(p)], max_tokens=max_tokens, temperature=temperature, seed=seed + i
        )
        for i, p in enumerate(prompts)
    ]
    if not requests:
        return []
    cleaned = (clean_instruction(g.text) for g in lm.generate(requests))
    return [c for c in cleaned if c]


def _user(content: str) -> dict[str, str]:
    return {"role": "user", "content": content}
