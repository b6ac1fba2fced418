"""The stages' saved state: typed sections, a version, the upgrade of version 1 files, and
one-line errors for a damaged or newer file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest

from promptlathe.errors import PromptlatheError
from promptlathe.optimizers import Optimization
from promptlathe.optimizers._state import (
    _V1_CAPS,
    _V1_RENAMED,
    _V1_SECTIONS,
    STATE_VERSION,
    ExemplarState,
    StageState,
)
from promptlathe.optimizers._state_file import StateFile
from promptlathe.store import Store
from tests.test_optimize import _cfg, make_lm


class _Mine(StageState):
    section: ClassVar[str] = "mine"
    tried: list[str] = []
    best: str | None = None


def _v1(state: dict) -> dict:
    """A version 2 state written the way version 1 wrote it (one flat dict)."""
    back = {v: k for k, v in _V1_RENAMED.items()}
    flat: dict = {}
    for key, section in _V1_SECTIONS.items():
        field = _V1_RENAMED.get(key, key)
        if field in state.get(section, {}):
            flat[key] = state[section][field]
    for key in _V1_CAPS:
        if key in state.get("run", {}).get("caps", {}):
            flat[key] = state["run"]["caps"][key]
    assert set(back) <= set(_V1_SECTIONS)
    return flat


def test_a_section_reads_as_its_defaults_then_as_saved_and_others_are_kept(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "c.db")
    state = StateFile(tmp_path / "candidates.json", store)
    assert state.get(_Mine) == _Mine()
    state.update(_Mine, tried=["a"])
    state.update(ExemplarState, n_bootstrapped=3)
    saved = state.update(_Mine, best="a")
    assert saved.tried == ["a"] and saved.best == "a"  # the first field is kept
    data = json.loads((tmp_path / "candidates.json").read_text())
    assert data["v"] == STATE_VERSION and data["exemplars"]["n_bootstrapped"] == 3
    with pytest.raises(PromptlatheError, match=r"candidates.json: section 'mine': tried"):
        state.update(_Mine, tried="not a list")
    with pytest.raises(TypeError, match="no field"):
        state.update(_Mine, unknown=1)
    store.close()


def test_a_version_1_state_of_a_real_run_is_upgraded_to_the_same_sections(
    tmp_path: Path,
) -> None:
    cfg = _cfg(tmp_path, budget_calls=150)
    run = Optimization(cfg, lm=make_lm())
    run.prepare()
    run.close()
    path = tmp_path / "run" / "candidates.json"
    now = json.loads(path.read_text())
    assert {"exemplars", "propose", "run"} <= set(now)
    now.pop("vet", None)  # newer than version 1: a v1 file never holds it
    path.write_text(json.dumps(_v1(now)))
    store = Store(tmp_path / "run" / "calls.sqlite")
    upgraded = StateFile(path, store).read()
    store.close()
    assert upgraded == now
    assert json.loads(path.read_text()) == now  # written back once
    again = Optimization(cfg, resume=True, lm=make_lm())  # the resumed run reads it
    again.prepare()
    again.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"v": 99}', "state version 99 is not one this promptlathe reads"),
        ('{"v": 1, "mystery": 1}', "unknown key 'mystery' in a version 1 state"),
        ('{"v": 2, "exemplars": {"orders": "x"}}', "section 'exemplars' is malformed"),
        ("{nope", "cannot read the run's state"),
        ("[1]", "not a JSON object"),
    ],
)
def test_a_damaged_or_newer_state_is_one_line_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "candidates.json"
    path.write_text(text)
    store = Store(tmp_path / "c.db")
    with pytest.raises(PromptlatheError) as exc:
        StateFile(path, store).get(ExemplarState)
    store.close()
    assert message in str(exc.value) and str(path) in str(exc.value)
    assert "\n" not in str(exc.value)


def test_the_first_write_to_a_version_1_state_upgrades_it(tmp_path: Path) -> None:
    """A write before any read upgrades the file in the same locked step (no second lock)."""
    path = tmp_path / "candidates.json"
    path.write_text(json.dumps({"n_bootstrapped": 2, "studies": ["instructions"]}))
    store = Store(tmp_path / "c.db")
    StateFile(path, store).update(_Mine, best="a")
    store.close()
    data = json.loads(path.read_text())
    assert data["v"] == STATE_VERSION and data["mine"]["best"] == "a"
    assert data["exemplars"]["n_bootstrapped"] == 2 and data["run"]["studies"] == ["instructions"]
