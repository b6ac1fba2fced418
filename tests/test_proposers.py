"""Unit tests for promptlathe.proposers: APE, OPRO, cleaning, filters, likelihood screen."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from promptlathe.lms import GenerationRequest, ScoreRequest, ScriptedLM
from promptlathe.prompts import Format
from promptlathe.proposers import (
    APEProposer,
    InstructionProposer,
    OPROProposer,
    ScoredInstruction,
    clean_instruction,
    filter_instructions,
    likelihood_screen,
)
from promptlathe.tasks import Example, load_examples

DEMOS = tuple(Example(input=f"word{i}", targets=(f"WORD{i}",), id=str(i)) for i in range(12))


def user_text(req: GenerationRequest) -> str:
    msgs = req.chat_messages
    assert [m["role"] for m in msgs] == ["user"]
    return msgs[0]["content"]


def shown_inputs(req: GenerationRequest) -> list[str]:
    return re.findall(r"^Input: (.*)$", user_text(req), flags=re.M)


def answer_with_seed(req: GenerationRequest) -> str:
    return f'The instruction was to "uppercase word number {req.seed}".'


# ---- APE -----------------------------------------------------------------------------------


def test_ape_is_an_instruction_proposer() -> None:
    assert isinstance(APEProposer(ScriptedLM()), InstructionProposer)


def test_ape_makes_exactly_n_calls_in_one_batch() -> None:
    lm = ScriptedLM(answer_with_seed)
    batches: list[int] = []
    generate = lm.generate

    def counting(requests: Sequence[GenerationRequest]):
        batches.append(len(requests))
        return generate(requests)

    lm.generate = counting  # type: ignore[method-assign]
    out = APEProposer(lm).propose(DEMOS, n=4, seed=7)
    assert batches == [4]
    assert len(lm.calls) == 4
    assert out == [f"Uppercase word number {s}." for s in (7, 8, 9, 10)]


def test_ape_zero_proposals_makes_no_call() -> None:
    lm = ScriptedLM(answer_with_seed)
    assert APEProposer(lm).propose(DEMOS, n=0) == []
    assert lm.calls == []


def test_ape_calls_differ_in_seed_and_demos() -> None:
    lm = ScriptedLM(answer_with_seed)
    APEProposer(lm, demos_per_call=3).propose(DEMOS, n=5, seed=100)
    assert [r.seed for r in lm.calls] == [100, 101, 102, 103, 104]
    subsets = [tuple(shown_inputs(r)) for r in lm.calls]
    assert all(len(s) == 3 and len(set(s)) == 3 for s in subsets)
    assert len(set(subsets)) == 5


def test_ape_is_deterministic_given_seed() -> None:
    a, b, c = ScriptedLM(answer_with_seed), ScriptedLM(answer_with_seed), ScriptedLM()
    APEProposer(a).propose(DEMOS, n=3, seed=1)
    APEProposer(b).propose(DEMOS, n=3, seed=1)
    APEProposer(c).propose(DEMOS, n=3, seed=2)
    assert a.calls == b.calls
    assert [user_text(r) for r in a.calls] != [user_text(r) for r in c.calls]


def test_ape_prompt_follows_forward_template_and_contains_demos() -> None:
    lm = ScriptedLM(answer_with_seed)
    APEProposer(lm, demos_per_call=2, temperature=0.7, max_tokens=33).propose(DEMOS, n=1)
    (req,) = lm.calls
    text = user_text(req)
    assert text.startswith("I gave a friend an instruction and 2 inputs.")
    assert "Here are the input-output pairs:" in text
    assert text.rstrip().endswith('starting with "The instruction was to".')
    for shown in shown_inputs(req):
        demo = next(d for d in DEMOS if d.input == shown)
        assert f"Input: {demo.input}\nOutput: {demo.target}" in text
    assert (req.temperature, req.max_tokens) == (0.7, 33)


def test_ape_uses_all_demos_when_fewer_than_demos_per_call() -> None:
    lm = ScriptedLM(answer_with_seed)
    APEProposer(lm, demos_per_call=5).propose(DEMOS[:2], n=2)
    for req in lm.calls:
        assert sorted(shown_inputs(req)) == ["word0", "word1"]
        assert "and 2 inputs" in user_text(req)


def test_ape_drops_answers_that_clean_to_nothing() -> None:
    lm = ScriptedLM(lambda r: "" if r.seed % 2 else "The instruction was to sort the list.")
    out = APEProposer(lm).propose(DEMOS, n=4, seed=0)
    assert len(lm.calls) == 4
    assert out == ["Sort the list.", "Sort the list."]


def test_ape_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="demonstration"):
        APEProposer(ScriptedLM()).propose([], n=2)
    with pytest.raises(ValueError, match="n must be"):
        APEProposer(ScriptedLM()).propose(DEMOS, n=-1)
    with pytest.raises(ValueError, match="demos_per_call"):
        APEProposer(ScriptedLM(), demos_per_call=0)


# ---- OPRO ----------------------------------------------------------------------------------

HISTORY = tuple(
    ScoredInstruction(f"Instruction number {i}.", score)
    for i, score in enumerate([0.5, 0.1, 0.93, 0.734, 0.2, 0.6, 0.05, 0.8, 0.4, 0.3, 0.7, 0.9])
)


def history_lines(req: GenerationRequest) -> list[tuple[str, int]]:
    pairs = re.findall(r"^text: (.*)\nscore: (\d+)$", user_text(req), flags=re.M)
    return [(t, int(s)) for t, s in pairs]


def test_opro_shows_top_history_ascending_with_integer_scores() -> None:
    lm = ScriptedLM(lambda r: "Uppercase the word.")
    OPROProposer(lm, max_history=4).propose(DEMOS, n=1, history=HISTORY)
    assert history_lines(lm.calls[0]) == [
        ("Instruction number 3.", 73),
        ("Instruction number 7.", 80),
        ("Instruction number 11.", 90),
        ("Instruction number 2.", 93),
    ]


def test_opro_default_max_history_is_ten() -> None:
    lm = ScriptedLM(lambda r: "Uppercase the word.")
    OPROProposer(lm).propose(DEMOS, n=1, history=HISTORY)
    lines = history_lines(lm.calls[0])
    assert len(lines) == 10
    assert [s for _, s in lines] == sorted(s for _, s in lines)
    assert ("Instruction number 6.", 5) not in lines  # the two worst are left out
    assert ("Instruction number 1.", 10) not in lines


def test_opro_keeps_best_score_of_repeated_instruction() -> None:
    lm = ScriptedLM(lambda r: "Uppercase the word.")
    history = [ScoredInstruction("Same text.", 0.2), ScoredInstruction("Same text.", 0.6)]
    OPROProposer(lm).propose(DEMOS, n=1, history=history)
    assert history_lines(lm.calls[0]) == [("Same text.", 60)]


def test_opro_prompt_has_demos_after_history_and_asks_for_better() -> None:
    lm = ScriptedLM(lambda r: "Uppercase the word.")
    OPROProposer(lm).propose(DEMOS, n=1, history=HISTORY[:2])
    text = user_text(lm.calls[0])
    inputs = shown_inputs(lm.calls[0])
    assert len(inputs) == 3
    assert text.index("score:") < text.index("Input:")
    for shown in inputs:
        assert f"Input: {shown}\nOutput: {shown.upper()}" in text
    assert "different from all the instructions above" in text
    assert "higher score" in text


def test_opro_makes_n_seeded_calls_with_defaults() -> None:
    lm = ScriptedLM(lambda r: f"<INS>Uppercase the word, variant {r.seed}.</INS>")
    out = OPROProposer(lm).propose(DEMOS, n=3, history=HISTORY, seed=20)
    assert len(lm.calls) == 3
    assert [r.seed for r in lm.calls] == [20, 21, 22]
    assert all(r.temperature == 1.0 for r in lm.calls)
    assert len({tuple(shown_inputs(r)) for r in lm.calls}) == 3
    assert out == [f"Uppercase the word, variant {s}." for s in (20, 21, 22)]


def test_opro_without_history_or_without_demos() -> None:
    lm = ScriptedLM(lambda r: "Uppercase the word.")
    OPROProposer(lm).propose(DEMOS, n=1)
    assert history_lines(lm.calls[0]) == []
    assert len(shown_inputs(lm.calls[0])) == 3
    OPROProposer(lm).propose([], n=1, history=HISTORY)
    assert shown_inputs(lm.calls[1]) == []
    assert len(history_lines(lm.calls[1])) == 10
    with pytest.raises(ValueError, match="demonstrations or scored history"):
        OPROProposer(lm).propose([], n=1)


# ---- clean_instruction ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ('The instruction was to "negate the sentence".', "Negate the sentence."),
        ("**Instruction:** Reverse the word\nExtra text", "Reverse the word."),
        ("to add the two numbers", "Add the two numbers."),
        ("The instruction was to sort the list. Then print it.", "Sort the list."),
        ("Instruction: translate the sentence into French", "Translate the sentence into French."),
        ("Sure! Here is the instruction:\n\n'Count the vowels'", "Count the vowels."),
        ("Here's a better instruction: answer yes or no!", "Answer yes or no."),
        ("<INS>Classify the sentiment.</INS>", "Classify the sentiment."),
        ("The new instruction is: give the antonym, e.g. hot gives cold.", None),
        ('"Reverse the word', "Reverse the word."),
        ("  1. *Spell* the word backwards  ", "Spell the word backwards."),
        ("```\nSum the digits\n```", "Sum the digits."),
        ("The instruction was to output the word's plural.", "Output the word's plural."),
        ("Add the numbers.\nInput: 1 2\nOutput: 3", "Add the numbers."),
        ("", ""),
        ('"...".', ""),
    ],
)
def test_clean_instruction(raw: str, clean: str | None) -> None:
    expected = "Give the antonym, e.g. hot gives cold." if clean is None else clean
    assert clean_instruction(raw) == expected


def test_clean_instruction_is_idempotent() -> None:
    once = clean_instruction('**Instruction:** "reverse the word"')
    assert once == "Reverse the word."
    assert clean_instruction(once) == once


# ---- filter_instructions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("", "empty"),
        ("  ...  ", "empty"),
        ("Predict(input) -> output", "looks like code"),
        ("Map each input -> output.", "looks like code"),
        ("Call solve() on the input.", "looks like code"),
        ("Return {answer} for the input.", "looks like code"),
        ("Describe the input-output pairs above.", "echoes the template"),
        ("I gave a friend an instruction and five inputs.", "echoes the template"),
        ("Ask the friend what to do.", "echoes the template"),
        ("The instruction was to add.", "echoes the template"),
        ("Add them.\nInput: 2 3", "echoes the template"),
        (
            "Write an instruction that will produce a higher score than the current instructions.",
            "echoes the template",
        ),
        ("Generate a new instruction for these inputs.", "echoes the template"),
        ("Improve on the previous instructions.", "echoes the template"),
        ("Add.", "too short"),
        ("Add numbers.", "too short"),
        (" ".join(["word"] * 81), "too long"),
    ],
)
def test_filter_rejects_each_bad_class_with_reason(bad: str, reason: str) -> None:
    kept, rejected = filter_instructions([bad, "Add the two numbers."])
    assert kept == ["Add the two numbers."]
    assert len(rejected) == 1
    assert rejected[0][0] == bad
    assert rejected[0][1].startswith(reason), rejected[0][1]


def test_filter_keeps_good_instructions_in_order() -> None:
    good = [
        "Add the two numbers.",
        "Reverse the letters of the word.",
        "Classify the sentiment of the review as positive or negative.",
        "Score the similarity of the two sentences from 0 to 5.",
        "Write a sentence that follows the instructions in the input.",
        " ".join(["word"] * 80),
    ]
    assert filter_instructions(good) == (good, [])


def test_filter_dedupes_after_normalisation() -> None:
    kept, rejected = filter_instructions(
        [
            "Add the two numbers.",
            "add  the two numbers!",
            "Sort the list please.",
            "SORT the list, PLEASE?",
        ],
        existing=["Sort the list, please"],
    )
    assert kept == ["Add the two numbers."]
    assert [(c, r.split()[0]) for c, r in rejected] == [
        ("add  the two numbers!", "duplicate"),
        ("Sort the list please.", "duplicate"),
        ("SORT the list, PLEASE?", "duplicate"),
    ]
    assert "existing" in rejected[1][1]
    assert "Add the two numbers." in rejected[0][1]


def test_filter_word_limits_are_configurable() -> None:
    kept, rejected = filter_instructions(["Add.", "Add the two numbers."], min_words=1, max_words=2)
    assert kept == ["Add."]
    assert rejected[0][1].startswith("too long")
    with pytest.raises(ValueError):
        filter_instructions(["Add."], min_words=5, max_words=2)


# ---- restatements of one example -----------------------------------------------------------


def _restating(kept_rejected: tuple[list[str], list[tuple[str, str]]]) -> list[tuple[str, str]]:
    return [(c, r) for c, r in kept_rejected[1] if r.startswith("restates one example")]


# Proposals written in benchmark runs, each a copy of one example of the data the proposer
# was shown (file, line of that example, proposal): qwen2.5-coder-0.5b proposing from
# demonstrations, then (the last four, 2026-12-07 cascade bench) qwen2.5-coder-1.5b
# reflecting on failing validation examples.
RESTATED = [
    ("gsm8k/gsm8k.test.jsonl", 545, "Divide 100 dollars between Jeff and Brad."),
    (
        "gsm8k/gsm8k.test.jsonl",
        958,
        "Determine the age of Shawna's father based on the ages of her mother, Aliya, and Henry.",
    ),
    (
        "bbh/causal_judgement.test.jsonl",
        29,
        "Determine if the fertilizer by Alex caused the plant to dry out.",
    ),
    (
        "bbh/causal_judgement.test.jsonl",
        14,
        "Determine if Joe caused a severe leg injury to his son's injured victim.",
    ),
    (
        "gsm8k/gsm8k.test.jsonl",
        981,
        "Calculate the total number of beads Adrianne has altogether by summing up the beads "
        "given by her mother, sister, and friend.",
    ),
    (
        "gsm8k/gsm8k.test.jsonl",
        1219,
        "Calculate the total time it will take for the students in Cedar Falls Middle School to "
        "try the escape room, you need to consider the number of students in each grade and the "
        "number of students who can try the escape room at a time. If each group uses their "
        "full 45 minutes, how long will it take for 8 students to try the escape room?",
    ),
    (
        "gsm8k/gsm8k.test.jsonl",
        949,
        "Given the input, calculate the total commission from the sales of the newspapers, "
        "considering the commission rates for the New York Times and Wall Street Journal. The "
        "commission rates are 10% on each copy of the New York Times and 8% on each copy of the "
        "Wall Street Journal. The total commission is the sum of the commissions from the New "
        "York Times and the Wall Street Journal.",
    ),
    (
        "gsm8k/gsm8k.test.jsonl",
        913,
        "Given the input, calculate the number of bottles of water John drinks in a given time. "
        "The model should divide the time taken for the extreme puzzle by 4 to get the time "
        "taken for the normal puzzle, and then multiply it by 2 to get the number of bottles of "
        "water John drinks.",
    ),
]


@pytest.mark.parametrize("n_train", [50, 200])
@pytest.mark.parametrize(("file", "line", "proposal"), RESTATED)
def test_filter_rejects_a_proposal_that_restates_one_example(
    shared_data: Path, file: str, line: int, proposal: str, n_train: int
) -> None:
    rows = load_examples(shared_data / file)
    examples = [*rows[: n_train - 1], rows[line - 1]]  # the copied example among them
    kept, rejected = filter_instructions([proposal, "Answer the question."], examples=examples)
    assert kept == ["Answer the question."]
    assert rejected[0][0] == proposal
    assert rejected[0][1].startswith("restates one example (")
    assert rows[line - 1].id in rejected[0][1]


@pytest.mark.parametrize("n_train", [20, 50, 200])
def test_filter_keeps_every_human_written_instruction_of_the_shared_tasks(
    shared_data: Path, n_train: int
) -> None:
    """Task-level instructions use words found in most inputs or in none: none of the 162
    human-written APE instructions and BBH task descriptions reads as a restatement of the
    task's first examples, few or many."""
    checked = []
    for meta in sorted(shared_data.glob("*/*.meta.json")):
        info = json.loads(meta.read_text())
        texts = info.get("human_instructions") or [info.get("description")]
        stem = meta.name.removesuffix(".meta.json")
        split = "train" if (meta.parent / f"{stem}.train.jsonl").exists() else "test"
        examples = load_examples(meta.parent / f"{stem}.{split}.jsonl")[:n_train]
        for text in filter(None, texts):
            checked.append(text)
            assert (
                _restating(filter_instructions([text], examples=examples, max_words=200)) == []
            ), meta.name
    assert len(checked) >= 150


WORD_PROBLEMS = [
    Example(
        f"{a} has {n} {thing}s and buys {n + 2} more. How many {thing}s does {a} have?",
        (str(2 * n + 2),),
    )
    for a, n, thing in [
        ("Maria", 3, "apple"),
        ("Omar", 5, "marble"),
        ("Lena", 7, "sticker"),
        ("Tariq", 2, "book"),
        ("Ines", 9, "shell"),
        ("Kofi", 4, "card"),
        ("Yuki", 6, "pencil"),
        ("Pavel", 8, "stamp"),
        ("Jeff", 11, "coin"),
        ("Aiko", 12, "ribbon"),
    ]
]


def test_restatement_needs_enough_examples_and_names_the_example() -> None:
    copy = "Count the coins Jeff has."
    kept, rejected = filter_instructions([copy], examples=WORD_PROBLEMS)
    assert kept == []
    assert rejected[0][1] == "restates one example (coins, jeff from train example 9)"
    # Fewer than eight examples: every word is rare, so the check is off.
    assert filter_instructions([copy], examples=WORD_PROBLEMS[5:])[0] == [copy]
    assert filter_instructions([copy])[0] == [copy]
    # Task-level wording passes: the words are in most examples or in none.
    good = [
        "Solve the word problem and give the number of items.",
        "How many does the person have?",
    ]
    assert filter_instructions(good, examples=WORD_PROBLEMS) == (good, [])


def test_one_shared_rare_word_or_a_long_instruction_is_not_a_restatement() -> None:
    # One specific word (a name) is not a copy; two common words at the head of a sentence
    # are not names; a long instruction with two specific words is mostly general.
    cands = [
        "Help Jeff count the items in each problem.",
        "Add the numbers in the problem and report the total of items.",
        "Read the problem carefully, find the two quantities, add them, and answer with the "
        "total number of coins or other items the person ends up with.",
    ]
    assert filter_instructions(cands, examples=WORD_PROBLEMS) == (cands, [])


# ---- likelihood_screen ---------------------------------------------------------------------


def system_text(req: ScoreRequest) -> str:
    return " ".join(m["content"] for m in req.chat_messages if m["role"] == "system")


def keyword_scorer(req: ScoreRequest) -> float:
    """Per-token log-prob -1 with 'uppercase' in the system message, -3 off-task, -2 without."""
    system = system_text(req).lower()
    per_token = -1.0 if "uppercase" in system else (-3.0 if system else -2.0)
    return per_token * len(req.continuation.split())


SCREEN_DEMOS = (
    Example("hello", ("HELLO",)),
    Example("two words", ("TWO WORDS",)),
    Example("a b c", ("A B C",)),
)


def test_likelihood_screen_keeps_on_task_and_drops_off_task() -> None:
    lm = ScriptedLM(scorer=keyword_scorer)
    on, off = "Uppercase the text.", "Write a poem about cats."
    kept, scores = likelihood_screen(lm, [off, on], SCREEN_DEMOS)
    assert kept == [on]
    assert scores == pytest.approx({"": -2.0, on: -1.0, off: -3.0})
    assert len(lm.score_calls) == 3 * len(SCREEN_DEMOS)
    assert {r.continuation for r in lm.score_calls} == {d.target for d in SCREEN_DEMOS}
    assert {r.chat_messages[-1]["content"] for r in lm.score_calls} == {
        f"Input: {d.input}" for d in SCREEN_DEMOS
    }


def test_likelihood_screen_margin_and_format() -> None:
    lm = ScriptedLM(scorer=keyword_scorer)
    off = "Write a poem about cats."
    assert likelihood_screen(lm, [off], SCREEN_DEMOS, margin=1.5)[0] == [off]
    assert likelihood_screen(lm, [off], SCREEN_DEMOS, margin=0.5)[0] == []
    likelihood_screen(lm, [off], SCREEN_DEMOS, fmt=Format(input_label="Q"))
    assert lm.score_calls[-1].chat_messages[-1]["content"] == "Q: a b c"


def test_likelihood_screen_uses_per_token_mean() -> None:
    # Summed log-probs favour short targets; per-token means do not.
    def scorer(req: ScoreRequest) -> float:
        tokens = len(req.continuation.split())
        return -0.5 * tokens if "Uppercase" in system_text(req) else -1.0 * tokens

    kept, scores = likelihood_screen(ScriptedLM(scorer=scorer), ["Uppercase it all."], SCREEN_DEMOS)
    assert kept == ["Uppercase it all."]
    assert scores["Uppercase it all."] == pytest.approx(-0.5)


class NoScoreLM(ScriptedLM):
    def score(self, requests: Sequence[ScoreRequest]):
        raise NotImplementedError("cannot score")


def test_likelihood_screen_without_scoring_keeps_everything() -> None:
    cands = ["Write a poem about cats.", "Uppercase the text."]
    assert likelihood_screen(NoScoreLM(), cands, SCREEN_DEMOS) == (cands, {})


def test_likelihood_screen_without_demos_keeps_everything() -> None:
    lm = ScriptedLM(scorer=keyword_scorer)
    assert likelihood_screen(lm, ["Write a poem."], []) == (["Write a poem."], {})
    assert lm.score_calls == []


@pytest.mark.parametrize(
    "text",
    [
        "Write an output for each input, given the instruction and 5 inputs.",
        "Write an output for every one of the given inputs.",
        "Produce outputs for the five inputs.",
    ],
)
def test_filter_rejects_generic_template_echoes(text: str) -> None:
    kept, rejected = filter_instructions([text])
    assert kept == [] and rejected[0][1].startswith("echoes the template")
