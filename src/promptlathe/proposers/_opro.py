"""OPRO (Yang et al., 2024, "Large Language Models as Optimizers"): show the LM past
instructions with their scores, worst to best, and ask for a better one."""

from __future__ import annotations

from collections.abc import Sequence

from promptlathe.lms import LM
from promptlathe.proposers._base import InstructionProposer, ScoredInstruction
from promptlathe.proposers._common import (
    check_n,
    format_pairs,
    generate_instructions,
    sample_demos,
)
from promptlathe.tasks import Example

OPRO_HEADER = (
    "Your task is to write an instruction for a language model. Below are some previous "
    "instructions with their scores. The score ranges from 0 to 100; higher is better."
)
OPRO_NO_HISTORY = "Your task is to write an instruction for a language model."
OPRO_DEMOS = "Below are some example inputs with the outputs the instruction should produce."
OPRO_REQUEST = (
    "Write a new instruction that is different from all the instructions above and would "
    "get a higher score than all of them. The instruction should be concise and apply to "
    "every input. Answer with the new instruction only, in one sentence."
)
OPRO_REQUEST_NO_HISTORY = (
    "Write an instruction that makes a language model produce these outputs from these "
    "inputs. The instruction should be concise and apply to every input. Answer with the "
    "instruction only, in one sentence."
)


def score_0_100(score: float) -> int:
    """A metric in ``[0, 1]`` as an integer percentage, clamped to ``0..100``."""
    return min(100, max(0, round(score * 100)))


def top_history(history: Sequence[ScoredInstruction], k: int) -> list[ScoredInstruction]:
    """The ``k`` best distinct instructions (best score per text), sorted ascending."""
    best: dict[str, ScoredInstruction] = {}
    for h in history:
        if h.instruction not in best or h.score > best[h.instruction].score:
            best[h.instruction] = h
    ranked = sorted(best.values(), key=lambda h: h.score)
    return ranked[-k:] if k > 0 else []


def opro_prompt(history: Sequence[ScoredInstruction], demos: Sequence[Example]) -> str:
    """The OPRO meta-prompt; ``history`` is shown in the given (ascending) order."""
    parts = [OPRO_HEADER if history else OPRO_NO_HISTORY]
    parts += [f"text: {h.instruction}\nscore: {score_0_100(h.score)}" for h in history]
    if demos:
        parts += [OPRO_DEMOS, format_pairs(demos)]
    parts.append(OPRO_REQUEST if history else OPRO_REQUEST_NO_HISTORY)
    return "\n\n".join(parts)


class OPROProposer(InstructionProposer):
    """Proposes instructions from a scored trajectory of earlier ones (OPRO meta-prompt).

    Args:
        lm: the proposal model.
        max_history: how many of the best past instructions the meta-prompt shows.
        demos_per_call: example input-output pairs shown per call (all demos if fewer).
        temperature: sampling temperature (OPRO samples at 1.0).
        max_tokens: length cap of each proposal.
    """

    def __init__(
        self,
        lm: LM,
        max_history: int = 10,
        demos_per_call: int = 3,
        temperature: float = 1.0,
        max_tokens: int = 60,
    ) -> None:
        if max_history < 0 or demos_per_call < 0:
            raise ValueError("max_history and demos_per_call must be >= 0")
        self.lm = lm
        self.max_history = max_history
        self.demos_per_call = demos_per_call
        self.temperature = temperature
        self.max_tokens = max_tokens

    def propose(
        self,
        demos: Sequence[Example],
        n: int,
        history: Sequence[ScoredInstruction] = (),
        seed: int = 0,
    ) -> list[str]:
        """Make exactly ``n`` LM calls (one batch) and return the cleaned proposals.

        Every call shows the same ``max_history`` best past instructions (ascending by score,
        as integers 0-100) and its own random ``demos_per_call`` demos, drawn with
        ``default_rng(seed + i)``; call ``i`` also samples with seed ``seed + i``.

        Raises:
            ValueError: if ``n`` is negative, or both ``demos`` and ``history`` are empty.
        """
        check_n(n)
        if not demos and not history:
            raise ValueError("OPROProposer needs demonstrations or scored history")
        shown = top_history(history, self.max_history)
        prompts = [
            opro_prompt(shown, sample_demos(demos, self.demos_per_call, seed + i)) for i in range(n)
        ]
        return generate_instructions(
            self.lm, prompts, seed, temperature=self.temperature, max_tokens=self.max_tokens
        )
