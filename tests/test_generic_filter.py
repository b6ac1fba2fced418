"""The generic-instruction filter: what a small proposer writes that fits any task file is
rejected with its reason; no human-written instruction of the shared tasks is."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from promptlathe.proposers import filter_instructions

FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures" / "proposed_instructions.json").read_text()
)
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_the_observed_generic_proposals_are_rejected_and_the_specific_kept() -> None:
    kept, rejected = filter_instructions(FIXTURE["generic"] + FIXTURE["specific"])
    assert kept == FIXTURE["specific"]
    assert [c for c, _ in rejected] == FIXTURE["generic"]
    assert all(reason.startswith("generic") for _, reason in rejected)


@pytest.mark.parametrize(
    "text",
    ["Provide the correct answer for each input.", "Return the appropriate output."],
)
def test_praise_and_file_parts_alone_are_generic(text: str) -> None:
    _, rejected = filter_instructions([text])
    assert rejected and rejected[0][1].startswith("generic")


def _human_instructions() -> list[tuple[str, str]]:
    out = []
    for meta in sorted(SHARED.glob("*/*.meta.json")):
        data = json.loads(meta.read_text())
        written = data.get("human_instructions") or []
        if isinstance(written, str):  # some files hold the list as its Python repr
            written = ast.literal_eval(written)
        out += [(meta.name, text) for text in written]
        if data.get("description"):
            out.append((meta.name, data["description"]))
    return out


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not here")
def test_no_human_written_instruction_of_the_shared_tasks_is_generic() -> None:
    written = _human_instructions()
    assert len(written) > 100
    _, rejected = filter_instructions([text for _, text in written], min_words=1, max_words=10**6)
    generic = [(c, r) for c, r in rejected if r.startswith("generic")]
    assert generic == []


def test_a_run_records_every_rejected_proposal_with_its_reason(tmp_path: Path) -> None:
    """The scripted proposer writes one instruction for every APE request; a run records
    what the vetting dropped (here: repeats of a kept one) with who wrote it and why."""
    from promptlathe.optimizers import optimize
    from tests.test_optimizer_conformance import _cfg, make_lm

    optimize(lm=make_lm(), **vars(_cfg(tmp_path, "propose,joint", budget_calls=200)))
    state = json.loads((tmp_path / "run" / "candidates.json").read_text())
    rejected = state.get("vet", {}).get("rejected", [])
    assert rejected, "the scripted proposer repeats itself: repeats are rejected"
    assert all(r["source"] in ("ape", "opro") and r["reason"] for r in rejected)
