"""Tests for POSIX, the prompt sensitivity index (Chatterjee et al. 2024)."""

from __future__ import annotations

import json

import pytest

from promptlathe.analysis import posix
from promptlathe.lms import GenerationRequest, ScoreRequest, ScriptedLM
from promptlathe.prompts import Exemplar, Format, Prompt, StrategySpec

A = Prompt("Answer.", format=Format(input_label="Input"))
B = Prompt("Answer.", format=Format(input_label="Q"))
INPUTS = ["What is red?", "Name a bird."]


def fixed(_: GenerationRequest) -> str:
    return "yes answer"  # 2 tokens, 10 characters


def label_weight(req: ScoreRequest) -> float:
    """2 when the context uses the 'Q' label, else 1."""
    return 2.0 if req.chat_messages[-1]["content"].startswith("Q:") else 1.0


def test_posix_is_zero_when_logprobs_ignore_the_prompt() -> None:
    lm = ScriptedLM(fixed)  # default scorer: -len(continuation), independent of the context
    r = posix(lm, [A, B], INPUTS)
    assert r.value == 0.0 and r.per_input == (0.0, 0.0)
    assert (r.n_prompts, r.n_inputs) == (2, 2)


def test_posix_matches_hand_computation_when_logprobs_depend_on_the_prompt() -> None:
    lm = ScriptedLM(fixed, scorer=lambda r: -len(r.continuation) * label_weight(r))
    r = posix(lm, [A, B], INPUTS)
    # y_A = y_B = "yes answer": log P under A = -10, under B = -20, L = 2 tokens.
    # POSIX = 1/(2*1) * (|-20 - -10| / 2 + |-10 - -20| / 2) = 5 for every input.
    assert r.per_input == (pytest.approx(5.0), pytest.approx(5.0))
    assert r.value == pytest.approx(5.0)


def test_posix_uses_each_variants_own_greedy_response_and_scores_all_pairs() -> None:
    def respond(req: GenerationRequest) -> str:
        return "one" if req.chat_messages[-1]["content"].startswith("Input:") else "two words"

    scored: list[ScoreRequest] = []

    def scorer(req: ScoreRequest) -> float:
        scored.append(req)
        return -len(req.continuation) * label_weight(req)

    lm = ScriptedLM(respond, scorer=scorer)
    r = posix(lm, [A, B], ["x"], max_tokens=7)
    assert [(c.max_tokens, c.temperature) for c in lm.calls] == [(7, 0.0), (7, 0.0)]
    assert len(scored) == 4
    assert set(scored) == {
        ScoreRequest.chat(p.render_messages("x"), y) for p in (A, B) for y in ("one", "two words")
    }
    # y_A = "one" (1 token): |lp_B - lp_A| = |-6 + 3| = 3 -> 3 / 1
    # y_B = "two words" (2 tokens): |lp_A - lp_B| = |-9 + 18| = 9 -> 9 / 2
    assert r.value == pytest.approx((3 / 1 + 9 / 2) / 2)


def test_posix_grows_with_sensitivity() -> None:
    values = []
    for w in (1.0, 1.5, 3.0):
        lm = ScriptedLM(
            fixed,
            scorer=lambda r, w=w: -len(r.continuation) * (w if "Q:" in str(r.messages) else 1),
        )
        values.append(posix(lm, [A, B], INPUTS).value)
    assert values[0] == 0.0 and values[0] < values[1] < values[2]


def test_completion_mode_prompts_use_text_requests() -> None:
    seen: list[ScoreRequest] = []
    lm = ScriptedLM(fixed, scorer=lambda r: seen.append(r) or -1.0)
    c1 = Prompt("Answer.", format=Format(mode="completion"))
    c2 = Prompt("Answer.", format=Format(mode="completion", input_label="Q"))
    posix(lm, [c1, c2], ["x"])
    assert all(call.prompt is not None and call.messages is None for call in lm.calls)
    assert {s.prompt for s in seen} == {c1.render_text("x"), c2.render_text("x")}


def test_to_dict_and_invalid_arguments() -> None:
    r = posix(ScriptedLM(fixed), [A, B, A.with_(instruction="Reply.")], INPUTS[:1])
    assert json.loads(json.dumps(r.to_dict()))["n_prompts"] == 3
    with pytest.raises(ValueError):
        posix(ScriptedLM(fixed), [A], INPUTS)
    with pytest.raises(ValueError):
        posix(ScriptedLM(fixed), [A, B], [])


def test_a_knn_prompt_sends_the_exemplars_chosen_for_each_input_not_its_pool() -> None:
    """POSIX scores what the strategy sends: a kNN prompt whose pool would not fit the context
    (the report once stopped there) shows k exemplars per input."""
    pool = [Exemplar(f"item {i} word{i}", f"out {i}") for i in range(50)]
    knn = StrategySpec("knn_demos", 2)
    a = Prompt("Answer.", exemplars=pool, format=Format(input_label="Input"), strategy=knn)
    b = a.with_(format=Format(input_label="Q"))
    lm = ScriptedLM(fixed)
    posix(lm, [a, b], ["item 7 word7"])
    shown = [str(c.messages) for c in lm.calls]
    assert len(shown) == 2
    assert all(s.count("out ") == 2 for s in shown)  # 2 of the pool of 50
