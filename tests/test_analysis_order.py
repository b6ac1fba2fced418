"""Tests for exemplar order sensitivity."""

from __future__ import annotations

import json

import pytest

from promptlathe.analysis import order_sensitivity
from promptlathe.evaluator import Evaluator
from promptlathe.lms import GenerationRequest, ScriptedLM
from promptlathe.metrics import get_metric
from promptlathe.prompts import Exemplar, Prompt
from promptlathe.tasks import Example

EXS = [Example(input=f"q{j}", targets=("right",), id=f"ex{j}") for j in range(5)]


def exemplars(k: int) -> tuple[Exemplar, ...]:
    return tuple(Exemplar(f"e{i}", f"o{i}") for i in range(k))


def first_demo_is_e0(req: GenerationRequest) -> str:
    """Right only when the first demonstration shown is exemplar e0."""
    users = [m["content"] for m in req.chat_messages if m["role"] == "user"]
    return "right" if users[0] == "Input: e0" else "wrong"


def test_all_orders_of_three_exemplars_with_identity_first() -> None:
    lm = ScriptedLM(first_demo_is_e0)
    r = order_sensitivity(Evaluator(lm, get_metric("exact")), Prompt("Do.", exemplars(3)), EXS)
    perms = [p for p, _ in r.per_order]
    assert perms[0] == (0, 1, 2)
    assert sorted(perms) == sorted(
        [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
    )
    for perm, acc in r.per_order:
        assert acc == (1.0 if perm[0] == 0 else 0.0)
    assert (r.min, r.median, r.max, r.spread) == (0.0, 0.0, 1.0, 1.0)
    assert r.n == 5 and r.calls == len(lm.calls) == 6 * 5


def test_sampled_orders_are_distinct_seeded_and_start_with_identity() -> None:
    prompt = Prompt("Do.", exemplars(5))  # 120 orders, 4 sampled

    def run(seed: int) -> list[tuple[int, ...]]:
        lm = ScriptedLM(first_demo_is_e0)
        r = order_sensitivity(Evaluator(lm, get_metric("exact")), prompt, EXS, 4, seed)
        return [p for p, _ in r.per_order]

    a, b, c = run(0), run(0), run(1)
    assert len(a) == len(set(a)) == 4
    assert a[0] == (0, 1, 2, 3, 4)
    assert all(sorted(p) == [0, 1, 2, 3, 4] for p in a)
    assert a == b and a != c


def test_orders_change_the_rendered_exemplars() -> None:
    lm = ScriptedLM(first_demo_is_e0)
    order_sensitivity(Evaluator(lm, get_metric("exact")), Prompt("Do.", exemplars(2)), EXS[:1])
    shown = [[m["content"] for m in c.chat_messages if m["role"] == "assistant"] for c in lm.calls]
    assert shown == [["o0", "o1"], ["o1", "o0"]]


@pytest.mark.parametrize("k", [0, 1])
def test_at_most_one_exemplar_gives_a_single_order(k: int) -> None:
    lm = ScriptedLM(first_demo_is_e0)
    r = order_sensitivity(Evaluator(lm, get_metric("exact")), Prompt("Do.", exemplars(k)), EXS)
    assert [p for p, _ in r.per_order] == [tuple(range(k))]
    assert r.spread == 0.0 and r.calls == 5
    assert json.loads(json.dumps(r.to_dict()))["per_order"][0]["permutation"] == list(range(k))


def test_invalid_arguments_raise() -> None:
    ev = Evaluator(ScriptedLM(first_demo_is_e0), get_metric("exact"))
    with pytest.raises(ValueError):
        order_sensitivity(ev, Prompt("Do.", exemplars(3)), EXS, n_orders=0)
    with pytest.raises(ValueError):
        order_sensitivity(ev, Prompt("Do.", exemplars(3)), [])


def test_sampling_never_repeats_an_order_even_when_most_are_drawn() -> None:
    lm = ScriptedLM(first_demo_is_e0)
    ev = Evaluator(lm, get_metric("exact"))
    for seed in range(5):
        r = order_sensitivity(ev, Prompt("Do.", exemplars(3)), EXS[:1], n_orders=5, seed=seed)
        perms = [p for p, _ in r.per_order]
        assert len(perms) == len(set(perms)) == 5 and perms[0] == (0, 1, 2)
