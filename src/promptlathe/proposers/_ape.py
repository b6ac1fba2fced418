"""APE forward generation (Zhou et al., 2023, "Large Language Models Are Human-Level Prompt
Engineers"): show the LM input-output pairs and ask which instruction produced them."""

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

APE_TEMPLATE = (
    "I gave a friend an instruction and {n_inputs}. The friend read the instruction and wrote "
    "an output for every one of the inputs. Here are the input-output pairs:\n\n"
    "{pairs}\n\n"
    "What was the instruction? Answer with the instruction only, in one sentence, "
    'starting with "The instruction was to".'
)


def ape_prompt(demos: Sequence[Example]) -> str:
    """The APE forward-generation message for these demos."""
    n_inputs = "1 input" if len(demos) == 1 else f"{len(demos)} inputs"
    return APE_TEMPLATE.format(n_inputs=n_inputs, pairs=format_pairs(demos))


class APEProposer(InstructionProposer):
    """Infers the instruction behind demonstrations, one sampled guess per LM call.

    Each of the ``n`` calls shows a different random subset of the demos and uses a different
    sampling seed, so the guesses differ even through a cache.

    Args:
        lm: the proposal model.
        demos_per_call: input-output pairs shown per call (all demos if fewer).
        temperature: sampling temperature of the proposals.
        max_tokens: length cap of each proposal.
    """

    def __init__(
        self,
        lm: LM,
        demos_per_call: int = 5,
        temperature: float = 0.9,
        max_tokens: int = 60,
    ) -> None:
        if demos_per_call < 1:
            raise ValueError(f"demos_per_call must be >= 1, got {demos_per_call}")
        self.lm = lm
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
        """Make exactly ``n`` LM calls (one batch) and return the cleaned guesses.

        Call ``i`` uses seed ``seed + i`` both to sample its demos and for generation.
        ``history`` is ignored: forward generation only looks at demonstrations.

        Raises:
            ValueError: if ``n`` is negative or ``demos`` is empty.
        """
        check_n(n)
        if not demos:
            raise ValueError("APEProposer needs at least one demonstration")
        prompts = [ape_prompt(sample_demos(demos, self.demos_per_call, seed + i)) for i in range(n)]
        return generate_instructions(
            self.lm, prompts, seed, temperature=self.temperature, max_tokens=self.max_tokens
        )
