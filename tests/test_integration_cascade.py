"""A cascade on the real embedded model (smollm2-135m): two (model, prompt) steps fitted,
written, and run again by `promptlathe run`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptlathe import Evaluator, Exemplar, Prompt
from promptlathe.artifact import ArtifactFields, Saved
from promptlathe.cascade import Step, answer_step, price_for
from promptlathe.lms._llama import LlamaCppLM
from promptlathe.metrics import LabelMetric
from promptlathe.tasks import load_examples
from tests.conftest import TEST_MODEL, run_cli

pytestmark = pytest.mark.integration

LABELS = ["No", "Yes"]


def test_label_confidences_are_probabilities_that_vary(
    embedded_lm: LlamaCppLM, shared_data: Path
) -> None:
    examples = load_examples(shared_data / "bbh/navigate.test.jsonl")[:8]
    fields = ArtifactFields(decode="labels", decode_labels=LABELS, labels=LABELS)
    step = Step(TEST_MODEL, Saved(Prompt(instruction="Answer Yes or No."), fields),
                price_for(TEST_MODEL, {}))  # fmt: skip
    ev = Evaluator(embedded_lm, LabelMetric(LABELS), labels=LABELS)
    got = answer_step(step, ev, [e.input for e in examples])
    conf = [a.confidence for a in got]
    assert all(0.5 <= c <= 1.0 for c in conf)  # two labels: the chosen one is at least even
    assert len({round(c, 6) for c in conf}) > 1
    assert all(a.prompt_tokens > 50 and a.cost > 0 for a in got)


def test_cascade_fits_on_the_real_model_and_run_reproduces_it(
    shared_data: Path, tmp_path: Path
) -> None:
    rows = (shared_data / "bbh/navigate.test.jsonl").read_text().splitlines()
    (tmp_path / "task.jsonl").write_text("\n".join(rows[:24]) + "\n")
    (tmp_path / "test.jsonl").write_text("\n".join(rows[24:36]) + "\n")
    shots = load_examples(shared_data / "bbh/navigate.test.jsonl")[40:42]
    files = []
    for name, exemplars in (
        ("plain", ()),
        ("shots", tuple(Exemplar(e.input, e.target) for e in shots)),
    ):
        path = tmp_path / f"{name}.json"
        Prompt(instruction="Answer Yes or No.", exemplars=exemplars).save(
            path, model=TEST_MODEL, decode="labels", decode_labels=LABELS, labels=LABELS
        )
        files += ["--step", str(path)]
    out, cache = tmp_path / "cascade.json", tmp_path / "calls.sqlite"
    r = run_cli(
        "cascade", *files, "--task", str(tmp_path / "task.jsonl"), "--test",
        str(tmp_path / "test.jsonl"), "--out", str(out), "--cache", str(cache), "--no-progress",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Test split" in r.stdout
    data = json.loads(out.read_text())
    assert data["steps"] and data["steps"][-1]["threshold"] is None
    kept = data["test"][data["kept"]]
    test = load_examples(tmp_path / "test.jsonl")
    ran = run_cli("run", "--prompt", str(out), "--cache", str(cache), *[e.input for e in test])
    assert ran.returncode == 0, ran.stderr
    answers = ran.stdout.strip().splitlines()
    assert len(answers) == len(test)
    right = sum(a == e.target for a, e in zip(answers, test, strict=True))
    assert right / len(test) == pytest.approx(kept["accuracy"])


def test_optimize_models_on_two_real_models(shared_data: Path, tmp_path: Path) -> None:
    """`optimize --models` end to end: a run per model, the cascade file and its picture, and
    `run` answering the test inputs as the fitting scored them."""
    rows = (shared_data / "bbh/navigate.test.jsonl").read_text().splitlines()
    (tmp_path / "nav.jsonl").write_text("\n".join(rows[:120]) + "\n")
    (tmp_path / "test.jsonl").write_text("\n".join(rows[120:150]) + "\n")
    out = tmp_path / "runs"
    r = run_cli(
        "optimize", "--task", str(tmp_path / "nav.jsonl"), "--test", str(tmp_path / "test.jsonl"),
        "--models", f"{TEST_MODEL},qwen2.5-coder-0.5b", "--budget-calls", "120",
        "--proposer-model", TEST_MODEL, "--out", str(out), "--no-progress", "--no-report",
        "--strategies", "direct",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "cascade plan" in r.stderr and "60 calls each of 120" in r.stderr
    for model in (TEST_MODEL, "qwen2.5-coder-0.5b"):
        assert (out / model / "best_prompt.json").is_file()
    data = json.loads((out / "cascade.json").read_text())
    assert (out / "cascade.png").is_file() and data["verdict"]
    kept = data["test"][data["kept"]]
    test = load_examples(tmp_path / "test.jsonl")
    ran = run_cli("run", "--prompt", str(out / "cascade.json"), "--cache",
                  str(tmp_path / "c.sqlite"), *[e.input for e in test])  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    answers = ran.stdout.strip().splitlines()
    right = sum(a == e.target for a, e in zip(answers, test, strict=True))
    assert right / len(test) == pytest.approx(kept["accuracy"])
