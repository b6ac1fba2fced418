"""The proposer conformance suite: what every instruction proposer promises.

Every test takes a ``make_proposer`` fixture: a function that, given an LM, returns an
:class:`~promptlathe.proposers.InstructionProposer`. The suite drives it with a scripted LM:
at most ``n`` proposals, each a non-empty string; every call goes through the LM it was given
(so the budget and the cache see it); the same seed asks the same requests; an LM that
answers nothing useful gives no proposal rather than an exception. Use it as
``from promptlathe.testing.proposers import *`` with your own ``make_proposer`` fixture.
"""

from __future__ import annotations

from collections.abc import Callable

from promptlathe.lms import GenerationRequest, ScriptedLM, request_key
from promptlathe.proposers import InstructionProposer, ScoredInstruction
from promptlathe.tasks import Example

__all__ = [
    "DEMOS",
    "test_at_most_n_proposals_each_a_non_empty_string",
    "test_an_lm_that_answers_nothing_gives_no_proposal",
    "test_every_call_goes_through_the_given_lm_and_a_seed_repeats_them",
]

MakeProposer = Callable[[ScriptedLM], InstructionProposer]
DEMOS = [Example(id=str(i), input=f"word {i}", targets=(f"WORD {i}",)) for i in range(12)]
HISTORY = [ScoredInstruction("Upper-case the input.", 0.6), ScoredInstruction("Repeat.", 0.1)]


def _writer(req: GenerationRequest) -> str:
    return f"Write the input in capital letters, variant {req.seed}."


def test_at_most_n_proposals_each_a_non_empty_string(make_proposer: MakeProposer) -> None:
    proposer = make_proposer(ScriptedLM(_writer))
    for n in (1, 3):
        out = proposer.propose(DEMOS, n, history=HISTORY, seed=1)
        assert len(out) <= n
        assert all(isinstance(p, str) and p.strip() for p in out)


def test_every_call_goes_through_the_given_lm_and_a_seed_repeats_them(
    make_proposer: MakeProposer,
) -> None:
    keys = []
    for _ in range(2):
        lm = ScriptedLM(_writer)
        make_proposer(lm).propose(DEMOS, 2, history=HISTORY, seed=5)
        assert lm.calls, "the proposer made no call through its LM"
        keys.append([request_key("s", "generate", r.payload()) for r in lm.calls])
    assert keys[0] == keys[1]


def test_an_lm_that_answers_nothing_gives_no_proposal(make_proposer: MakeProposer) -> None:
    for answer in ("", "   ", "```\n```"):

        def silent(req: GenerationRequest, a: str = answer) -> str:
            return a

        out = make_proposer(ScriptedLM(silent)).propose(DEMOS, 2, history=HISTORY, seed=0)
        assert all(p.strip() for p in out)
