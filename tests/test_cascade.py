"""Cascades over (model, prompt) steps with the scripted double: costs, confidences, the
policy fitted on one split and judged on another, the file, `run` and the CLI's errors."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from promptlathe import Decoding, Evaluator, Prompt, Store
from promptlathe.artifact import ArtifactFields, Saved
from promptlathe.cascade import (
    Policy,
    Price,
    Routed,
    Step,
    StepAnswer,
    answer_step,
    default_price,
    fit,
    fit_cascade,
    fit_gate,
    parse_costs,
    price_for,
    read_cascade,
    route,
    run_cascade,
    write_cascade,
)
from promptlathe.cascade._gate import features
from promptlathe.cascade._policy import cross_validate
from promptlathe.cli import app
from promptlathe.confidence import label_confidence, mean_token_probability, vote_share
from promptlathe.errors import PromptlatheError
from promptlathe.lms import CachedLM, GenerationRequest, ScoreRequest, ScriptedLM
from promptlathe.metrics import LabelMetric
from promptlathe.tasks import Example
from tests.conftest import run_cli

LABELS = ["no", "yes"]
SMALL, LARGE = "smollm2-135m", "qwen2.5-coder-1.5b"


def _gold(i: int) -> str:
    return LABELS[i % 2]


def _easy(i: int) -> bool:
    return (i * 7) % 10 < 6  # 60 % of inputs


def _item(r: ScoreRequest) -> int:
    text = " ".join(m["content"] for m in r.chat_messages) if r.messages else r.prompt or ""
    return int(re.findall(r"item (\d+)", text)[-1])


def small_scorer(r: ScoreRequest) -> float:
    """Sure and right on easy inputs; a near tie, right about half the time, on hard ones."""
    i = _item(r)
    label = r.continuation.strip()
    if _easy(i):
        return -0.05 if label == _gold(i) else -3.0
    guess = LABELS[(i * 13 // 7) % 2]
    return -0.6 if label == guess else -0.8


def large_scorer(r: ScoreRequest) -> float:
    """Right on 9 inputs in 10, easy or hard, with a moderate margin."""
    i = _item(r)
    label = r.continuation.strip()
    right = i % 10 != 3
    return -0.2 if (label == _gold(i)) == right else -1.7


def _examples(lo: int, hi: int) -> list[Example]:
    return [Example(id=f"e{i}", input=f"item {i}", targets=(_gold(i),)) for i in range(lo, hi)]


def _saved() -> Saved:
    fields = ArtifactFields(decode="labels", decode_labels=LABELS, labels=LABELS)
    return Saved(Prompt(instruction="Answer yes or no."), fields)


def _steps() -> list[Step]:
    return [
        Step(LARGE, _saved(), price_for(LARGE, {})),
        Step(SMALL, _saved(), price_for(SMALL, {})),
    ]


def _evaluators(store: Store) -> list[Evaluator]:
    metric = LabelMetric(LABELS)
    lms = [
        CachedLM(ScriptedLM(model_id=LARGE, scorer=large_scorer), store),
        CachedLM(ScriptedLM(model_id=SMALL, scorer=small_scorer), store),
    ]
    return [Evaluator(lm, metric, Decoding(), labels=LABELS) for lm in lms]


# ---- costs and confidences


def test_costs_parse_and_default_to_parameters() -> None:
    prices = parse_costs(["gpt-x=2.5:10", " local = 0:0 "])
    assert prices["gpt-x"].of(1_000_000, 100_000) == pytest.approx(3.5)
    assert prices["local"] == Price(0.0, 0.0)
    small, large = default_price(SMALL), default_price(LARGE)
    assert small is not None and large is not None
    assert large.input / small.input == pytest.approx(1.54 / 0.135)
    assert small.output == pytest.approx(3 * small.input) and small.source == "default"
    assert default_price("some-served-model") is None
    assert price_for(SMALL, prices) == small  # an embedded model needs no declaration


@pytest.mark.parametrize(
    ("specs", "words"),
    [
        (["gpt-x=2.5"], "expected NAME=IN:OUT"),
        (["gpt-x=a:1"], "must be numbers"),
        (["gpt-x=-1:1"], "finite and >= 0"),
        (["gpt-x=nan:1"], "finite and >= 0"),
        (["a=1:1", "a=2:2"], "priced twice"),
    ],
)
def test_bad_costs_are_one_line_errors(specs: list[str], words: str) -> None:
    with pytest.raises(PromptlatheError, match=words):
        parse_costs(specs)


def test_a_served_model_must_be_priced() -> None:
    with pytest.raises(PromptlatheError, match="must be declared"):
        price_for("my-served-model", {})


def test_confidences() -> None:
    assert label_confidence([-0.1, -0.1]) == pytest.approx(0.5)
    assert label_confidence([0.0, -math.log(3)]) == pytest.approx(0.75)
    assert label_confidence([-1.0, None, None]) == pytest.approx(1.0)  # the rest proved to lose
    # ...at most as likely as their bounds say: the probability is not overstated
    assert label_confidence([-1.0, None], [-0.5, -1.0 - math.log(3)]) == pytest.approx(0.75)
    assert vote_share(["a", "b", "a", "a"], "a") == pytest.approx(0.75)
    assert vote_share([], "a") == 0.0
    assert mean_token_probability(math.log(0.25), 2) == pytest.approx(0.5)


def test_outcomes_carry_the_label_probability(tmp_path: Path) -> None:
    ev = _evaluators(Store(tmp_path / "c.sqlite"))[1]
    out = ev.answer(Prompt(instruction="Answer."), ["item 0", "item 1"])  # 0 easy, 1 hard
    assert _easy(0) and not _easy(1)
    assert out[0].confidence == pytest.approx(label_confidence([-0.05, -3.0]))
    assert out[1].confidence == pytest.approx(label_confidence([-0.6, -0.8]))
    assert out[0].io_tokens[1] > 0
    # the scripted double reports no prompt tokens for labels: the step counts them itself
    step = Step(SMALL, _saved(), price_for(SMALL, {}))
    (a,) = answer_step(step, ev, ["item 0"])
    rendered = step.saved.prompt.render_messages("item 0")
    assert a.prompt_tokens == ev.lm.count_tokens("\n".join(m["content"] for m in rendered)) > 0
    assert a.cost == pytest.approx(step.price.of(a.prompt_tokens, a.completion_tokens))


# ---- the policy


def _answers(conf: list[float], cost: float) -> list[StepAnswer]:
    return [StepAnswer("x", c, 0, 0, cost) for c in conf]


def test_route_stops_at_the_first_sure_step() -> None:
    answers = [_answers([0.9, 0.5, 0.7], 1.0), _answers([0.6, 0.6, 0.6], 10.0)]
    scores = [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]
    r = route(Policy((0, 1), (0.7,)), answers, scores)
    assert r.answered_by == [0, 1, 0]
    assert r.scores == [1.0, 1.0, 0.0]
    assert r.costs == [1.0, 11.0, 1.0]
    assert r.escalated(0) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        Policy((0, 1))


def test_the_confidence_pass_is_paid_only_where_a_policy_reads_it() -> None:
    def scored(conf: list[float], cost: float, extra: float) -> list[StepAnswer]:
        return [StepAnswer("x", c, 0, 0, cost, confidence_cost=extra) for c in conf]

    answers = [scored([0.9, 0.5], 1.0, 0.5), scored([0.6, 0.6], 10.0, 4.0)]
    scores = [[1.0, 0.0], [1.0, 1.0]]
    # alone, each step costs its answers: nothing reads its confidence
    assert route(Policy((0,)), answers, scores).costs == [1.0, 1.0]
    assert route(Policy((1,)), answers, scores).costs == [10.0, 10.0]
    # in a cascade the first step's confidence is read (paid), the last step's is not
    assert route(Policy((0, 1), (0.7,)), answers, scores).costs == [1.5, 11.5]


def test_the_last_step_of_a_run_takes_no_confidence_pass(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite")
    lm = CachedLM(ScriptedLM(lambda r: "yes", model_id="gen", scorer=lambda r: -1.0), store)
    ev = Evaluator(lm, LabelMetric(["yes", "no"]), Decoding(max_tokens=4))
    step = Step(SMALL, _saved(), price_for(SMALL, {}))
    (alone,) = answer_step(step, ev, ["item 3"], confidence=False)
    assert not alone.measured and alone.confidence_cost == 0.0
    (read,) = answer_step(step, ev, ["item 3"])
    assert read.measured and read.confidence_cost > 0 and read.cost == alone.cost
    got = run_cascade([step], Policy((0,)), [ev], ["item 3"])
    assert got[0].confidence is None and got[0].cost == pytest.approx(alone.cost)


def test_a_generation_with_its_log_probability_needs_no_confidence_pass(tmp_path: Path) -> None:
    from promptlathe.lms import Generation

    store = Store(tmp_path / "c.sqlite")
    inner = ScriptedLM(lambda r: Generation("yes", logprob=math.log(0.8)), model_id="lp")
    ev = Evaluator(CachedLM(inner, store), LabelMetric(["yes", "no"]), Decoding(max_tokens=4))
    step = Step(SMALL, _saved(), price_for(SMALL, {}))
    (a,) = answer_step(step, ev, ["item 3"])
    assert a.measured and a.confidence == pytest.approx(0.8)  # one token of probability 0.8
    assert a.confidence_cost == 0.0 and not inner.score_calls
    (again,) = answer_step(step, ev, ["item 3"])  # from the cache, with its log-probability
    assert again.confidence == pytest.approx(0.8)


def test_fit_picks_the_cheapest_policy_as_accurate_as_the_best() -> None:
    # the small step is right exactly when it is sure (>= 0.8); the large one is always right
    conf = [0.95, 0.9, 0.55, 0.6, 0.85, 0.5, 0.99, 0.52]
    small_right = [1.0 if c >= 0.8 else 0.0 for c in conf]
    answers = [_answers(conf, 1.0), _answers([0.7] * 8, 10.0)]
    chosen, front = fit(answers, [small_right, [1.0] * 8])
    assert chosen.policy.steps == (0, 1) and chosen.accuracy == 1.0
    assert 0.6 < chosen.policy.thresholds[0] <= 0.85
    assert chosen.cost == pytest.approx(1.0 + 10.0 * 4 / 8)
    assert [p.cost for p in front] == sorted(p.cost for p in front)
    assert front[0].policy == Policy((0,))  # the cheapest point is the small step alone
    # within a cost cap the most accurate policy that fits
    capped, _ = fit(answers, [small_right, [1.0] * 8], max_cost=2.0)
    assert capped.cost <= 2.0 and capped.policy == Policy((0,))


def test_longer_cascades_try_fewer_thresholds_per_step() -> None:
    from promptlathe.cascade._policy import candidate_policies, thresholds_per_step

    assert [thresholds_per_step(n) for n in (1, 2, 3, 4, 5)] == [0, 40, 40, 11, 6]
    # four steps with 60 distinct confidences each: 59 thresholds per step are possible
    answers = [_answers([(i * 37 % 60) / 60 + s / 1000 for i in range(60)], 1.0 + s)
               for s in range(4)]  # fmt: skip
    policies = candidate_policies(answers)
    by_size = {n: sum(len(p.steps) == n for p in policies) for n in (1, 2, 3, 4)}
    assert by_size == {1: 4, 2: 6 * 40, 3: 4 * 40**2, 4: 11**3}


# ---- fitting end to end with the scripted models


def test_the_cascade_is_fitted_on_fit_judged_on_judge_and_tests_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite")
    evaluators = _evaluators(store)
    fitted = fit_cascade(
        _steps(), evaluators, LabelMetric(LABELS), _examples(0, 60), _examples(60, 120),
        _examples(120, 200),
    )  # fmt: skip
    assert [s.model for s in fitted.steps] == [SMALL, LARGE]  # cheapest first
    assert fitted.reference == 1  # the large step was the more accurate alone
    assert not fitted.kept.single, fitted.verdict()
    j = fitted.judge
    assert j["cascade_accuracy"] >= j["reference_accuracy"]
    assert j["cost_ratio"] < 0.8 and 0.2 < j["escalated"] < 0.7
    kept_row = next(v for v in fitted.test.values() if v["kept"])
    assert kept_row["cascade"]
    large_row = fitted.test[LARGE]
    assert kept_row["accuracy"] >= large_row["accuracy"] - 0.05
    assert kept_row["cost"] < large_row["cost"]
    assert "cost" in fitted.verdict() and "saves nothing" not in fitted.verdict()
    # the test picture: the cheapest cascade as accurate as the large step alone
    tr = fitted.tradeoff
    assert tr is not None and tr.best_single == LARGE
    c = tr.cost_at_accuracy
    assert c is not None and c.diff >= 0 and c.cost_ratio < 0.8
    assert c.diff_ci[0] <= c.diff <= c.diff_ci[1]
    assert c.cost_ratio_ci[0] <= c.cost_ratio <= c.cost_ratio_ci[1]
    assert any("costs" in line for line in tr.sentences())
    # the thresholds, and the kind of policy, depend on the fit split only: judging
    # elsewhere does not move them
    again = fit_cascade(
        _steps(), _evaluators(store), LabelMetric(LABELS), _examples(0, 60), _examples(300, 360)
    )
    assert again.chosen.policy == fitted.chosen.policy
    assert again.judge["policy"] == j["policy"]
    assert again.judge["cross_validated"] == j["cross_validated"]
    cv = j["cross_validated"]
    assert set(cv) == {"thresholds", "learned"}
    assert j["policy"] == max(cv, key=lambda k: (cv[k]["accuracy"], -cv[k]["cost"]))
    # the test split was answered once by each step, after the fitting
    lms = [ev.lm for ev in evaluators]
    for lm in lms:
        inner = lm.inner
        assert isinstance(inner, ScriptedLM)
        tested = [c for c in inner.score_calls if 120 <= _item(c) < 200]
        assert len(tested) == 80 * len(LABELS)


def test_a_small_model_never_right_escalates_always(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite")
    evaluators = _evaluators(store)
    evaluators[1] = Evaluator(
        CachedLM(ScriptedLM(model_id=SMALL, scorer=lambda r: -0.1 if r.continuation.strip()
                            != _gold(_item(r)) else -2.0), store),
        LabelMetric(LABELS), Decoding(), labels=LABELS,
    )  # fmt: skip
    fitted = fit_cascade(
        _steps(), evaluators, LabelMetric(LABELS), _examples(0, 40), _examples(40, 80),
        _examples(80, 120),
    )  # fmt: skip
    assert fitted.kept == Policy((1,))  # every input goes to the large model
    assert fitted.saves_nothing
    assert "saves nothing" in fitted.verdict() and LARGE in fitted.verdict()
    assert [k for k, v in fitted.test.items() if v["kept"]] == [LARGE]
    from promptlathe.report._cascade_page import render_cascade_page

    page = render_cascade_page(json.loads(json.dumps(fitted.record("label"))), "<runs>", None)
    assert 'class="verdict no"' in page and "saves nothing" in page
    assert "&lt;runs&gt;" in page and "<runs>" not in page


def test_run_cascade_runs_later_steps_only_where_needed(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite")
    evaluators = _evaluators(store)[::-1]  # small, large
    steps = _steps()[::-1]
    queries = [f"item {i}" for i in range(20)]
    got = run_cascade(steps, Policy((0, 1), (0.9,)), evaluators, queries)
    sure = [i for i in range(20) if _easy(i)]
    assert [a.step for a in got] == [0 if _easy(i) else 1 for i in range(20)]
    large = evaluators[1].lm.inner
    assert isinstance(large, ScriptedLM)
    assert {_item(c) for c in large.score_calls} == set(range(20)) - set(sure)
    assert all(a.cost > 0 for a in got)


# ---- the command line


def _prompt_file(path: Path, model: str) -> Path:
    Prompt(instruction="Answer yes or no.").save(
        path, model=model, decode="labels", decode_labels=LABELS, labels=LABELS, metric="label"
    )
    return path


def _task(path: Path, lo: int, hi: int) -> Path:
    rows = [{"input": f"item {i}", "target": _gold(i)} for i in range(lo, hi)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def scripted_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    opened: list[str] = []
    scorers = {SMALL: small_scorer, LARGE: large_scorer}

    def fake_open(model: str, base_url, cache, **_kw):  # type: ignore[no-untyped-def]
        opened.append(model)
        return CachedLM(ScriptedLM(model_id=model, scorer=scorers[model]), Store(cache))

    monkeypatch.setattr("promptlathe.cascade._open.open_cached", fake_open)
    monkeypatch.setattr("promptlathe.cli._options.open_cached", fake_open)
    return opened


def test_cli_fits_writes_and_runs_a_cascade(tmp_path: Path, scripted_models: list[str]) -> None:
    small = _prompt_file(tmp_path / "small.json", SMALL)
    large = _prompt_file(tmp_path / "large.json", LARGE)
    task, test = _task(tmp_path / "t.jsonl", 0, 120), _task(tmp_path / "test.jsonl", 200, 260)
    out, cache = tmp_path / "cascade.json", tmp_path / "calls.sqlite"
    res = CliRunner().invoke(
        app,
        ["cascade", "--step", str(large), "--step", str(small), "--task", str(task),
         "--test", str(test), "--out", str(out), "--cache", str(cache), "--no-progress"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "Pareto front" in res.output and "Test split" in res.output
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    page = out.with_suffix(".html").read_text()
    assert "(kept)" in page and "data:image/png;base64," in page and "<script" not in page
    data = json.loads(out.read_text())
    assert [s["model"] for s in data["steps"]] == [SMALL, LARGE]
    assert data["steps"][0]["threshold"] is not None and data["steps"][1]["threshold"] is None
    assert data["fit"]["n"] == 60 and data["judge"]["comparison"] is not None
    # `report` draws the page again from the file alone (no model opened)
    out.with_suffix(".html").unlink()
    opened = len(scripted_models)
    again = CliRunner().invoke(app, ["report", str(out)])
    assert again.exit_code == 0, again.output
    assert out.with_suffix(".html").read_text() == page and len(scripted_models) == opened
    multi = tmp_path / "multi"  # an optimize --models directory: the cascade file inside
    multi.mkdir()
    (multi / "cascade.json").write_text(out.read_text())
    assert CliRunner().invoke(app, ["report", str(multi)]).exit_code == 0
    assert (multi / "cascade.png").read_bytes()[:4] == b"\x89PNG"
    old = {k: v for k, v in data.items() if k != "fit"}  # written before the page was kept
    (multi / "cascade.json").write_text(json.dumps(old))
    stale = CliRunner().invoke(app, ["report", str(multi)])
    assert stale.exit_code != 0 and "fit it again" in str(stale.exception), stale.output
    steps, policy = read_cascade(out)  # round-trips
    assert [s.model for s in steps] == [SMALL, LARGE] and len(policy.thresholds) == 1
    # `run` answers the test inputs as the fit scored them
    inputs = [f"item {i}" for i in range(200, 260)]
    ran = CliRunner().invoke(app, ["run", "--prompt", str(out), "--cache", str(cache), *inputs])
    assert ran.exit_code == 0, ran.output
    answers = ran.output.split()
    right = sum(a == _gold(i) for a, i in zip(answers, range(200, 260), strict=True))
    kept = data["test"][data["kept"]]
    assert kept["cascade"]
    assert right / 60 == pytest.approx(kept["accuracy"])
    # `eval` scores the cascade on a task the same way
    js = tmp_path / "eval.json"
    ev = CliRunner().invoke(
        app, ["eval", "--prompt", str(out), "--task", str(test), "--cache", str(cache),
              "--json", str(js), "--no-progress"],
    )  # fmt: skip
    assert ev.exit_code == 0, ev.output
    report = json.loads(js.read_text())
    assert report["accuracy"] == pytest.approx(kept["accuracy"]) and report["n"] == 60
    assert report["cost_per_input"] == pytest.approx(kept["cost"])
    assert set(report["answered_by"]) == {f"step 1 ({SMALL})", f"step 2 ({LARGE})"}
    assert "answered by" in ev.output and report["certificate"]["lower"] <= report["accuracy"]
    # `check` gates it, alone and against the large model's prompt alone
    base = ["check", "--task", str(test), "--cache", str(cache)]
    ok = CliRunner().invoke(app, [*base, "--prompt", str(out), "--min-accuracy", "0.5",
                                  "--against", str(large)])  # fmt: skip
    assert ok.exit_code == 0 and ok.output.startswith("PASS"), ok.output
    bad = CliRunner().invoke(app, [*base, "--prompt", str(small), "--against", str(out)])
    assert bad.exit_code == 1 and "FAIL" in bad.output, bad.output


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--cost", "x=1"], "--cost 'x=1': expected NAME=IN:OUT"),
        (["--server", "nourl"], "--server 'nourl': expected NAME=http"),
        (["--server", "other=http://h:1/v1"], "--server: no step runs 'other'"),
    ],
)
def test_cli_bad_options_fail_before_any_model(
    tmp_path: Path, extra: list[str], words: str
) -> None:
    small = _prompt_file(tmp_path / "small.json", SMALL)
    large = _prompt_file(tmp_path / "large.json", LARGE)
    task = _task(tmp_path / "t.jsonl", 0, 20)
    r = run_cli(
        "cascade", "--step", str(small), "--step", str(large), "--task", str(task),
        "--cache", str(tmp_path / "c.sqlite"), *extra,
    )  # fmt: skip
    _one_line_error(r, words)


def _one_line_error(r, words: str) -> None:  # type: ignore[no-untyped-def]
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and words in lines[0], r.stderr


def test_cli_needs_two_steps_and_a_valid_file(tmp_path: Path) -> None:
    small = _prompt_file(tmp_path / "small.json", SMALL)
    task = _task(tmp_path / "t.jsonl", 0, 20)
    _one_line_error(run_cli("cascade", "--step", str(small), "--task", str(task)), "two steps")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"promptlathe_cascade": 1, "steps": [
        {"model": SMALL, "price": {"input": 1, "output": 1}, "threshold": 0.5,
         "prompt": {"instruction": "x"}},
    ]}))  # fmt: skip
    _one_line_error(run_cli("run", "--prompt", str(bad), "item 1"), "the last step always answers")
    served = tmp_path / "served.json"
    served.write_text(json.dumps({"promptlathe_cascade": 1, "steps": [
        {"model": "my-model", "price": {"input": 1, "output": 1}, "threshold": None,
         "prompt": {"instruction": "x"}},
    ]}))  # fmt: skip
    _one_line_error(run_cli("run", "--prompt", str(served), "x"), "names no base_url")
    _one_line_error(
        run_cli("run", "--prompt", str(bad), "--model", SMALL, "item 1"), "do not apply"
    )


# ---- optimize --models


def _scripted_run_one(make_lm, budgets=None):  # type: ignore[no-untyped-def]
    """``optimize_models``'s ``run_one`` on scripted models (``make_lm(name)``)."""
    from promptlathe.optimizers import Optimization, OptimizeConfig

    def run_one(settings):  # type: ignore[no-untyped-def]
        cfg = OptimizeConfig(**settings)
        if budgets is not None:
            budgets[cfg.model] = cfg.budget_calls
        lm = make_lm(cfg.model)
        proposer = ScriptedLM(respond=lambda r: "Answer yes or no about the item.")
        run = Optimization(cfg, lm=lm, proposer_lm=proposer)
        try:
            result = run.run()
            return result, {"val": run.split.val, "confirm": run.confirm, "test": run.test}
        finally:
            run.close()

    return run_one


def test_optimize_models_runs_each_model_then_fits_the_cascade(
    tmp_path: Path, scripted_models: list[str]
) -> None:
    from promptlathe.cascade import optimize_models

    budgets: dict[str, int] = {}
    scorers = {SMALL: small_scorer, LARGE: large_scorer}
    run_one = _scripted_run_one(lambda m: ScriptedLM(model_id=m, scorer=scorers[m]), budgets)
    task, test = _task(tmp_path / "t.jsonl", 0, 160), _task(tmp_path / "test.jsonl", 200, 280)
    out = tmp_path / "runs"
    settings = {"task": str(task), "test": str(test), "out": str(out), "budget_calls": 160}
    done = optimize_models(settings, [SMALL, LARGE], run_one=run_one)
    assert done.path == out / "cascade.json" and set(done.runs) == {SMALL, LARGE}
    assert budgets == {SMALL: 80, LARGE: 80}  # an equal share each
    assert (out / SMALL / "best_prompt.json").is_file()
    assert (out / LARGE / "best_prompt.json").is_file()
    data = json.loads((out / "cascade.json").read_text())
    assert data["kept"] in data["test"] and data["verdict"]
    steps, _ = read_cascade(out / "cascade.json")
    assert {s.model for s in steps} <= {SMALL, LARGE}
    # the fitting found every answer in the runs' caches or asked the model: either way it
    # opened each model once, on its own run's cache
    assert sorted(scripted_models) == [LARGE, SMALL]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--models", SMALL], "at least two models"),
        (["--models", f"{SMALL},{SMALL}"], "named twice"),
        (["--models", f"{SMALL},my-served"], "not an embedded model"),
        (["--models", f"{SMALL},my-served", "--server", "my-served=http://h:1/v1"], "no price"),
        (["--models", f"{SMALL},{LARGE}", "--cost", "other=1:1"], "'other' is not in --models"),
        (["--models", f"{SMALL},{LARGE}", "--base-url", "http://h:1/v1"], "--server NAME=URL"),
        (["--cost", f"{SMALL}=1:1"], "--cost goes with --models or --budget-cost"),
        (["--max-cost", "0.5"], "go with --models"),
    ],
)
def test_optimize_models_bad_options_fail_before_any_model(
    tmp_path: Path, extra: list[str], words: str
) -> None:
    task = _task(tmp_path / "t.jsonl", 0, 40)
    r = run_cli("optimize", "--task", str(task), "--out", str(tmp_path / "o"), *extra)
    _one_line_error(r, words)


# ---- learned gates


def _right_on_short_inputs() -> tuple[list[StepAnswer], list[StepAnswer], list[list[float]]]:
    """A small step always 0.9 sure and right exactly on short inputs; a large one always
    right at ten times the cost."""
    short = [StepAnswer("a", 0.9, 0, 0, 1.0, input_chars=10) for _ in range(20)]
    long_ = [StepAnswer("b", 0.9, 0, 0, 1.0, input_chars=400) for _ in range(20)]
    small = short + long_
    large = [StepAnswer("c", 0.6, 0, 0, 10.0, input_chars=a.input_chars) for a in small]
    return small, large, [[1.0] * 20 + [0.0] * 20, [1.0] * 40]


def test_a_gate_learns_what_the_confidence_does_not_say() -> None:
    # the small step is always 0.9 sure, and right exactly on short inputs
    small, large, scores = _right_on_short_inputs()
    short, long_ = small[:20], small[20:]
    gate = fit_gate([features(a, None) for a in small], [sc >= 1 for sc in scores[0]])
    assert gate.prob(features(short[0], None)) > 0.8 > 0.2 > gate.prob(features(long_[0], None))
    plain, _ = fit([small, large], scores, learned=False)
    learned, _ = fit([small, large], scores, learned=True)
    assert plain.policy == Policy((1,))  # the confidence cannot tell them apart
    assert learned.policy.learned and learned.accuracy == 1.0
    assert learned.cost == pytest.approx(1.0 + 10.0 / 2)
    # agreement with the previous step is a feature of later steps
    agree = features(StepAnswer(" c ", 0.5, 0, 0, 0), StepAnswer("c", 0.5, 0, 0, 0))
    assert agree[1] == 1.0 and features(small[0], None)[1] == 0.0


def test_gates_with_one_class_are_constant() -> None:
    g = fit_gate([[0.5, 0.0, 1.0], [0.9, 0.0, 2.0]], [True, True])
    assert g.weights == (0.0, 0.0, 0.0) and g.prob([0.1, 0.0, 9.0]) > 0.5


def _padded_scorer(big: bool):  # type: ignore[no-untyped-def]
    """Small: equally sure everywhere, right on short inputs only; large: always right."""

    def score(r: ScoreRequest) -> float:
        text = " ".join(m["content"] for m in r.chat_messages) if r.messages else r.prompt or ""
        i = _item(r)
        right = big or "pad" not in text
        label = r.continuation.strip()
        return -0.1 if (label == _gold(i)) == right else -2.0

    return score


def _padded(lo: int, hi: int) -> list[Example]:
    return [
        Example(id=f"e{i}", input=f"item {i}" + (" pad" * 40 if i % 3 == 0 else ""),
                targets=(_gold(i),))
        for i in range(lo, hi)
    ]  # fmt: skip


def test_cross_validation_scores_each_kind_on_examples_it_was_not_fitted_on() -> None:
    small, large, scores = _right_on_short_inputs()
    plain = cross_validate([small, large], scores, learned=False)
    learned = cross_validate([small, large], scores, learned=True)
    assert plain is not None and learned is not None
    # held out, thresholds send everything to the large step; the gate keeps the short inputs
    assert plain.answered_by == [1] * 40 and (plain.accuracy, plain.cost) == (1.0, 10.0)
    assert learned.answered_by == [0] * 20 + [1] * 20
    assert learned.accuracy == 1.0 and learned.cost < 7.0
    # a confidence that says nothing (seeded): the threshold fitted on it does worse on
    # held-out folds than on the examples it was fitted on
    rng = np.random.default_rng(1)
    noisy = [StepAnswer("a", float(rng.random()), 0, 0, 1.0) for _ in range(40)]
    right = [float(rng.random() < 0.7) for _ in range(40)]
    big = [StepAnswer("c", 0.5, 0, 0, 2.0) for _ in range(40)]
    inside, _ = fit([noisy, big], [right, [1.0] * 40], max_cost=1.6)
    held = cross_validate([noisy, big], [right, [1.0] * 40], learned=False, max_cost=1.6)
    assert held is not None and not inside.policy.single
    assert held.accuracy < inside.accuracy
    # too few examples to fold
    assert cross_validate([noisy[:3], big[:3]], [right[:3], [1.0] * 3], learned=False) is None


def test_the_learned_gate_is_kept_when_cross_validation_prefers_it(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite")
    metric = LabelMetric(LABELS)
    evaluators = [
        Evaluator(CachedLM(ScriptedLM(model_id=m, scorer=_padded_scorer(m == LARGE)), store),
                  metric, Decoding(), labels=LABELS)
        for m in (LARGE, SMALL)
    ]  # fmt: skip
    fitted = fit_cascade(
        _steps(), evaluators, metric, _padded(0, 60), _padded(60, 120), _padded(120, 180)
    )
    assert fitted.judge["policy"] == "learned" and fitted.kept.learned, fitted.judge
    # thresholds on the bare confidence found no cascade: nothing to choose between
    assert fitted.judge["cross_validated"] == {}
    assert fitted.judge["cost_ratio"] < 0.9 and fitted.judge["cascade_accuracy"] == 1.0
    assert "P(right)" in fitted.describe(fitted.kept)
    # the cascade file carries the gate, and running it routes as the fit did
    path = tmp_path / "c.json"
    prompt = Prompt(instruction="Answer yes or no.").to_dict()
    write_cascade(path, fitted.steps, [prompt, prompt], fitted.kept)
    steps, policy = read_cascade(path)
    assert policy == fitted.kept
    evs = {e.lm.model_id: e for e in evaluators}
    got = run_cascade(
        steps, policy, [evs[s.model] for s in steps], [e.input for e in _padded(120, 180)]
    )
    kept = fitted.test[fitted.describe(fitted.kept)]
    right = [a.answer == e.target for a, e in zip(got, _padded(120, 180), strict=True)]
    assert sum(right) / 60 == pytest.approx(kept["accuracy"])
    assert [a.step for a in got] == [1 if "pad" in e.input else 0 for e in _padded(120, 180)]


def test_paired_figures_resample_examples_together() -> None:
    from promptlathe.cascade._tradeoff import paired

    a = Routed([0] * 4, [1.0, 1.0, 0.0, 1.0], [1.0, 1.0, 2.0, 1.0])
    ref = Routed([1] * 4, [1.0, 0.0, 0.0, 1.0], [4.0, 4.0, 4.0, 4.0])
    f = paired("x", a, ref)
    assert f.diff == pytest.approx(0.25) and f.cost_ratio == pytest.approx(5 / 16)
    assert f.diff_ci[0] >= 0.0  # a is never worse on any example: no resample makes it so
    assert f.cost_ratio_ci[0] >= 0.25 and f.cost_ratio_ci[1] <= 0.5


# ---- a model's cheaper prompt


def _entry(pid: str, mean: float, tokens: float | None, state: str = "complete"):  # type: ignore[no-untyped-def]
    from promptlathe.optimizers._runlog import LogEntry

    prompt = Prompt(instruction=f"Answer {pid}.")
    scores = (1.0,) * round(10 * mean) + (0.0,) * (10 - round(10 * mean))
    extra = {} if tokens is None else {"tokens_per_example": tokens}
    return LogEntry(pid, "joint", "joint", prompt.to_dict(), scores, (), state, extra=extra)


def test_the_cheaper_prompt_is_the_best_at_half_the_winners_tokens_or_less() -> None:
    from promptlathe.cascade._cheaper import pick_cheaper

    entries = [
        _entry("win", 0.8, 400.0),
        _entry("near", 0.7, 300.0),  # not cheap enough: 75 % of the winner's tokens
        _entry("half", 0.5, 200.0),
        _entry("tenth", 0.5, 40.0),  # as good as "half", cheaper: the tie goes to it
        _entry("zero", 0.0, 10.0),  # never right: not offered
        _entry("untold", 0.9, None),  # its cost is unknown
    ]
    got = pick_cheaper(entries, "win", None)  # the winner's tokens read from its entry
    assert got is not None and got.prompt.instruction == "Answer tenth."
    assert (got.val, got.val_n, got.tokens, got.winner_tokens) == (0.5, 10, 40.0, 400.0)
    assert pick_cheaper(entries[:2], "win", 400.0) is None  # nothing cheap enough
    assert pick_cheaper(entries, "gone", None) is None  # the winner's cost is unknown
    winner = {"instruction": "w", "strategy": {"name": "cot", "k": 1}, "scores": {"val": 0.8}}
    file = got.prompt_file({**winner, "decode": "labels", "model": SMALL})
    assert file["instruction"] == "Answer tenth." and "strategy" not in file
    assert file["decode"] == "labels" and file["scores"] == {"val": 0.5, "val_n": 10}


def _text(r: GenerationRequest) -> str:
    return " ".join(m["content"] for m in r.chat_messages) if r.messages else r.prompt or ""


def small_answers(r: GenerationRequest) -> str:
    """Right on easy inputs only, exemplars or not."""
    i = int(re.findall(r"item (\d+)", _text(r))[-1])
    return _gold(i) if _easy(i) else LABELS[1 - LABELS.index(_gold(i))]


def large_with_demos(r: GenerationRequest) -> str:
    """Right on 9 inputs in 10 when the prompt shows exemplars; without, on easy ones only."""
    text = _text(r)
    i = int(re.findall(r"item (\d+)", text)[-1])
    shown = len(re.findall(r"item \d+", text)) > 1
    right = i % 10 != 3 if shown else _easy(i)
    return _gold(i) if right else LABELS[1 - LABELS.index(_gold(i))]


@pytest.mark.parametrize("cheaper", [True, False])
def test_optimize_models_offers_each_models_cheaper_prompt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cheaper: bool
) -> None:
    from promptlathe.cascade import optimize_models
    from promptlathe.cascade._cheaper import cheaper_prompt
    from promptlathe.optimizers import OptimizeConfig

    answers = {SMALL: small_answers, LARGE: large_with_demos}

    def make_lm(model: str) -> ScriptedLM:
        return ScriptedLM(respond=answers[model], model_id=model)

    monkeypatch.setattr(
        "promptlathe.cascade._open.open_cached",
        lambda model, _url, cache, **_kw: CachedLM(make_lm(model), Store(cache)),
    )
    run_one = _scripted_run_one(make_lm)

    task, test = _task(tmp_path / "t.jsonl", 0, 160), _task(tmp_path / "test.jsonl", 200, 280)
    out = tmp_path / "runs"
    settings = {"task": str(task), "test": str(test), "out": str(out), "budget_calls": 240,
                "decode": "generate", "optimizer": "propose,joint",
                "strategies": ["direct"]}  # fmt: skip
    done = optimize_models(settings, [SMALL, LARGE], run_one=run_one, cheaper=cheaper)
    large = done.runs[LARGE]
    assert large.best_prompt.exemplars  # the large model's winner shows exemplars
    cfg = OptimizeConfig(**{**settings, "model": LARGE, "out": str(out / LARGE)})
    offer = cheaper_prompt(large, cfg)
    assert offer is not None and len(offer.prompt.exemplars) < len(large.best_prompt.exemplars)
    assert offer.tokens <= offer.winner_tokens / 2
    by_model = [s.model for s in done.fitted.steps]
    if not cheaper:
        assert sorted(by_model) == [LARGE, SMALL] and not done.offered
        return
    assert by_model.count(LARGE) == 2 and set(done.offered) <= {SMALL, LARGE}
    assert done.offered[LARGE].prompt == offer.prompt
    (line,) = [ln for ln in done.offered_lines() if ln.startswith(LARGE)]
    assert offer.prompt.hash[:8] in line and large.best_prompt.hash[:8] in line
    steps = [s for s in done.fitted.steps if s.model == LARGE]
    assert {s.saved.prompt.hash for s in steps} == {offer.prompt.hash, large.best_prompt.hash}
    assert all(s.saved.fields == steps[0].saved.fields for s in steps)
    data = json.loads((out / "cascade.json").read_text())
    names = [s["name"] for s in data["fit"]["steps"]]
    assert f"{LARGE} ({offer.prompt.hash[:8]})" in names and set(data["test"]) >= set(names)
    read_cascade(out / "cascade.json")  # whatever was kept reads back
