"""``--optimizer random``: seeded random ordered demo sets from the validated and labeled pool,
raced; the best handed on (``random,joint``). The conformance suite runs it too."""

from __future__ import annotations

import json
from pathlib import Path

from promptlathe.optimizers import Optimization, RunLog, optimize
from promptlathe.optimizers._state import DemoSet
from promptlathe.optimizers.random_search import MAX_CANDIDATES, draw, exemplar_pool
from promptlathe.prompts import Exemplar
from promptlathe.store import Store
from tests.test_optimizer_conformance import _cfg, make_lm


def test_draws_are_seeded_ordered_sets_of_one_to_k_distinct_exemplars() -> None:
    pool = [Exemplar(f"in {i}", f"OUT {i}") for i in range(10)]
    sets = [draw(pool, 3, seed=0, i=i) for i in range(40)]
    assert sets == [draw(pool, 3, seed=0, i=i) for i in range(40)]  # a resumed run agrees
    assert {len(s) for s in sets} == {1, 2, 3}
    assert all(len(set(s)) == len(s) for s in sets)
    assert len({tuple(e.input for e in s) for s in sets if len(s) == 3}) > 5
    assert draw(pool[:1], 3, seed=0, i=0) == (pool[0],)  # never more than the pool


def test_the_pool_is_every_demo_set_exemplar_once_per_input() -> None:
    a, b = {"input": "x", "output": "X"}, {"input": "y", "output": "Y"}
    sets = [{"kind": "labeled", "exemplars": [a, b]}, {"kind": "mixed", "exemplars": [b, a]}]
    sets.append({"kind": "bootstrapped", "exemplars": [{"input": "x", "output": "X!"}]})
    typed = [DemoSet.model_validate(s) for s in sets]
    assert exemplar_pool(typed) == [Exemplar("x", "X"), Exemplar("y", "Y")]


def _entries(tmp_path: Path):
    store = Store(tmp_path / "run" / "calls.sqlite")
    try:
        return RunLog(store).entries()
    finally:
        store.close()


def test_random_sets_are_raced_and_the_best_beats_the_zero_shot_seed(tmp_path: Path) -> None:
    # The noisy model echoes the input zero-shot (wrong) and upper-cases ~80 % with 2+ demos.
    result = optimize(lm=make_lm(), **vars(_cfg(tmp_path, "random", budget_calls=300)))
    entries = _entries(tmp_path)
    drawn = [e for e in entries if e.source == "random"]
    assert 2 <= len(drawn) <= MAX_CANDIDATES
    assert all(1 <= len(e.prompt["exemplars"]) <= 3 for e in drawn)
    assert any(e.state == "pruned" for e in drawn) or len(drawn) == MAX_CANDIDATES
    assert len(result.best_prompt.exemplars) >= 2
    assert result.best.val > 0.6 and result.test is not None and result.test.mean > 0.6
    assert result.seed_test is not None and result.seed_test.mean < 0.2


def test_random_then_joint_searches_the_sets_random_found(tmp_path: Path) -> None:
    optimize(lm=make_lm(), **vars(_cfg(tmp_path, "random,joint", budget_calls=300)))
    stages = [e.optimizer for e in _entries(tmp_path)]
    assert "random" in stages and "joint" in stages
    assert stages.index("random") < stages.index("joint")
    state = json.loads((tmp_path / "run" / "candidates.json").read_text())
    best_random = next(
        e for e in _entries(tmp_path) if e.optimizer == "random" and e.state == "complete"
    )
    sets = [s["exemplars"] for s in state["exemplars"]["demo_sets"]]
    assert best_random.prompt["exemplars"] in sets or not best_random.prompt["exemplars"]


def test_followed_by_a_stage_random_leaves_it_half_the_search(tmp_path: Path) -> None:
    run = Optimization(_cfg(tmp_path, "random,joint", budget_calls=300), lm=make_lm())
    run.run_stages()
    state = json.loads((tmp_path / "run" / "candidates.json").read_text())
    run.close()
    assert (
        state["run"]["caps"]["random_cap"] <= run.plan.n_boot + 0.5 * run.plan.stages["search"] + 1
    )
