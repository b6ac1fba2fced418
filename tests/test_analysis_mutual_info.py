"""Tests for label-free screening by mutual information (Sorensen et al. 2022)."""

from __future__ import annotations

import math

import pytest

from promptlathe.analysis import label_distribution, label_set, mutual_information, screen_by_mi
from promptlathe.lms import ScoreRequest, ScriptedLM
from promptlathe.prompts import Format, Prompt

LABELS = ["positive", "negative"]
INPUTS = ["good film", "bad film", "good food", "bad food"]
INFORMATIVE = Prompt("Classify the sentiment.")
WEAK = Prompt("Classify the sentiment, maybe.")
IGNORANT = Prompt("Say something.")


def scorer(req: ScoreRequest) -> float:
    """Informative prompts prefer the label matching the input; the ignorant one does not."""
    msgs = req.chat_messages
    instruction = msgs[0]["content"] if msgs[0]["role"] == "system" else ""
    query = msgs[-1]["content"]
    label = req.continuation
    if instruction == "Say something.":
        return -1.0 if label == "positive" else -2.0  # same for every input
    strength = 5.0 if instruction == "Classify the sentiment." else 1.0
    matches = ("good" in query) == (label == "positive")
    return 0.0 if matches else -strength


def binary_entropy(p: float) -> float:
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def test_mi_is_zero_when_the_label_distribution_ignores_the_input() -> None:
    lm = ScriptedLM(scorer=scorer)
    assert mutual_information(lm, IGNORANT, INPUTS, LABELS) == pytest.approx(0.0, abs=1e-12)
    assert len(lm.score_calls) == len(INPUTS) * len(LABELS)


def test_mi_of_an_informative_prompt_matches_hand_computation() -> None:
    lm = ScriptedLM(scorer=scorer)
    # Balanced inputs: the mean distribution is uniform (H = ln 2); each input puts
    # p = 1 / (1 + e^-5) on its label.
    p = 1 / (1 + math.exp(-5.0))
    expected = math.log(2) - binary_entropy(p)
    assert mutual_information(lm, INFORMATIVE, INPUTS, LABELS) == pytest.approx(expected)
    assert expected > 0.5


def test_label_distribution_is_a_softmax_over_labels() -> None:
    lm = ScriptedLM(scorer=scorer)
    dist = label_distribution(lm, IGNORANT, "anything", LABELS)
    assert dist.sum() == pytest.approx(1.0)
    assert dist[0] == pytest.approx(1 / (1 + math.exp(-1.0)))


def test_screen_by_mi_keeps_the_informative_prompts_best_first() -> None:
    lm = ScriptedLM(scorer=scorer)
    kept, mis = screen_by_mi(lm, [IGNORANT, WEAK, INFORMATIVE], INPUTS, LABELS, keep=0.5)
    assert kept == [2, 1]
    assert mis[0] == pytest.approx(0.0, abs=1e-12) and 0 < mis[1] < mis[2]
    kept, _ = screen_by_mi(lm, [IGNORANT, WEAK, INFORMATIVE], INPUTS, LABELS, keep=0.01)
    assert kept == [2]
    kept, _ = screen_by_mi(lm, [IGNORANT, WEAK, INFORMATIVE], INPUTS, LABELS, keep=1.0)
    assert kept == [2, 1, 0]


def test_completion_prompts_score_the_label_after_the_separator_space() -> None:
    lm = ScriptedLM(scorer=lambda r: -1.0)
    prompt = Prompt("Classify.", format=Format(mode="completion"))
    mutual_information(lm, prompt, ["good"], LABELS)
    assert {(r.prompt, r.continuation) for r in lm.score_calls} == {
        (prompt.render_text("good"), " positive"),
        (prompt.render_text("good"), " negative"),
    }


def test_label_set() -> None:
    assert label_set(["b", "a", "b", "c"]) == ["b", "a", "c"]
    assert label_set([str(i) for i in range(21)]) is None
    assert label_set([str(i) for i in range(21)], max_labels=25) is not None
    assert label_set(["only"] * 5) is None


def test_invalid_arguments_raise() -> None:
    lm = ScriptedLM(scorer=scorer)
    with pytest.raises(ValueError):
        mutual_information(lm, INFORMATIVE, [], LABELS)
    with pytest.raises(ValueError):
        mutual_information(lm, INFORMATIVE, INPUTS, ["x"])
    with pytest.raises(ValueError):
        mutual_information(lm, INFORMATIVE, INPUTS, ["x", "x"])
    with pytest.raises(ValueError):
        screen_by_mi(lm, [INFORMATIVE], INPUTS, LABELS, keep=0.0)
    with pytest.raises(ValueError):
        screen_by_mi(lm, [], INPUTS, LABELS)
