"""The promptfoo and dspy exports in the real tools (each test skips, saying why, where the
tool is not installed: ``pip install dspy``; ``npm install promptfoo`` with its ``.bin`` on
PATH or PROMPTLATHE_PROMPTFOO naming the executable), and what they carry without them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from promptlathe.artifact import ArtifactFields
from promptlathe.exporters import Saved, export
from promptlathe.exporters.dspy import instructions
from promptlathe.prompts import Prompt
from promptlathe.tasks import Example
from promptlathe.testing.exporters import INPUTS, PROMPTS, sent
from tests.conftest import run_cli


def _saved(prompt: Prompt, **fields: object) -> Saved:
    return Saved(prompt, ArtifactFields(metric="contains", **fields), name="p.json")  # type: ignore[arg-type]


def _promptfoo() -> str:
    exe = os.environ.get("PROMPTLATHE_PROMPTFOO") or shutil.which("promptfoo")
    if not exe:
        pytest.skip("promptfoo is not installed (npm install promptfoo; PROMPTLATHE_PROMPTFOO)")
    return exe


@pytest.mark.parametrize("layout", sorted(PROMPTS))
def test_promptfoo_sends_what_promptlathe_sends_and_scores_with_its_metric(
    layout: str, tmp_path: Path
) -> None:
    exe = _promptfoo()
    prompt = PROMPTS[layout]
    # the echo provider answers with the prompt itself, so `contains` passes where the target
    # word is in the input, and fails where no target is anywhere in the prompt
    examples = [Example(x, ("purr",), id=f"t:{i}") for i, x in enumerate(INPUTS)]
    examples.append(Example("Cats purr.", ("zebra", "okapi"), id="t:absent"))
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(export(_saved(prompt), "promptfoo", "p.json", examples))
    out = tmp_path / "out.json"
    env = {
        **os.environ,
        "PROMPTFOO_PYTHON": sys.executable,
        "PROMPTFOO_DISABLE_TELEMETRY": "1",
        "PROMPTFOO_DISABLE_UPDATE": "1",
        "PROMPTFOO_CONFIG_DIR": str(tmp_path / "home"),
    }
    r = subprocess.run(
        [exe, "eval", "-c", str(config), "-r", "echo", "-o", str(out), "--no-cache"]
        + ["--no-table", "--no-write"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert out.is_file(), r.stdout + r.stderr
    results = json.loads(out.read_text())["results"]["results"]
    assert len(results) == len(examples)
    for row in results:
        value = row["vars"]["input"]
        want = sent(prompt, value)
        got = row["response"]["output"]
        assert (json.loads(got) if isinstance(want, list) else got) == want, (layout, value)
        passes = "purr" in value and "targets_json" not in row["vars"]
        assert row["success"] is passes, row.get("gradingResult")


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("dspy") is None, reason="dspy is not installed"
)
@pytest.mark.parametrize("layout", sorted(PROMPTS))
def test_the_dspy_state_loads_into_a_predict(layout: str, tmp_path: Path) -> None:
    import dspy  # type: ignore[import-not-found,unused-ignore]

    prompt = PROMPTS[layout]
    path = tmp_path / "program.json"
    path.write_text(export(_saved(prompt), "dspy", "p.json"))
    program = dspy.Predict("input -> output")
    program.load(str(path))
    assert program.signature.instructions == instructions(_saved(prompt)) or not prompt.instruction
    assert [(d["input"], d["output"]) for d in program.demos] == [
        (d.input, d.output) for d in prompt.exemplars
    ]


def test_the_promptfoo_config_carries_tests_provider_and_metric() -> None:
    examples = [Example("Cats purr.", ("Cats do not purr.",), id="a.jsonl:1")]
    examples.append(Example("It rains.", ("It does not rain.", "It doesn't rain.")))
    body = yaml.safe_load(export(_saved(PROMPTS["chat"]), "promptfoo", "p.json", examples))
    assert body["tests"][0] == {
        "vars": {"input": "Cats purr.", "target": "Cats do not purr."},
        "description": "a.jsonl:1",
    }
    assert json.loads(body["tests"][1]["vars"]["targets_json"]) == list(examples[1].targets)
    provider = body["providers"][0]
    assert provider["id"] == "openai:chat:qwen2.5-coder-0.5b"
    assert provider["config"]["temperature"] == 0.0 and provider["config"]["max_tokens"] == 64
    code = body["defaultTest"]["assert"][0]["value"]
    assert "get_metric('contains', [])" in code
    completion = yaml.safe_load(
        export(_saved(PROMPTS["completion"], model="smollm2-135m"), "promptfoo", "p.json")
    )
    assert completion["providers"][0]["id"] == "openai:completion:smollm2-135m"
    assert completion["tests"] == []


def test_the_promptfoo_assertion_scores_as_the_metric() -> None:
    """The assertion's code, run as promptfoo runs it (a function of output and context)."""
    labelled = _saved(PROMPTS["chat"])
    labelled = Saved(labelled.prompt, ArtifactFields(metric=None), name="p.json")
    examples = [Example("x", ("yes",)), Example("y", ("no",)), Example("z", ("maybe",))]
    text = export(labelled, "promptfoo", "p.json", examples)
    code = yaml.safe_load(text)["defaultTest"]["assert"][0]["value"]
    lines = "".join(f"    {line}\n" for line in code.splitlines())
    body = "def get_assert(output, context):\n" + lines
    names: dict[str, object] = {}
    exec(body, names)  # noqa: S102 - the code under test
    check = names["get_assert"]
    assert callable(check)
    assert check("Answer: yes", {"vars": {"target": "yes"}})["pass"] is True
    assert check("Answer: no", {"vars": {"target": "yes"}})["pass"] is False
    many = {"vars": {"targets_json": '["no", "maybe"]'}}
    assert check("maybe", many)["score"] == 1.0


def test_a_labels_scored_prompt_warns_in_the_promptfoo_config() -> None:
    saved = _saved(PROMPTS["chat"], decode="labels", decode_labels=["yes", "no"])
    assert "scored this prompt by the likelihood" in export(saved, "promptfoo", "p.json")


def test_export_with_a_task_through_the_cli(tmp_path: Path) -> None:
    src = tmp_path / "best_prompt.json"
    PROMPTS["chat"].save(src, metric="normalized")
    task = tmp_path / "t.jsonl"
    task.write_text('{"input": "Cats purr.", "target": "Cats do not purr."}\n')
    out = tmp_path / "promptfooconfig.yaml"
    r = run_cli("export", str(src), "--to", "promptfoo", "--task", str(task), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(out.read_text())["tests"][0]["vars"]["input"] == "Cats purr."
    r = run_cli("export", str(src), "--to", "dspy")
    assert json.loads(r.stdout)["signature"]["instructions"] == "Negate the sentence."
    r = run_cli("export", str(src), "--to", "promptfoo", "--task", str(tmp_path / "none.jsonl"))
    assert r.returncode == 2 and "none.jsonl" in r.stderr and "Traceback" not in r.stderr
