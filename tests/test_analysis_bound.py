"""Tests for the Occam / PAC-Bayes bound with an LM prior (Akinwande et al. 2023)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.optimize import brentq

from promptlathe.analysis import (
    binary_kl,
    kl_inverse_upper,
    occam_bound,
    prompt_log_prior,
    serialize_prompt,
)
from promptlathe.analysis._bound import PRIOR_CONTEXT
from promptlathe.lms import ScoreRequest, ScriptedLM
from promptlathe.prompts import Exemplar, Format, Prompt

# ---- kl inverse ---------------------------------------------------------------------------


@pytest.mark.parametrize("c", [0.001, 0.05, 0.5, 3.0])
def test_kl_inverse_at_zero_error_has_closed_form(c: float) -> None:
    # kl(0 || p) = -ln(1 - p), so the inverse is 1 - exp(-c).
    assert kl_inverse_upper(0.0, c) == pytest.approx(1 - math.exp(-c), abs=1e-10)


@pytest.mark.parametrize(("q", "c"), [(0.1, 0.1), (0.3, 0.02), (0.5, 0.2), (0.9, 0.01)])
def test_kl_inverse_matches_root_finding(q: float, c: float) -> None:
    expected = brentq(lambda p: binary_kl(q, p) - c, q, 1 - 1e-15)
    p = kl_inverse_upper(q, c)
    assert p == pytest.approx(expected, abs=1e-9)
    assert binary_kl(q, p) >= c  # rounded up: never an over-optimistic bound
    assert binary_kl(q, p) == pytest.approx(c, rel=1e-6)


def test_kl_inverse_edge_cases_and_monotonicity() -> None:
    assert kl_inverse_upper(0.3, 0.0) == 0.3
    assert kl_inverse_upper(1.0, 0.5) == 1.0
    assert kl_inverse_upper(0.2, 1e6) == pytest.approx(1.0)
    values = [kl_inverse_upper(0.2, c) for c in (0.01, 0.05, 0.1, 0.5)]
    assert values == sorted(values) and len(set(values)) == 4
    with pytest.raises(ValueError):
        kl_inverse_upper(1.2, 0.1)
    with pytest.raises(ValueError):
        kl_inverse_upper(0.2, -0.1)


# ---- occam_bound --------------------------------------------------------------------------


def test_occam_bound_known_value() -> None:
    b = occam_bound(0.0, n=100, log_prior=0.0, delta=0.05)
    c = math.log(2 * math.sqrt(100) / 0.05) / 100
    assert b.error_bound == pytest.approx(1 - math.exp(-c), abs=1e-10)
    assert b.hoeffding_bound == pytest.approx(math.sqrt(math.log(20) / 200))
    assert (b.complexity, b.n, b.delta, b.empirical_error, b.vacuous) == (
        0.0,
        100,
        0.05,
        0.0,
        False,
    )


def test_occam_bound_is_tighter_with_more_data_and_looser_with_lower_prior() -> None:
    by_n = [occam_bound(0.1, n, log_prior=-20.0).error_bound for n in (50, 200, 1000, 5000)]
    assert by_n == sorted(by_n, reverse=True) and len(set(by_n)) == 4
    by_prior = [occam_bound(0.1, 500, lp).error_bound for lp in (0.0, -10.0, -50.0, -200.0)]
    assert by_prior == sorted(by_prior) and len(set(by_prior)) == 4
    for bound in (occam_bound(0.1, 500, -30.0), occam_bound(0.0, 50, -5.0)):
        assert bound.empirical_error < bound.error_bound < bound.hoeffding_bound


def test_occam_bound_vacuous_when_prompt_is_too_improbable() -> None:
    b = occam_bound(0.2, n=20, log_prior=-500.0)
    assert b.vacuous is True and b.error_bound > 1 - 1e-9 and b.hoeffding_bound == 1.0
    assert b.complexity == 500.0
    assert occam_bound(0.2, n=20, log_prior=-5000.0).error_bound == 1.0
    assert occam_bound(0.2, n=20, log_prior=-5.0).vacuous is False
    assert json.loads(json.dumps(b.to_dict()))["vacuous"] is True


@pytest.mark.parametrize(
    "kwargs",
    [
        {"train_error": -0.1, "n": 10, "log_prior": -1.0},
        {"train_error": 0.1, "n": 0, "log_prior": -1.0},
        {"train_error": 0.1, "n": 10, "log_prior": 0.5},
        {"train_error": 0.1, "n": 10, "log_prior": -1.0, "delta": 1.0},
    ],
)
def test_occam_bound_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        occam_bound(**kwargs)


def _violation_rate(
    complexities: np.ndarray, true_err: np.ndarray, n: int, reps: int, delta: float, kind: str
) -> float:
    """Fraction of repetitions in which SOME hypothesis has true error above its bound."""
    rng = np.random.default_rng(12345)
    # The bound depends on the data only through the error count: tabulate it.
    table = np.array(
        [
            [
                getattr(occam_bound(k / n, n, -cpx, delta), kind)
                if cpx > 0
                # cpx == 0 encodes "no prior term" for the control experiment below
                else kl_inverse_upper(k / n, math.log(2 * math.sqrt(n) / delta) / n)
                for k in range(n + 1)
            ]
            for cpx in complexities
        ]
    )
    violations = 0
    for _ in range(reps // 250):
        samples = rng.random((250, len(true_err), n)) < true_err[None, :, None]
        counts = samples.sum(axis=2)  # (reps, hypotheses) error counts
        bounds = table[np.arange(len(true_err))[None, :], counts]
        violations += int((bounds < true_err[None, :]).any(axis=1).sum())
    return violations / reps


def test_monte_carlo_bound_holds_simultaneously_for_all_hypotheses() -> None:
    """200 hypotheses, geometric prior summing to < 1: P(any bound violated) <= delta."""
    h, n, reps, delta = 200, 50, 2000, 0.05
    rng = np.random.default_rng(7)
    true_err = rng.uniform(0.02, 0.6, size=h)
    r = 0.99
    prior = (1 - r) * r ** np.arange(h)  # sums to 1 - r**h < 1
    assert prior.sum() <= 1.0
    complexities = -np.log(prior)
    kl_rate = _violation_rate(complexities, true_err, n, reps, delta, "error_bound")
    hoeff_rate = _violation_rate(complexities, true_err, n, reps, delta, "hoeffding_bound")
    slack = 3 * math.sqrt(delta * (1 - delta) / reps)  # Monte-Carlo noise
    assert kl_rate <= delta + slack
    assert hoeff_rate <= delta + slack
    # Control: the same harness catches an invalid bound. Dropping the prior term (no union
    # over the 200 hypotheses) is violated more often than delta allows.
    invalid_rate = _violation_rate(np.zeros(h), true_err, n, reps, delta, "error_bound")
    assert invalid_rate > delta + slack


# ---- prompt_log_prior ---------------------------------------------------------------------


def test_the_prior_is_the_probability_of_the_full_serialization_with_end_of_text() -> None:
    seen: list[ScoreRequest] = []

    def scorer(req: ScoreRequest) -> float:
        seen.append(req)
        return -42.5

    lm = ScriptedLM(scorer=scorer)
    prompt = Prompt("Negate the sentence.", (Exemplar("It is red.", "It is not red."),))
    assert prompt_log_prior(lm, prompt) == -42.5
    (req,) = seen
    assert req.continuation == serialize_prompt(prompt)
    assert json.loads(req.continuation) == prompt.to_dict()  # every field, mode and format too
    assert req.end_of_text is True and req.prompt == PRIOR_CONTEXT and req.messages is None


def test_prompts_that_differ_only_in_mode_or_format_get_different_priors() -> None:
    lm = ScriptedLM()  # default scorer: -len(text)
    chat = Prompt("Negate.", (Exemplar("a", "b"),))
    completion = chat.with_(format=Format(mode="completion"))
    single = chat.with_(format=Format(mode="chat_single"))
    priors = {prompt_log_prior(lm, p) for p in (chat, completion, single)}
    assert len(priors) == 3


def test_prompt_log_prior_feeds_the_bound() -> None:
    lm = ScriptedLM()  # default scorer: -len(text)
    short = prompt_log_prior(lm, Prompt("Negate."))
    long = prompt_log_prior(lm, Prompt("Negate the sentence, carefully and politely, please."))
    assert long < short < 0
    assert occam_bound(0.1, 200, long).error_bound > occam_bound(0.1, 200, short).error_bound


def test_a_prompt_too_long_to_score_gets_a_note_that_says_so() -> None:
    """A kNN winner's full text (its whole pool) may not fit the context: the report says
    that, not that the backend cannot score."""
    from promptlathe.errors import PromptTooLongError
    from promptlathe.evaluator import Evaluator
    from promptlathe.lms import ScriptedLM
    from promptlathe.metrics import get_metric
    from promptlathe.prompts import Exemplar, StrategySpec
    from promptlathe.report._analyze import AnalysisSizes, analyze
    from promptlathe.tasks import Example

    def scorer(req: ScoreRequest) -> float:
        if len(req.continuation) > 2000:
            raise PromptTooLongError("scoring needs too many tokens")
        return -1.0

    pool = tuple(Exemplar(f"item {i} word{i}", f"out {i}") for i in range(200))
    winner = Prompt("Answer.", exemplars=pool, strategy=StrategySpec("knn_demos", 2))
    lm = ScriptedLM(lambda r: "out 1", scorer=scorer)
    examples = [Example(f"item {i} word{i}", (f"out {i}",), id=str(i)) for i in range(6)]
    sizes = AnalysisSizes(format_calls=4, n_orders=2, order_examples=2, posix_inputs=2)
    out = analyze(
        lm=lm, evaluator=Evaluator(lm, get_metric("exact")), winner=winner, baseline=None,
        examples=examples, sizes=sizes,
    )  # fmt: skip
    assert "bound" not in out
    assert "200 exemplars" in out["bound_note"] and "context window" in out["bound_note"]
