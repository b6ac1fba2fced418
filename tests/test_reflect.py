"""The reflective optimizer: parsing reflections, the Pareto front, what the proposer is shown,
children raced against their parents, and under-search said before and after."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from promptlathe.lms import GenerationRequest
from promptlathe.optimizers import LogEntry, Optimization, optimize
from promptlathe.optimizers._state import VetState
from promptlathe.optimizers.reflect import ReflectOptimizer, pareto_front
from promptlathe.proposers import parse_reflection
from tests.test_optimizer_conformance import REFLECTED, REFLECTION, _cfg, make_lm, noisy_model

# ---- parsing ----------------------------------------------------------------------------------


def test_the_instruction_is_read_from_its_fenced_block() -> None:
    text = (
        "Diagnosis: The model copied the input.\n\nNew instruction:\n```text\n"
        "Rewrite the input in **upper case** letters.\nKeep every word.\n```\nHope this helps!"
    )
    assert parse_reflection(text) == (
        "Rewrite the input in upper case letters. Keep every word.",
        "",
    )


def test_without_a_fence_the_text_after_the_marker_is_taken() -> None:
    text = "Diagnosis: wrong case.\nNew instruction: convert the input to upper case.\n\nThanks"
    assert parse_reflection(text) == ("Convert the input to upper case.", "")


def test_the_last_marker_wins_over_an_echo_of_the_template() -> None:
    text = (
        "Answer in the form Diagnosis / New instruction.\nDiagnosis: x\n"
        "New instruction:\n```\nAnswer with the final number only.\n```"
    )
    assert parse_reflection(text)[0] == "Answer with the final number only."


@pytest.mark.parametrize(
    ("text", "finish", "why"),
    [
        ("Diagnosis: x\nNew instruction:\n```\nRewrite the input in upper", "length", "not closed"),
        ("Diagnosis: x\nNew instruction: Rewrite the input in upper", "length", "length cap"),
        ("I think the model should do better next time.", "stop", "no instruction"),
        ("Diagnosis: x\nNew instruction:\n```\n***\n```", "stop", "empty"),
    ],
)
def test_truncated_or_missing_instructions_are_refused(text: str, finish: str, why: str) -> None:
    instr, reason = parse_reflection(text, finish)
    assert instr == "" and why in reason


def test_a_length_cut_after_a_complete_block_is_kept() -> None:
    text = "Diagnosis: x\nNew instruction:\n```\nAnswer yes or no.\n```\nAlso, one could"
    assert parse_reflection(text, "length") == ("Answer yes or no.", "")


# ---- the Pareto front -------------------------------------------------------------------------


def _entry(i: str, scores: list[float]) -> LogEntry:
    return LogEntry(i, "reflect", "reflect", {"instruction": i}, tuple(scores), (), "complete")


def test_the_front_keeps_every_candidate_best_somewhere_and_drops_dominated_ones() -> None:
    a = _entry("a", [1, 1, 0, 0, 1])  # best mean
    b = _entry("b", [0, 0, 1, 0, 1])  # alone best on example 2: kept
    c = _entry("c", [0, 1, 0, 0, 1])  # dominated by a
    d = _entry("d", [0, 0, 0, 0, 0])
    front = pareto_front([a, b, c, d])
    assert front == {"a": 3, "b": 2}


def test_when_everything_scores_zero_the_best_mean_is_the_front() -> None:
    assert pareto_front([_entry("a", [0, 0]), _entry("b", [0, 0])]) == {"a": 1}


# ---- the optimizer ----------------------------------------------------------------------------


def test_the_proposer_sees_failing_examples_with_output_and_target(tmp_path: Path) -> None:
    lm = make_lm()
    cfg = _cfg(tmp_path, "reflect", budget_calls=200, instruction="Write it in upper case.")
    run = Optimization(cfg, lm=lm)
    run.prepare()
    reflections = [r for r in lm.calls if REFLECTION in r.chat_messages[-1]["content"]]
    assert reflections, "no reflection request was made"
    body = reflections[0].chat_messages[-1]["content"]
    seed = next(e for e in run.log.entries() if e.source == "seed")
    failing = [ex for ex, s in zip(run.ctx.data.val, seed.scores, strict=False) if s < 1.0]
    shown = [ex for ex in failing if f"Input: {ex.input}\n" in body]
    assert shown, "no failing validation example is in the reflection request"
    ex = shown[0]
    # the seed failed by echoing the input: that output and the target are both shown
    assert f"Model output: {ex.input}\n" in body
    assert f"Expected answer: {ex.target}" in body
    assert body.index("(INCORRECT)") < body.index("(correct)")
    assert "Write it in upper case." in body  # the parent's instruction
    run.close()


def test_children_race_their_parent_and_survivors_join_the_joint_search(tmp_path: Path) -> None:
    lm = make_lm()
    result = optimize(lm=lm, **vars(_cfg(tmp_path, "reflect,joint", budget_calls=260)))
    run_log = [e for e in result_log(tmp_path) if e.source == "reflect"]
    assert run_log and all(e.parent for e in run_log)
    child = run_log[0]
    assert child.prompt["instruction"] == REFLECTED
    assert child.state == "complete"  # ~90 % against its parent's ~80 % (seed + demos)
    assert len(child.prompt["exemplars"]) == 3  # reflection starts from the seed with demos
    cands = json.loads((tmp_path / "run" / "candidates.json").read_text())
    assert child.prompt["instruction"] in cands["joint"]["instructions"]
    assert result.test is not None and result.test.mean > 0.6
    assert any("reflection rounds" in n for n in result.notes)


def result_log(tmp_path: Path) -> list[LogEntry]:
    from promptlathe.optimizers import RunLog
    from promptlathe.store import Store

    store = Store(tmp_path / "run" / "calls.sqlite")
    try:
        return RunLog(store).entries()
    finally:
        store.close()


def test_a_child_worse_than_its_parent_is_stopped_early(tmp_path: Path) -> None:
    def worse(req: GenerationRequest) -> str:
        text = " ".join(m["content"] for m in req.chat_messages)
        if REFLECTION in text:
            return "Diagnosis: x\nNew instruction:\n```\nReverse the order of the words.\n```"
        return noisy_model(req)

    # A seed right ~75 % of the time: the reflected child (always wrong) must lose.
    cfg = _cfg(tmp_path, "reflect", budget_calls=200, instruction="Write it in upper case.")
    optimize(lm=make_lm(worse), **vars(cfg))
    children = [e for e in result_log(tmp_path) if e.source == "reflect"]
    assert children and children[0].state == "pruned"
    assert children[0].n < 24  # stopped before all of validation


def test_under_search_is_said_in_the_plan_and_in_the_result(tmp_path: Path) -> None:
    run = Optimization(_cfg(tmp_path, "reflect", budget_calls=60, val_size=16), lm=make_lm())
    lines = run.plan_lines()
    assert any(line.startswith("warning:") and "under-search" in line for line in lines)
    assert any("optimizer: reflect" in line for line in lines)
    result = run.run()
    run.close()
    assert any("under-searched" in n for n in result.notes)
    warning = ReflectOptimizer().warnings(run.plan, run.plan_for)[0]
    need = int(warning.split("--budget-calls ")[1].split()[0])
    # the budget it names does give three rounds, and one call less does not
    assert ReflectOptimizer().rounds(run.plan_for(need)) >= 3
    assert ReflectOptimizer().rounds(run.plan_for(need - 1)) < 3


def test_a_big_enough_budget_has_no_warning(tmp_path: Path) -> None:
    run = Optimization(_cfg(tmp_path, "reflect", budget_calls=600), lm=make_lm())
    assert not any(line.startswith("warning:") for line in run.plan_lines())
    run.close()


def test_reflections_that_echo_the_reflection_prompt_are_filtered() -> None:
    from promptlathe.proposers import filter_instructions

    kept, rejected = filter_instructions(
        [
            "Determine if the expected answer is obtained from the input.",
            "Compare the model's output with the input and fix it.",
            "Rewrite the sentence so that it states the opposite.",
        ]
    )
    assert kept == ["Rewrite the sentence so that it states the opposite."]
    assert all("echoes the template" in why for _, why in rejected)


def test_a_seed_pruned_at_zero_is_still_reflected_on(tmp_path: Path) -> None:
    """A model that answers nothing right until the instruction says how (demos do not help):
    the seed scores 0 on the first rung and is pruned, and reflection starts from its failures
    instead of stopping with no parent."""

    def instruction_only(req: GenerationRequest) -> str:
        system = " ".join(m["content"] for m in req.chat_messages if m["role"] == "system")
        if REFLECTION in " ".join(m["content"] for m in req.chat_messages):
            return noisy_model(req)
        if "every word" not in system.lower():
            return [m["content"] for m in req.chat_messages if m["role"] == "user"][-1]
        return noisy_model(req)

    result = optimize(
        lm=make_lm(instruction_only), **vars(_cfg(tmp_path, "reflect,joint", budget_calls=260))
    )
    log = result_log(tmp_path)
    seed = next(e for e in log if e.source == "seed")
    assert seed.state == "pruned" and not any(seed.scores)
    children = [e for e in log if e.source == "reflect"]
    assert children and children[0].parent == seed.id
    assert children[0].prompt["instruction"] == REFLECTED and children[0].state == "complete"
    assert result.test is not None and result.test.mean > 0.6


def test_a_reflection_that_restates_a_failing_validation_example_is_never_raced(
    tmp_path: Path,
) -> None:
    """Reflection shows validation examples, so its proposals are vetted against them too: a
    reflector that copies the first failure it was shown ("Write velvet tunnel 17 in upper
    case letters.", as a small one did on GSM8K: "Calculate the total number of beads
    Adrianne has...") loses that proposal, and the reason names the validation example."""
    copies: list[str] = []

    def copying(req: GenerationRequest) -> str:
        text = req.chat_messages[-1]["content"]
        if REFLECTION in text:
            # the first example shown whose number has two digits (a one-letter word is
            # not a word to the filter)
            shown = re.search(r"^Input: (.*\d\d)$", text, re.M)
            assert shown is not None
            copies.append(f"Write {shown.group(1)} in upper case letters.")
            return f"Task: t.\nDiagnosis: d.\nNew instruction:\n```\n{copies[-1]}\n```"
        return noisy_model(req)

    cfg = _cfg(tmp_path, "reflect", budget_calls=200, instruction="Write it in upper case.")
    run = Optimization(cfg, lm=make_lm(copying))
    val_ids = {e.id for e in run.ctx.data.val}
    run.prepare()
    raced = {e.prompt.get("instruction") for e in run.log.entries()}
    rejected = run.ctx.state(VetState).rejected
    run.close()
    assert copies, "no reflection request was made"
    assert not raced & set(copies)
    reasons = [r.reason for r in rejected if r.instruction in copies]
    assert reasons and all(r.startswith("restates one example (") for r in reasons)
    assert any(f"from example {i})" in r for r in reasons for i in val_ids)
