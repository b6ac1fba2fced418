"""POSIX: how much a model's log-likelihood of its own answers moves across prompt variants."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from promptlathe.lms import LM
from promptlathe.prompts import Prompt
from promptlathe.requests import generation_request, score_request
from promptlathe.strategies import get_strategy


@dataclass(frozen=True)
class Posix:
    """Result of :func:`posix`.

    Attributes:
        value: POSIX averaged over inputs (0 = insensitive; nats per token).
        per_input: POSIX of each input, in input order.
        n_prompts: number of prompt variants ``N``.
        n_inputs: number of inputs.
    """

    value: float
    per_input: tuple[float, ...]
    n_prompts: int
    n_inputs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "per_input": list(self.per_input),
            "n_prompts": self.n_prompts,
            "n_inputs": self.n_inputs,
        }


def posix(lm: LM, prompts: Sequence[Prompt], inputs: Sequence[str], max_tokens: int = 32) -> Posix:
    """The prompt sensitivity index of ``lm`` over intent-preserving prompt variants.

    Method: Chatterjee et al. 2024, "POSIX: A Prompt Sensitivity Index For Large Language
    Models".

    For each input, every variant ``x_j`` (``prompts[j]`` applied to the input) gets its
    greedy response ``y_j``; then::

        POSIX = 1/(N(N-1)) sum_i sum_{j != i} |log P(y_j | x_i) - log P(y_j | x_j)| / L(y_j)

    with ``L(y)`` the response length in tokens (at least 1, so an empty response counts as
    one token). Costs ``N`` generations and ``N * N`` scorings per input.

    Args:
        lm: a backend that can generate and score.
        prompts: ``N >= 2`` variants of one prompt (e.g. the same prompt under different
            formats).
        inputs: the inputs to apply them to.
        max_tokens: generation length cap for the responses.

    Returns:
        A :class:`Posix`.

    Raises:
        ValueError: fewer than two prompts, no inputs, or ``max_tokens < 1``.
        NotImplementedError: the backend cannot score.
    """
    n = len(prompts)
    if n < 2:
        raise ValueError(f"POSIX needs at least two prompt variants, got {n}")
    if not inputs:
        raise ValueError("no inputs")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    per_input: list[float] = []
    for x in inputs:
        # What each variant's strategy sends for x (its first call): a kNN prompt shows the
        # exemplars chosen for x, not its whole pool; a reasoned one carries its trigger.
        sent = [get_strategy(p.strategy).calls(p, x)[0] for p in prompts]
        gens = lm.generate([generation_request(c.prompt, c.query, max_tokens) for c in sent])
        ys = [g.text for g in gens]
        reqs = [
            score_request(sent[i].prompt, sent[i].query, ys[j]) for i in range(n) for j in range(n)
        ]
        res = lm.score(reqs)
        lp = [[res[i * n + j].logprob for j in range(n)] for i in range(n)]
        lengths = [max(1, res[j * n + j].n_tokens) for j in range(n)]
        total = sum(
            abs(lp[i][j] - lp[j][j]) / lengths[j] for i in range(n) for j in range(n) if i != j
        )
        per_input.append(total / (n * (n - 1)))
    return Posix(
        value=sum(per_input) / len(per_input),
        per_input=tuple(per_input),
        n_prompts=n,
        n_inputs=len(inputs),
    )
