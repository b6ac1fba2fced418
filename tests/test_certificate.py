"""The holdout certificate: exact values, the union bound over finalists, the vacuous flag,
coverage after selection (simulated), and the report that carries it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import beta, binomtest

from promptlathe._stats import binomial_lower, hoeffding_lower
from promptlathe.analysis import certify


@pytest.mark.parametrize(("k", "n"), [(0, 10), (7, 10), (10, 10), (31, 40), (55, 60)])
def test_the_bound_is_the_exact_one_sided_clopper_pearson_bound(k: int, n: int) -> None:
    ours = binomial_lower(k, n, 0.05)
    # a one-sided bound at 5 % is the lower end of the two-sided exact interval at 90 %
    two_sided = binomtest(k, n).proportion_ci(confidence_level=0.90, method="exact").low
    assert ours == pytest.approx(two_sided, abs=1e-12)
    if k:
        assert ours == pytest.approx(beta.ppf(0.05, k, n - k + 1), abs=1e-15)


def test_more_finalists_certify_less() -> None:
    scores = [1.0] * 35 + [0.0] * 5
    lows = [certify(scores, finalists=k).lower for k in (1, 2, 3, 6)]
    assert lows == sorted(lows, reverse=True) and lows[0] > lows[-1]
    assert certify(scores, finalists=3).lower == pytest.approx(binomial_lower(35, 40, 0.05 / 3))


def test_partial_credit_uses_hoeffding() -> None:
    scores = [0.5, 1.0, 0.25, 1.0] * 10
    c = certify(scores)
    assert c.method == "Hoeffding"
    assert c.lower == pytest.approx(hoeffding_lower(float(np.mean(scores)), 40, 0.05))


def test_vacuous_means_no_better_than_a_constant_answer() -> None:
    scores = [1.0] * 16 + [0.0] * 4  # 0.80 on 20: certified about 0.60
    useful = certify(scores, baseline=0.5)
    assert not useful.vacuous and "certificate says nothing" not in useful.sentence
    useless = certify(scores, baseline=0.7)
    assert useless.vacuous and "no better than the best constant answer's 0.70" in useless.sentence
    assert certify([0.0] * 10).vacuous  # certifies 0


def test_the_sentence_says_what_it_covers_and_the_selection() -> None:
    c = certify([1.0] * 9 + [0.0], finalists=3, covers="confirmation examples")
    assert c.sentence.startswith("With probability ≥ 95 %, this prompt's accuracy on new data")
    assert "on 10 confirmation examples" in c.sentence and "among 3 finalists" in c.sentence


def test_the_certificate_covers_the_true_accuracy_after_choosing_the_best_finalist() -> None:
    """Three finalists with known accuracies, scored on 30 fresh examples each; the one that
    scores best is chosen (the worst case for optimism). Over 4000 draws the certificate of
    the chosen one lies below its true accuracy at least 95 % of the time."""
    rng = np.random.default_rng(0)
    true = np.array([0.70, 0.72, 0.74])
    covered = 0
    draws = 4000
    for _ in range(draws):
        scores = (rng.random((3, 30)) < true[:, None]).astype(float)
        best = int(np.argmax(scores.sum(axis=1)))
        covered += certify(list(scores[best]), finalists=3).lower <= true[best]
    assert covered / draws >= 0.95
    # without paying for the choice, the same bound is optimistic more often
    naive = 0
    for _ in range(draws):
        scores = (rng.random((3, 30)) < true[:, None]).astype(float)
        best = int(np.argmax(scores.sum(axis=1)))
        naive += certify(list(scores[best]), finalists=1).lower <= true[best]
    assert naive < covered


def test_the_report_of_a_run_carries_the_certificate(tmp_path: Path) -> None:
    from promptlathe.optimizers import Optimization
    from promptlathe.report import AnalysisSizes, open_finished_run, report_run
    from tests.test_optimize import _cfg, make_lm

    cfg = _cfg(tmp_path, budget_calls=150, val_size=16, confirm_size=12, test=None)
    run = Optimization(cfg, lm=make_lm())
    run.run()
    run.close()
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert len(result["best"]["confirm_scores"]) == result["best"]["confirm_n"] == 12
    sizes = AnalysisSizes(format_calls=8, n_orders=2, order_examples=4, posix_inputs=2)
    with open_finished_run(tmp_path / "run", lm=make_lm()) as opened:
        html, _ = report_run(opened, sizes)
    data = json.loads((tmp_path / "run" / "report.json").read_text())
    cert = data["certificate"]
    assert cert["n"] == 12 and cert["finalists"] >= 2
    assert cert["lower"] < cert["mean"]
    page = html.read_text()
    assert 'id="certificate-sentence"' in page and f"at least {cert['lower']:.2f}" in page
