"""``--optimizer ease``: the order-aware exemplar bandit. Arms are ordered sets (two orders of
the same exemplars are two arms, embedded apart); the GP-UCB bandit finds a clearly better
arm within a bounded number of noisy pulls; through ``optimize`` it pulls on validation in
race order, races its finalists and chains. The conformance suite runs it too."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from promptlathe.lms import GenerationRequest
from promptlathe.optimizers import optimize
from promptlathe.optimizers.ease import PULL, Surrogate, draw_arms, embed
from promptlathe.prompts import Exemplar
from tests.test_optimizer_conformance import _cfg, make_lm
from tests.test_random_search import _entries

POOL = [Exemplar(f"the {w} is here", w.upper()) for w in ("cat", "dog", "owl")]


def test_arms_are_ordered_sets_of_one_to_max_shots_and_two_orders_are_two_arms() -> None:
    arms = draw_arms(POOL, 2, seed=0, n=10)
    # every single exemplar and every ordered pair of 3, no more
    assert sorted(len(a) for a in arms) == [1] * 3 + [2] * 6
    assert len(set(arms)) == 9 and all(len(set(a)) == len(a) for a in arms)
    ab = next(a for a in arms if a == (POOL[0], POOL[1]))
    ba = next(a for a in arms if a == (POOL[1], POOL[0]))
    emb = embed([ab, ba, (POOL[0],), ()], ["the cat is there"])
    assert not np.allclose(emb.features[0], emb.features[1])  # order is part of the arm
    assert not np.allclose(emb.features[0], emb.features[2])  # so is the count
    assert emb.nearness[0] == emb.nearness[1]  # nearness to the task is not
    assert not emb.features[3].any()  # zero-shot: no exemplar anywhere
    assert draw_arms(POOL, 2, seed=0, n=10) == arms  # a resumed run draws the same arms
    assert draw_arms(POOL[:1], 3, seed=0, n=4) == [(POOL[0],)]
    sizes = [len(a) for a in draw_arms([Exemplar(f"x{i}", f"y{i}") for i in range(9)], 4, 0, 48)]
    assert [sizes.count(k) for k in (1, 2, 3, 4)] == [9, 13, 13, 13]  # 9 singles exist


def test_the_bandit_finds_a_clearly_better_arm_within_a_bounded_number_of_pulls() -> None:
    """Twelve arms, one right 80 % of the time and the rest 45 %, each pull the mean of
    ``PULL`` noisy scores: after 30 pulls (120 examples, 10 per arm were it uniform) the
    surrogate's best is the better arm in most of 20 seeded runs."""
    found = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        p = np.full(12, 0.45)
        p[7] = 0.8
        bandit = Surrogate(rng.normal(size=(12, 16)))
        for _ in range(30):
            ucb = bandit.ucb()
            arm = max(range(12), key=lambda i: (ucb[i], -i))
            bandit.observe(arm, rng.binomial(PULL, p[arm]) / PULL)
        found += int(np.argmax(bandit.mean())) == 7
    assert found >= 14, found


def test_ease_pulls_races_its_finalists_and_beats_the_zero_shot_seed(tmp_path: Path) -> None:
    # The noisy model echoes the input zero-shot (wrong) and upper-cases ~80 % with 2+ demos.
    result = optimize(lm=make_lm(), **vars(_cfg(tmp_path, "ease", budget_calls=300)))
    raced = [e for e in _entries(tmp_path) if e.source == "ease"]
    assert len(raced) >= 3  # the finalists, then the next best-rated sets while calls remain
    assert all(len(e.prompt["exemplars"]) <= 3 for e in raced)  # up to --max-shots
    assert len(result.best.prompt.exemplars) >= 2 and result.best.val > 0.5
    # Alone, the stage spends its budget (racing 3 sets only, it left 40 of these 300 calls).
    assert 0.9 * 300 <= result.calls_used <= 300


def test_ease_then_joint_hands_its_sets_on(tmp_path: Path) -> None:
    optimize(lm=make_lm(), **vars(_cfg(tmp_path, "ease,joint", budget_calls=300)))
    stages = [e.optimizer for e in _entries(tmp_path)]
    assert stages.index("ease") < stages.index("joint")
    state = json.loads((tmp_path / "run" / "candidates.json").read_text())
    assert state["run"]["caps"]["ease_cap"] < 300


def copies_its_last_exemplar(req: GenerationRequest) -> str:
    """Right zero-shot (~80 %), right half the time with one exemplar, and with two or more
    it copies the last exemplar's answer (a small model's failure on arithmetic tasks)."""
    msgs = req.chat_messages
    demos = [m["content"] for m in msgs if m["role"] == "assistant"]
    query = [m["content"] for m in msgs if m["role"] == "user"][-1].split("\n")[-1]
    query = query.split(": ", 1)[-1]
    digits = re.findall(r"\d+", query)
    i = int(digits[-1]) if digits else 1
    if not demos:
        return query.upper() if i % 5 else query
    if len(demos) == 1:
        return query.upper() if i % 2 else query
    return demos[-1]


def test_ease_keeps_zero_shot_when_every_demo_set_hurts(tmp_path: Path) -> None:
    lm = make_lm(copies_its_last_exemplar)
    result = optimize(lm=lm, **vars(_cfg(tmp_path, "ease", budget_calls=300)))
    raced = [e for e in _entries(tmp_path) if e.source == "ease"]
    assert any(not e.prompt["exemplars"] for e in raced)  # the zero-shot arm was raced
    assert result.best.prompt.exemplars == () and result.best.val > 0.6
