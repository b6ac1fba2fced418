"""The search's budget in cost: each model's input and output tokens at its price, checked
before every call, shared by the models of ``optimize --models``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from promptlathe.errors import BudgetExhausted, PromptlatheError
from promptlathe.lms import GenerationRequest, ScoreRequest, ScriptedLM
from promptlathe.optimizers import Budget, Optimization
from promptlathe.store import Store
from tests.conftest import run_cli
from tests.test_optimize import _cfg, make_lm


def _ask(lm, text: str = "one two three") -> None:  # type: ignore[no-untyped-def]
    lm.generate([GenerationRequest(prompt=text, max_tokens=8)])


def test_the_store_counts_input_and_output_tokens_by_model(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    budget = Budget(store, 100)
    a = budget.wrap(ScriptedLM(lambda r: "x y", model_id="a"))
    b = budget.wrap(ScriptedLM(lambda r: "z", model_id="b"))
    _ask(a, "one two three")
    _ask(a, "four five")
    _ask(b, "six")
    b.score([ScoreRequest(continuation="seven eight")])  # read, not generated: input
    got = store.io_tokens()
    assert got["a"][1] == 4 and got["b"][1] == 1  # two answers of 2 tokens; one of 1
    assert got["a"][0] >= 5 and got["b"][0] >= 1 + 2
    assert store.tokens_used() == sum(i + o for i, o in got.values())
    store.close()


def test_the_cost_cap_prices_each_model_and_stops_at_the_cap(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    budget = Budget(store, 100, max_cost=10.0)
    cheap = budget.wrap(ScriptedLM(lambda r: "ok", model_id="cheap"), price=(1.0, 3.0))
    dear = budget.wrap(ScriptedLM(lambda r: "ok", model_id="dear"), price=(1e6, 1e6))
    _ask(cheap)  # a few tokens at a few units per million: far under the cap
    assert 0 < budget.cost() < 1e-3
    _ask(dear, "a b c d e f g h i j k")  # >= 11 tokens at 1 per token: over the cap
    assert budget.cost() >= 10.0
    with pytest.raises(BudgetExhausted, match="cost budget of 10 is spent"):
        _ask(cheap, "another")
    store.close()


def test_calls_of_a_model_not_wrapped_yet_are_priced_at_the_fallback(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    first = Budget(store, 100)
    _ask(first.wrap(ScriptedLM(lambda r: "ok", model_id="proposer")), "a b c d")
    again = Budget(store, 100, max_cost=1.0, fallback_price=(2e5, 2e5))  # a resumed run
    spent = sum(i + o for i, o in store.io_tokens().values())
    assert again.cost() == pytest.approx(spent * 0.2)
    store.close()


def test_the_search_gets_the_same_share_of_the_cost_as_of_the_calls(tmp_path: Path) -> None:
    budget = Budget(Store(tmp_path / "c.db"), 200, max_cost=8.0)
    assert budget.cost_limit == 8.0
    budget.ceiling = 150  # the framework holds back a quarter for confirmation
    assert budget.cost_limit == pytest.approx(6.0)
    budget.ceiling = None
    assert budget.cost_limit == 8.0


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"budget_cost": -1.0, "prices": {"scripted": [1.0, 1.0]}}, "--budget-cost -1.0"),
        ({"budget_cost": 1.0}, "no price for 'scripted'"),
        ({"budget_cost": 1.0, "prices": {"scripted": [1.0]}}, "expected two finite prices"),
        ({"budget_cost": 1.0, "prices": {"scripted": [1.0, -2.0]}}, "expected two finite"),
    ],
)
def test_a_cost_budget_is_checked_before_any_work(tmp_path: Path, kw, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PromptlatheError, match=words):
        _cfg(tmp_path, **kw)


def test_a_run_under_a_cost_budget_stops_the_search_there(tmp_path: Path) -> None:
    (tmp_path / "free").mkdir()
    (tmp_path / "capped").mkdir()
    free = Optimization(_cfg(tmp_path / "free", budget_calls=300), lm=make_lm())
    try:
        free.run()
        used_free = free.budget.used
        tokens_free = free.store.tokens_used()
    finally:
        free.close()
    # a price of 1 per token (1e6 per million), the cap at a third of what the free run spent
    prices = {"scripted": [1e6, 1e6]}
    cap = tokens_free / 3
    cfg = _cfg(tmp_path / "capped", budget_calls=300, budget_cost=cap, prices=prices)
    run = Optimization(cfg, lm=make_lm())
    try:
        result = run.run()
        assert run.budget.used < used_free
        # checked before each call: the overshoot is at most the last chunk's tokens
        assert cap <= run.budget.cost() <= cap * 1.5
        assert result.best_prompt_path.is_file()
        assert any(line.startswith("search cost: ≤ ") for line in run.plan_lines())
    finally:
        run.close()
    saved = json.loads((Path(cfg.out) / "config.json").read_text())
    assert saved["budget_cost"] == pytest.approx(cap) and saved["prices"] == prices
    # the cap may change on --resume (like the call budget)
    assert cfg.differences(replace(cfg, budget_cost=cap * 2)) == []


def test_the_cli_refuses_cost_without_a_cost_budget_or_models(tmp_path: Path) -> None:
    task = tmp_path / "t.jsonl"
    task.write_text(
        "".join(json.dumps({"input": f"x{i}", "output": "y"}) + "\n" for i in range(40))
    )
    r = run_cli("optimize", "--task", str(task), "--cost", "m=1:2", "--out", str(tmp_path / "o"))
    assert r.returncode != 0 and "--cost goes with --models or --budget-cost" in r.stderr
    assert "Traceback" not in r.stderr


def test_optimize_models_gives_each_model_an_equal_share_of_the_cost(tmp_path: Path) -> None:
    from promptlathe.cascade import optimize_models
    from promptlathe.cascade._optimize import plan_lines
    from promptlathe.lms import Price
    from promptlathe.optimizers import OptimizeConfig

    class Seen(Exception):
        pass

    seen: list[OptimizeConfig] = []

    def run_one(settings):  # type: ignore[no-untyped-def]
        seen.append(OptimizeConfig(**settings))
        raise Seen

    task = tmp_path / "t.jsonl"
    rows = [json.dumps({"input": f"x{i}", "output": "y"}) for i in range(40)]
    task.write_text("\n".join(rows) + "\n")
    small, large = "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"
    prices = {small: Price(0.5, 1.5), large: Price(2.0, 6.0)}
    settings = {"task": str(task), "out": str(tmp_path / "o"), "budget_cost": 3.0}
    assert "at most 1.5 of 3 in cost" in plan_lines(settings, [small, large], prices)[0]
    with pytest.raises(Seen):
        optimize_models(settings, [small, large], prices=prices, run_one=run_one)
    assert seen[0].budget_cost == 1.5 and seen[0].budget_calls == 300
    assert seen[0].prices == {small: [0.5, 1.5], large: [2.0, 6.0]}
    assert seen[0].model_prices()[small] == (0.5, 1.5)
