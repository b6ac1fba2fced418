"""Tests for FormatSpread: bandit estimation of the best and worst format on a call budget."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from promptlathe.analysis import format_spread
from promptlathe.errors import BudgetExhausted
from promptlathe.evaluator import Evaluator
from promptlathe.lms import CachedLM, GenerationRequest, ScriptedLM
from promptlathe.metrics import get_metric
from promptlathe.prompts import Format, Prompt
from promptlathe.store import Store
from promptlathe.tasks import Example

# True accuracy of each format, identified by its input label. Arm 2 is the worst, arm 4 the
# best; the others are middling.
ACCURACY = {"L0": 0.5, "L1": 0.55, "L2": 0.05, "L3": 0.45, "L4": 0.95, "L5": 0.6}
FORMATS = [Format(input_label=label) for label in ACCURACY]
N = 64


def difficulty(j: int) -> float:
    """A fixed, well-spread 'difficulty' in [0, 1) per example."""
    return (j * 37 % 100) / 100


def respond(req: GenerationRequest) -> str:
    label, j = re.fullmatch(r"(L\d): q(\d+)", req.chat_messages[-1]["content"]).groups()
    return f"a{j}" if difficulty(int(j)) < ACCURACY[label] else "wrong"


def examples(n: int = N) -> list[Example]:
    return [Example(input=f"q{j}", targets=(f"a{j}",), id=f"ex{j}") for j in range(n)]


def exact_accuracy(label: str, n: int) -> float:
    return sum(difficulty(j) < ACCURACY[label] for j in range(n)) / n


def make(lm: ScriptedLM | CachedLM) -> Evaluator:
    return Evaluator(lm, get_metric("exact"))


def test_finds_worst_and_best_within_budget_and_focuses_on_them() -> None:
    lm = ScriptedLM(respond)
    budget = 200  # far below 6 formats x 64 examples = 384
    r = format_spread(make(lm), Prompt("Answer."), examples(), FORMATS, budget, batch=8)
    assert len(lm.calls) == r.calls <= budget
    assert r.worst == {**r.worst, "input_label": "L2"}
    assert r.best == {**r.best, "input_label": "L4"}
    n_of = {f["input_label"]: n for f, _, n in r.per_format}
    assert set(n_of) == set(ACCURACY)
    assert all(n >= 8 for n in n_of.values())
    # The extreme arms get most of the calls.
    middling = max(n_of[k] for k in ("L0", "L1", "L3", "L5"))
    assert n_of["L2"] > middling and n_of["L4"] > middling
    # Every arm's accuracy is its exact mean on the prefix of examples it saw.
    for f, acc, n in r.per_format:
        assert acc == pytest.approx(exact_accuracy(f["input_label"], n))
    assert r.spread == pytest.approx(r.max - r.min) and r.spread > 0.7
    assert r.min <= r.median <= r.max
    assert r.n_formats == 6 and r.budget_exhausted is False


def test_every_arm_sees_the_same_examples_in_the_same_order() -> None:
    lm = ScriptedLM(respond)
    format_spread(make(lm), Prompt(), examples(), FORMATS, budget_calls=120, batch=8)
    seen: dict[str, list[str]] = {}
    for req in lm.calls:
        label, q = req.chat_messages[-1]["content"].split(": ")
        seen.setdefault(label, []).append(q)
    for qs in seen.values():
        assert qs == [f"q{j}" for j in range(len(qs))]


def test_unlimited_budget_measures_every_arm_exactly() -> None:
    lm = ScriptedLM(respond)
    r = format_spread(make(lm), Prompt(), examples(24), FORMATS, budget_calls=10_000, batch=5)
    assert r.calls == len(lm.calls) == 6 * 24
    accs = {f["input_label"]: (acc, n) for f, acc, n in r.per_format}
    for label in ACCURACY:
        assert accs[label] == (pytest.approx(exact_accuracy(label, 24)), 24)
    exact = [exact_accuracy(label, 24) for label in ACCURACY]
    assert r.max - r.min == pytest.approx(max(exact) - min(exact))


@pytest.mark.parametrize("budget", [1, 4, 10, 13])
def test_tiny_budgets_are_never_exceeded(budget: int) -> None:
    lm = ScriptedLM(respond)
    r = format_spread(make(lm), Prompt(), examples(), FORMATS, budget_calls=budget, batch=8)
    assert len(lm.calls) == r.calls == budget
    assert len(r.per_format) == min(6, budget)
    assert sum(n for _, _, n in r.per_format) == budget


def test_a_rerun_replays_the_same_pulls_from_the_cache(tmp_path: Path) -> None:
    """A report of a finished run must be reproducible and free: the budget counts cached
    evaluations too, so a second run makes the same pulls, all from the cache."""
    store = Store(tmp_path / "c.db")
    try:
        inner = ScriptedLM(respond)
        lm = CachedLM(inner, store)
        first = format_spread(make(lm), Prompt(), examples(), FORMATS, 100, batch=8)
        assert first.calls == len(inner.calls) == 100
        again = format_spread(make(lm), Prompt(), examples(), FORMATS, 100, batch=8)
        assert again.calls == 0 and len(inner.calls) == 100
        assert again.to_dict() | {"calls": 100} == first.to_dict()
        # A larger budget measures more, paying only for the pairs not yet cached.
        more = format_spread(make(lm), Prompt(), examples(), FORMATS, 150, batch=8)
        assert more.calls == len(inner.calls) - 100 == 50
        assert sum(n for _, _, n in more.per_format) == 150
    finally:
        store.close()


def test_budget_exhausted_stops_cleanly_and_reports_measurements(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    spent = {"calls": 0}

    def guard(k: int) -> None:
        if spent["calls"] + k > 30:
            raise BudgetExhausted("budget spent")
        spent["calls"] += k

    try:
        inner = ScriptedLM(respond)
        lm = CachedLM(inner, store, guard=guard)
        r = format_spread(make(lm), Prompt(), examples(), FORMATS, 1000, batch=8)
        assert r.budget_exhausted is True
        assert len(inner.calls) == 30
        assert r.per_format and r.calls <= 30
        assert sum(n for _, _, n in r.per_format) == r.calls
        assert json.loads(json.dumps(r.to_dict()))["budget_exhausted"] is True
    finally:
        store.close()


def test_seed_only_breaks_ties() -> None:
    def always_right(req: GenerationRequest) -> str:
        return "a" + req.chat_messages[-1]["content"].split("q")[-1]

    picks = set()
    for seed in range(6):
        lm = ScriptedLM(always_right)
        r = format_spread(make(lm), Prompt(), examples(), FORMATS, 60, batch=8, seed=seed)
        assert r.spread == 0.0 and r.min == r.max == 1.0
        picks.add(tuple(n for _, _, n in r.per_format))
    assert len(picks) > 1  # different seeds explore different (tied) arms


@pytest.mark.parametrize(
    ("exs", "fmts", "budget", "batch"),
    [
        ([], FORMATS, 10, 8),
        (examples(4), [], 10, 8),
        (examples(4), FORMATS, 0, 8),
        (examples(4), FORMATS, 10, 0),
    ],
)
def test_invalid_arguments_raise(exs: list, fmts: list, budget: int, batch: int) -> None:
    with pytest.raises(ValueError):
        format_spread(make(ScriptedLM(respond)), Prompt(), exs, fmts, budget, batch=batch)
