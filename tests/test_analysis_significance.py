"""Tests for the paired comparison (exact McNemar + paired bootstrap)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from promptlathe.analysis import Comparison, compare


def pairs(b: int, c: int, both_right: int, both_wrong: int) -> tuple[list[float], list[float]]:
    """Scores with ``b`` (A right, B wrong) and ``c`` (A wrong, B right) discordant pairs."""
    a = [1.0] * b + [0.0] * c + [1.0] * both_right + [0.0] * both_wrong
    bb = [0.0] * b + [1.0] * c + [1.0] * both_right + [0.0] * both_wrong
    return a, bb


def test_counts_means_and_exact_mcnemar_match_hand_computation() -> None:
    a, b = pairs(b=8, c=2, both_right=20, both_wrong=10)
    r = compare(a, b)
    assert (r.n, r.b, r.c) == (40, 8, 2)
    assert r.mean_a == pytest.approx(28 / 40)
    assert r.mean_b == pytest.approx(22 / 40)
    assert r.diff == pytest.approx(6 / 40)
    # Two-sided exact binomial test of 8 successes in 10 at p = 1/2:
    # 2 * P(X >= 8) = 2 * (C(10,8) + C(10,9) + C(10,10)) / 2**10 = 112 / 1024.
    assert r.mcnemar_p == pytest.approx(112 / 1024)
    assert r.binary is True
    assert r.significant is False
    assert "not significant at 5 %" in r.verdict
    assert "p = 0.109" in r.verdict


def test_one_sided_discordance_is_significant_and_verdict_reads_well() -> None:
    a, b = pairs(b=12, c=0, both_right=30, both_wrong=8)
    r = compare(a, b, names=("the winner", "the seed"))
    assert r.mcnemar_p == pytest.approx(2 * 0.5**12)
    assert r.significant is True
    assert r.verdict.startswith("The winner is better than the seed by 24.0 points (95 % CI ")
    assert "the difference is significant at 5 % (exact McNemar p < 0.001)." in r.verdict
    assert r.verdict.count(".") >= 1 and r.verdict.endswith(".")


def test_worse_direction_and_custom_alpha() -> None:
    a, b = pairs(b=1, c=9, both_right=10, both_wrong=10)
    r = compare(a, b, alpha=0.1)
    assert r.diff == pytest.approx(-8 / 30)
    assert "worse than" in r.verdict
    assert "at 10 %" in r.verdict and "90 % CI" in r.verdict
    assert r.significant is (r.mcnemar_p < 0.1)
    assert r.mcnemar_p == pytest.approx(2 * (1 + 10) / 1024)


def test_no_discordant_pairs_gives_p_one() -> None:
    r = compare([1, 0, 1, 1], [1, 0, 1, 1])
    assert (r.b, r.c, r.mcnemar_p, r.significant) == (0, 0, 1.0, False)
    assert r.boot_ci == (0.0, 0.0)
    assert "score the same" in r.verdict and "not significant" in r.verdict


def test_bootstrap_ci_contains_diff_is_seeded_and_close_to_normal_approximation() -> None:
    rng = np.random.default_rng(1)
    a = (rng.random(300) < 0.7).astype(float)
    b = (rng.random(300) < 0.6).astype(float)
    r1 = compare(a, b, seed=3)
    r2 = compare(a, b, seed=3)
    r3 = compare(a, b, seed=4)
    assert r1.boot_ci == r2.boot_ci
    assert r1.boot_ci != r3.boot_ci
    lo, hi = r1.boot_ci
    assert lo < r1.diff < hi
    d = a - b
    half = 1.96 * d.std(ddof=1) / math.sqrt(len(d))
    assert lo == pytest.approx(r1.diff - half, abs=0.005)
    assert hi == pytest.approx(r1.diff + half, abs=0.005)


def test_non_binary_scores_count_by_comparison_and_say_so() -> None:
    a = [0.5, 0.9, 0.2, 0.7, 0.7]
    b = [0.4, 0.9, 0.3, 0.1, 0.6]
    r = compare(a, b)
    assert r.binary is False
    assert (r.b, r.c) == (3, 1)
    expected = "(exact sign test over the examples where one prompt scored higher, p = 0.625)."
    assert r.verdict.endswith(expected)


def test_to_dict_is_json_serialisable() -> None:
    a, b = pairs(3, 1, 5, 5)
    r = compare(a, b, n_boot=200)
    assert isinstance(r, Comparison)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["boot_ci"] == list(r.boot_ci)
    assert d["b"] == 3 and d["verdict"] == r.verdict


@pytest.mark.parametrize(
    ("a", "b"),
    [([1, 0], [1]), ([], []), ([1.0, float("nan")], [1.0, 0.0])],
)
def test_invalid_inputs_raise(a: list[float], b: list[float]) -> None:
    with pytest.raises(ValueError):
        compare(a, b)
