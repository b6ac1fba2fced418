"""Label scoring on the real embedded model (smollm2-135m)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptlathe import Decoding, Evaluator, Exemplar, Prompt
from promptlathe.lms import LabelRequest, ScoreRequest
from promptlathe.lms._llama import LlamaCppLM
from promptlathe.metrics import LabelMetric, get_metric
from promptlathe.metrics._labels import label_set_of
from promptlathe.tasks import load_examples
from tests.conftest import TEST_MODEL, first_lines, run_cli

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "task", ["bbh/navigate", "bbh/snarks", "ape/word_in_context", "ape/sentence_similarity"]
)
def test_choice_is_the_exact_argmax_over_full_label_scores(
    embedded_lm: LlamaCppLM, shared_data: Path, task: str
) -> None:
    """The bounded search returns what scoring every label in full would pick."""
    examples = load_examples(shared_data / f"{task}.test.jsonl")
    labels = label_set_of([e.target for e in examples])
    assert labels is not None
    prompt = Prompt(
        instruction="Answer with one of: " + ", ".join(labels) + ".",
        exemplars=tuple(Exemplar(e.input, e.target) for e in examples[:2]),
    )
    ev = Evaluator(embedded_lm, LabelMetric(labels), labels=labels)
    for ex in examples[2:8]:
        req = ev.label_request(prompt, ex.input)
        (choice,) = embedded_lm.choose([req])
        full = [
            s.logprob
            for s in embedded_lm.score(
                [
                    ScoreRequest(continuation=lab, messages=req.messages, end_of_text=eot)
                    for lab, eot in _ends(embedded_lm, labels)
                ]
            )
        ]
        best = max(full)
        # Exact up to llama.cpp's batch-dependent numerics (the scorer is another context).
        assert full[choice.index] >= best - 0.05, (ex.id, full, choice)
        for got, want in zip(choice.logprobs, full, strict=True):
            if got is not None:
                assert got == pytest.approx(want, abs=0.05)
            else:  # pruned: provably below the chosen label
                assert want <= full[choice.index] + 0.05


def _ends(lm: LlamaCppLM, labels: list[str]) -> list[tuple[str, bool]]:
    toks = [lm._llm.tokenize(lab.encode(), add_bos=False, special=False) for lab in labels]
    return [
        (lab, any(o != t and o[: len(t)] == t for o in toks))
        for lab, t in zip(labels, toks, strict=True)
    ]


def test_label_choice_reuses_the_prefix_and_leaves_generation_intact(
    embedded_lm: LlamaCppLM, shared_data: Path
) -> None:
    """Choosing labels between generations does not disturb them (the KV state is restored)."""
    examples = load_examples(shared_data / "bbh/navigate.test.jsonl")[:4]
    prompt = Prompt(instruction="Answer Yes or No.")
    gen = Evaluator(embedded_lm, get_metric("normalized"), Decoding(max_tokens=8))
    lab = Evaluator(embedded_lm, LabelMetric(["No", "Yes"]), labels=["No", "Yes"])
    before = [r.output for r in gen.evaluate(prompt, examples).records]
    chosen = [r.output for r in lab.evaluate(prompt, examples).records]
    after = [r.output for r in gen.evaluate(prompt, examples).records]
    assert before == after
    assert set(chosen) <= {"No", "Yes"}
    assert embedded_lm.choose([LabelRequest.text("Q: Is fire hot?\nA:", [" Yes", " No"])])


def test_eval_cli_decodes_labels(shared_data: Path, tmp_path: Path) -> None:
    task = shared_data / "bbh/navigate.test.jsonl"
    out = tmp_path / "r.json"
    args = ["eval", "--task", str(task), "--model", TEST_MODEL, "--limit", "6", "--no-progress"]
    args += ["--cache", str(tmp_path / "c.sqlite"), "--json", str(out)]
    r = run_cli(*args, "--decode", "labels")
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["decode"] == "labels" and data["lm_calls"] == 6
    assert {rec["output"] for rec in data["records"]} <= {"No", "Yes"}
    # An open-ended task cannot be scored by labels: one line, before any model work.
    bad = run_cli(
        "eval",
        "--task",
        str(shared_data / "ape/negation.test.jsonl"),
        "--model",
        TEST_MODEL,
        "--decode",
        "labels",
        "--limit",
        "3",
        "--no-progress",
        "--cache",
        str(tmp_path / "d.sqlite"),
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "--decode labels needs a classification task" in bad.stderr


def test_optimize_scores_labels_end_to_end_and_run_reproduces(
    shared_data: Path, tmp_path: Path
) -> None:
    """A classification task on an embedded model is optimized with label scoring (auto);
    the saved prompt says so, and ``run`` answers exactly as the test evaluation did."""
    out = tmp_path / "run"
    r = run_cli(
        "optimize",
        "--task", str(shared_data / "ape" / "word_in_context.train.jsonl"),
        "--test", str(first_lines(
            shared_data / "ape" / "word_in_context.test.jsonl", tmp_path / "test.jsonl", 8
        )),
        "--model", TEST_MODEL, "--proposer-model", TEST_MODEL,
        "--budget-calls", "120", "--val-size", "8", "--confirm-size", "4",
        "--max-shots", "2", "--no-report", "--no-progress", "--out", str(out),
        "--strategies", "direct", "--optimizer", "propose,joint",  # labels under test
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "answers: the most likely of 2 labels" in r.stderr
    best = json.loads((out / "best_prompt.json").read_text())
    assert best["decode"] == "labels"
    assert sorted(best["decode_labels"]) == ["not the same", "same"]
    winner = json.loads((out / "test_records.json").read_text())["winner"]
    assert {rec["output"] for rec in winner} <= {"same", "not the same"}
    inputs = [rec["input"] for rec in winner[:4]]
    ran = run_cli("run", "--prompt", str(out / "best_prompt.json"), "--model", TEST_MODEL,
                  "--cache", str(tmp_path / "c.sqlite"), *inputs)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [rec["output"] for rec in winner[:4]]
