"""One conformance suite, run against every registered optimizer with a noisy scripted LM:
the budget is never exceeded by one call, the confirmation and test splits are never seen by
the optimizer, a killed run resumes with no call repeated, and the run log round-trips."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from promptlathe.errors import PromptlatheError
from promptlathe.optimizers import (
    OPTIMIZERS,
    LogEntry,
    Optimization,
    Optimizer,
    Plan,
    RunContext,
    RunLog,
    optimize,
    optimizer_names,
    parse_chain,
    register,
)
from promptlathe.prompts import Prompt
from promptlathe.store import Store
from promptlathe.testing.optimizers import *  # noqa: F403 (the suite)
from promptlathe.testing.optimizers import make_config, make_lm

_cfg = make_config


@pytest.fixture(params=optimizer_names())
def optimizer(request: pytest.FixtureRequest) -> str:
    return request.param


def test_every_optimizer_is_registered_under_its_name() -> None:
    assert {"propose", "joint", "reflect"} <= set(optimizer_names())


def test_stages_chain_and_a_bad_chain_is_one_line() -> None:
    assert parse_chain("propose,joint") == ["propose", "joint"]
    assert parse_chain(" reflect , joint") == ["reflect", "joint"]
    for bad, why in (("joint,", "empty name"), ("nope", "'nope'"), ("joint,joint", "twice")):
        with pytest.raises(PromptlatheError, match=why):
            parse_chain(bad)


def test_a_chain_runs_every_stage_in_order_from_what_the_last_returned(tmp_path: Path) -> None:
    result = optimize(lm=make_lm(), **vars(_cfg(tmp_path, "reflect,joint", budget_calls=200)))
    store = Store(tmp_path / "run" / "calls.sqlite")
    entries = RunLog(store).entries()
    store.close()
    by_stage = [e.optimizer for e in entries]
    assert by_stage.index("reflect") < by_stage.index("joint")
    assert set(by_stage) == {"reflect", "joint"} and result.optimizer == "reflect,joint"
    state = json.loads((tmp_path / "run" / "candidates.json").read_text())
    top = state["reflect"]["reflect_top"]
    assert state["joint"]["instructions"][: len(top)] == top


class Greedy(Optimizer):
    """Sets the highest stage limit it can and races until the budget stops it."""

    name = "greedy-test"
    summary = "spends all it can"

    def plan_lines(self, plan: Plan) -> list[str]:
        return []

    def run(self, ctx: RunContext, start: Sequence[Prompt]) -> list[Prompt]:
        ctx.budget.stage_limit = 10**9
        study = ctx.study("greedy")
        for i in range(10**4):
            ctx.race(start[0].with_(instruction=f"Variant {i}."), study=study, source="greedy")
        return list(start)


def test_no_stage_can_spend_the_confirmation_reserve(tmp_path: Path) -> None:
    register(Greedy)
    try:
        run = Optimization(_cfg(tmp_path, "greedy-test", budget_calls=150), lm=make_lm())
        run.run_stages()
        assert run.budget.used <= run.plan.search_limit
        result = run.finish()
        run.close()
    finally:
        OPTIMIZERS.pop(Greedy.name)
    assert result.best.confirm is not None  # the reserve was there for confirmation
    assert result.calls_used <= 150


def test_a_run_log_of_another_version_is_refused() -> None:
    entry = LogEntry("h", "joint", "seed", {"instruction": "x"}, (1.0,), ((1, 1.0),), "complete")
    bad = {**entry.to_dict(), "v": 99}
    with pytest.raises(PromptlatheError, match="version 99"):
        LogEntry.from_dict(bad)


def test_a_pruned_candidate_says_in_the_run_log_why_it_was_stopped(tmp_path: Path) -> None:
    optimize(lm=make_lm(), **vars(_cfg(tmp_path, "propose,joint", budget_calls=200)))
    store = Store(tmp_path / "run" / "calls.sqlite")
    pruned = [e for e in RunLog(store).entries() if e.state == "pruned"]
    store.close()
    reasons = ("cannot win", "scored 0", "upper bound", "sign test", "pruned at")
    assert pruned and all(any(r in e.note for r in reasons) for e in pruned), [
        e.note for e in pruned
    ]
