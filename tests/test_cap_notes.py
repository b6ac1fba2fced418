"""The result says so when the winner's answers often stopped at the output cap."""

from __future__ import annotations

import re
from pathlib import Path

from promptlathe import Prompt
from promptlathe.lms import Generation, GenerationRequest, ScriptedLM
from promptlathe.optimizers import Optimization
from promptlathe.optimizers._notes import cap_notes
from promptlathe.prompts import StrategySpec
from promptlathe.records import EvalResult, Record
from tests.test_optimize import _cfg, scorer, task_model


def _result(n: int, cut: int, empty: int, right_cut: int) -> EvalResult:
    records = []
    for i in range(n):
        is_cut, is_empty = i < cut, i < empty
        right = (not is_cut and i % 2 == 0) or (is_cut and i >= cut - right_cut)
        records.append(
            Record(
                example_id=f"t:{i}",
                input=f"q{i}",
                prompt_hash="p",
                request_hash=f"r{i}",
                output="...",
                answer="" if is_empty else "42",
                targets=["42"],
                score=1.0 if right else 0.0,
                cut=is_cut,
            )
        )
    return EvalResult(prompt_hash="p", records=records)


def test_a_reasoned_winner_cut_off_often_names_the_reasoning_cap() -> None:
    cot = Prompt(instruction="Solve it.").with_(strategy=StrategySpec("cot", 1))
    notes = cap_notes(cot, _result(20, cut=5, empty=4, right_cut=1), 64, 256)
    assert notes == [
        "5 of the winner's 20 test answers stopped at the output cap (--reasoning-tokens 256): "
        "4 of them with no answer read, 1 right; a larger cap may score higher, at more "
        "tokens per input"
    ]


def test_a_direct_winner_names_max_tokens_and_rare_cuts_say_nothing() -> None:
    direct = Prompt(instruction="Answer.")
    notes = cap_notes(direct, _result(20, cut=2, empty=0, right_cut=0), 64, 256)
    assert notes == []  # 2 of 20: below both the share and the count
    notes = cap_notes(direct, _result(20, cut=4, empty=0, right_cut=0), 64, 256)
    assert len(notes) == 1 and "(--max-tokens 64)" in notes[0]
    assert cap_notes(direct, None, 64, 256) == []


def test_the_run_result_notes_a_winner_the_cap_cut_off(tmp_path: Path) -> None:
    """The task model stops at the cap on every input whose number is a multiple of 3."""

    def cutting(req: GenerationRequest) -> str | Generation:
        text = task_model(req)
        numbers = re.findall(r"\d+", text)
        if numbers and int(numbers[-1]) % 3 == 0:
            return Generation(text=text[:3], finish_reason="length")
        return text

    lm = ScriptedLM(cutting, model_id="scripted-cut", scorer=scorer)
    run = Optimization(_cfg(tmp_path), lm=lm)
    result = run.run()
    run.close()
    assert result.test is not None
    cut = sum(r.cut for r in result.test.records)
    assert cut >= 3
    note = next(n for n in result.notes if "stopped at the output cap" in n)
    assert note.startswith(f"{cut} of the winner's {result.test.n} test answers")
    assert "(--max-tokens 64)" in note
