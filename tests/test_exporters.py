"""Format-specific behaviour of the exports (their equivalence with what promptlathe sends is
the shipped conformance suite, tests/test_exporter_conformance.py): the messages carry the
decoding, the Jinja template loads in Jinja2 itself, ``python``'s module imports and its
``answer`` reads outputs as the metric does, refusals, and the CLI."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import jinja2
import pytest

from promptlathe.artifact import ArtifactFields
from promptlathe.errors import PromptlatheError
from promptlathe.exporters import PLACEHOLDER, Saved, export, exporter_names
from promptlathe.metrics import get_metric
from promptlathe.prompts import Prompt, StrategySpec
from promptlathe.testing.exporters import DEMOS, INPUTS, PROMPTS, sent
from tests.conftest import run_cli


def _saved(prompt: Prompt, metric: str = "normalized") -> Saved:
    return Saved(prompt, ArtifactFields(metric=metric), name="p.json")


@pytest.mark.parametrize("key", PROMPTS)
def test_the_python_module_renders_and_reads_answers_as_promptlathe(
    key: str, tmp_path: Path
) -> None:
    prompt = PROMPTS[key]
    path = tmp_path / f"exported_{key.replace('+', '_')}.py"
    path.write_text(export(_saved(prompt), "python", "p.json"))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for x in INPUTS:
        assert module.render(x) == sent(prompt, x)
    metric = get_metric("normalized")
    outputs = ["Sure! Here is the negation: Cats don't purr.", "Output: no\nmore", '"x"', ""]
    for o in outputs:
        assert module.answer(o) == metric.extract(o)


def test_the_python_module_reads_answers_as_the_contains_metric(tmp_path: Path) -> None:
    path = tmp_path / "exported_contains.py"
    path.write_text(export(_saved(PROMPTS["chat"], metric="contains"), "python", "p.json"))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    metric = get_metric("contains")
    for o in ["  Sure! Here is the negation: no  ", "Output: no\nmore", ""]:
        assert module.answer(o) == metric.extract(o)
    assert module.answer("  Answer: x ") == "Answer: x"  # stripped, not extracted


def test_the_messages_carry_the_decoding_and_jinja2_renders_the_template() -> None:
    prompt = PROMPTS["chat"]
    body = json.loads(export(_saved(prompt), "messages", "p.json"))
    assert body["temperature"] == 0.0 and body["max_tokens"] == 64
    assert body["placeholder"] == PLACEHOLDER
    template = jinja2.Template(export(_saved(prompt), "jinja", "p.json"))
    assert json.loads(template.render(input="Cats purr.")) == sent(prompt, "Cats purr.")


def test_what_a_format_cannot_express_is_refused_in_one_line() -> None:
    sc = Prompt("Think.", DEMOS, strategy=StrategySpec("self_consistency", 3))
    for to in exporter_names():
        with pytest.raises(PromptlatheError, match="strategy self_consistency") as exc:
            export(_saved(sc), to, "p.json")
        assert "\n" not in str(exc.value)
    clash = Prompt("Answer {input} carefully.")
    with pytest.raises(PromptlatheError, match="contains '{input}'"):
        export(_saved(clash), "messages", "p.json")
    with pytest.raises(PromptlatheError, match="metric 'choice' reads answers its own way"):
        export(_saved(PROMPTS["chat"], metric="choice"), "python", "p.json")


def test_export_through_the_cli(tmp_path: Path) -> None:
    src = tmp_path / "best_prompt.json"
    PROMPTS["chat"].save(src, metric="normalized")
    out = tmp_path / "out" / "prompt.j2"
    r = run_cli("export", str(src), "--to", "jinja", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "{{ (input | tojson)[1:-1] }}" in out.read_text()
    r = run_cli("export", str(src), "--to", "messages")
    assert json.loads(r.stdout)["messages"][0]["content"] == "Negate the sentence."
    r = run_cli("export", str(src), "--to", "yaml")
    assert r.returncode == 2 and "--to 'yaml' is not one of" in r.stderr
