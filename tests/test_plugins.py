"""Third-party optimizers, strategies, exporters and backends come in through entry points; a broken
plug-in is one line naming it."""

from __future__ import annotations

import importlib.metadata
from types import SimpleNamespace

import pytest

from promptlathe.errors import ModelError, PromptlatheError
from promptlathe.lms import LM, Backend, ScriptedLM, backend_for
from promptlathe.optimizers import OPTIMIZERS, _protocol, optimizer_names
from promptlathe.optimizers.joint import JointOptimizer
from promptlathe.strategies import STRATEGIES, strategy_names
from promptlathe.strategies import _protocol as strategies_protocol


class Plugged(JointOptimizer):
    name = "plugged"
    summary = "a stage from another package"


def _entry(name: str, obj: object) -> SimpleNamespace:
    return SimpleNamespace(name=name, value=f"their_pkg:{name}", load=lambda: obj)


def _serve(monkeypatch: pytest.MonkeyPatch, group: str, entries: list) -> None:
    real = importlib.metadata.entry_points

    def fake(**kw):  # type: ignore[no-untyped-def]
        return entries if kw.get("group") == group else real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)


def test_an_optimizer_plug_in_is_registered_under_its_entry_point_name(monkeypatch) -> None:
    _serve(monkeypatch, "promptlathe.optimizers", [_entry("plugged", Plugged)])
    monkeypatch.setattr(_protocol, "_loaded", False)
    try:
        assert "plugged" in optimizer_names()
        assert _protocol.parse_chain("plugged,joint") == ["plugged", "joint"]
    finally:
        OPTIMIZERS.pop("plugged", None)


def test_a_broken_optimizer_plug_in_is_one_line(monkeypatch) -> None:
    _serve(monkeypatch, "promptlathe.optimizers", [_entry("bad", object)])
    monkeypatch.setattr(_protocol, "_loaded", False)
    with pytest.raises(PromptlatheError, match="optimizer plug-in 'bad'.*not an Optimizer"):
        optimizer_names()


def test_a_strategy_plug_in_is_registered(monkeypatch) -> None:
    from promptlathe.strategies.cot import ChainOfThought

    class Mine(ChainOfThought):
        name = "mine"

    _serve(monkeypatch, "promptlathe.strategies", [_entry("mine", Mine)])
    monkeypatch.setattr(strategies_protocol, "_loaded", False)
    try:
        assert "mine" in strategy_names()
    finally:
        STRATEGIES.pop("mine", None)


def test_a_backend_plug_in_is_tried_first(monkeypatch) -> None:
    engine = Backend(
        "in-process engine",
        lambda model, url: model.startswith("engine:"),
        lambda: ScriptedLM,
        lambda model, url, **kw: ScriptedLM(lambda req: "x"),
    )
    _serve(monkeypatch, "promptlathe.backends", [_entry("engine", engine)])
    assert backend_for("engine:big") is engine
    assert backend_for("qwen2.5-coder-0.5b").name == "embedded model"
    _serve(monkeypatch, "promptlathe.backends", [_entry("engine", LM)])
    with pytest.raises(ModelError, match="backend plug-in 'engine'.*not a Backend"):
        backend_for("m")


def test_exporter_plug_ins_load_through_the_same_registry(monkeypatch) -> None:
    from promptlathe.exporters import EXPORTERS, exporter_names
    from promptlathe.exporters import _protocol as exporters_protocol
    from promptlathe.exporters.messages import MessagesExporter

    class Yaml(MessagesExporter):
        name = "yaml"

    _serve(monkeypatch, "promptlathe.exporters", [_entry("yaml", Yaml)])
    monkeypatch.setattr(exporters_protocol, "_loaded", False)
    try:
        assert "yaml" in exporter_names()
    finally:
        EXPORTERS.pop("yaml", None)
    _serve(monkeypatch, "promptlathe.exporters", [_entry("bad", object)])
    monkeypatch.setattr(exporters_protocol, "_loaded", False)
    with pytest.raises(PromptlatheError, match="exporter plug-in 'bad'.*not an Exporter"):
        exporter_names()
