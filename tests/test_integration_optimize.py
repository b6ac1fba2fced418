"""A tiny real optimization (smollm2-135m, ~40 calls) through the CLI, then `run`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from promptlathe import Prompt
from tests.conftest import TEST_MODEL, first_lines, run_cli

pytestmark = pytest.mark.integration


def assert_run_reproduces(out: Path, tmp_path: Path) -> None:
    """``run`` with the run's artifact prints, for two test inputs, the answers the metric
    extracted when the run scored them (greedy decoding, a fresh cache)."""
    best = Prompt.load(out / "best_prompt.json")
    records = json.loads((out / "test_records.json").read_text())["winner"]
    assert records[0]["prompt_hash"] == best.hash
    r = run_cli(
        "run",
        "--prompt",
        str(out / "best_prompt.json"),
        records[0]["input"],
        records[1]["input"],
        "--cache",
        str(tmp_path / "fresh.sqlite"),
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [" ".join(records[i]["answer"].split()) for i in (0, 1)]


def optimize_negation(
    shared_data: Path, tmp_path: Path, *options: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``optimize`` through the CLI on APE negation (6 test examples, 8 validation, 4
    confirmation, 2 shots, 12 tokens) with ``options``; returns the process and the run."""
    test_file = first_lines(
        shared_data / "ape" / "negation.test.jsonl", tmp_path / "negation.test.jsonl", 6
    )
    out = tmp_path / "run"
    r = run_cli(
        "optimize",
        "--task",
        str(shared_data / "ape" / "negation.train.jsonl"),
        "--test",
        str(test_file),
        "--model",
        TEST_MODEL,
        "--instruction",
        "Negate the sentence.",
        "--val-size",
        "8",
        "--confirm-size",
        "4",
        "--max-shots",
        "2",
        "--max-tokens",
        "12",
        "--out",
        str(out),
        "--no-progress",
        "--strategies",
        "direct",
        *options,
    )
    return r, out


def test_optimize_cli_end_to_end_and_run_reproduces(shared_data: Path, tmp_path: Path) -> None:
    test_file = first_lines(
        shared_data / "ape" / "negation.test.jsonl", tmp_path / "negation.test.jsonl", 6
    )
    out = tmp_path / "run"
    args = [
        "optimize",
        "--task",
        str(shared_data / "ape" / "negation.train.jsonl"),
        "--test",
        str(test_file),
        "--model",
        TEST_MODEL,
        "--proposer-model",
        TEST_MODEL,
        "--instruction",
        "Negate the sentence.",
        "--budget-calls",
        "40",
        "--val-size",
        "8",
        "--confirm-size",
        "4",
        "--max-shots",
        "2",
        "--max-tokens",
        "24",
        "--out",
        str(out),
        "--no-progress",
        "--analysis-scale",
        "0.1",
        "--strategies",
        "direct",
    ]
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "plan" in r.stderr and "budget: 40 LM calls" in r.stderr
    assert "test (untouched)" in r.stdout and "best_prompt.json" in r.stdout

    result = json.loads((out / "result.json").read_text())
    assert result["calls_used"] <= 40
    assert result["test"]["n"] == 6 and result["seed_test"]["n"] == 6
    Prompt.load(out / "best_prompt.json")  # the artifact loads
    saved = json.loads((out / "best_prompt.json").read_text())
    assert saved["model"] == TEST_MODEL and saved["scores"]["test"] == result["test"]["accuracy"]

    # The trust report was written at the end, with every analysis in report.json.
    report = json.loads((out / "report.json").read_text())
    assert report["significance"]["n"] == 6
    assert report["bound"]["n"] == result["best"]["val_n"] and report["bound"]["complexity"] > 0
    assert report["format_spread"]["calls"] <= 16 and len(report["format_spread"]["per_format"]) > 1
    assert "value" in report["posix"]
    html = (out / "report.html").read_text()
    assert "Is the winner really better?" in html and report["significance"]["verdict"][:20] in html

    # `run` applies the artifact and reproduces the recorded test outputs (greedy decoding).
    assert_run_reproduces(out, tmp_path)

    # The same command again with --resume makes no new call.
    r3 = run_cli(*args, "--resume")
    assert r3.returncode == 0, r3.stderr[-3000:]
    again = json.loads((out / "result.json").read_text())
    assert again["calls_used"] == result["calls_used"]
    assert again["best_prompt"] == result["best_prompt"]


def test_two_workers_both_search_and_never_evaluate_a_prompt_twice(
    shared_data: Path, tmp_path: Path
) -> None:
    import optuna

    from promptlathe.store import Store

    out = tmp_path / "run"
    # six test examples: the test stage is not what is tested here
    test_file = first_lines(shared_data / "ape" / "negation.test.jsonl", tmp_path / "t.jsonl", 6)
    r = run_cli(
        "optimize",
        "--task",
        str(shared_data / "ape" / "negation.train.jsonl"),
        "--test",
        str(test_file),
        "--model",
        TEST_MODEL,
        "--proposer-model",
        TEST_MODEL,
        "--instruction",
        "Negate the sentence.",
        "--budget-calls",
        "120",
        "--val-size",
        "8",
        "--confirm-size",
        "4",
        "--max-shots",
        "2",
        "--max-tokens",
        "16",
        "--workers",
        "2",
        "--optimizer",  # the workers are under test, not the optimizer
        "propose,joint",
        "--no-report",
        "--out",
        str(out),
        "--no-progress",
        "--strategies",
        "direct",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / "worker-1.log").is_file()

    study = optuna.load_study(
        study_name="promptlathe-joint", storage=f"sqlite:///{out / 'study.db'}"
    )
    evaluated = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished() and "duplicate_of" not in t.user_attrs and "pid" in t.user_attrs
    ]
    assert len({t.user_attrs["pid"] for t in evaluated}) == 2, "both processes ran trials"
    # A prompt is evaluated once: no two races of it run to the end ...
    # (When the shared budget runs out, each process's last race fails on it, most often
    # before any call; two such trials may hold the same prompt, the second resuming from
    # the cache what the first had scored, as a resumed run does.)
    raced = [t for t in evaluated if t.state != optuna.trial.TrialState.FAIL]
    hashes = [t.user_attrs["prompt_hash"] for t in raced]
    assert len(hashes) == len(set(hashes)), "a prompt was raced to the end twice"
    # ... and every paid call is a distinct request (the budget reserves a call when it is
    # made, the charges table records it once per request): no call was paid for twice.
    store = Store(out / "calls.sqlite")
    assert store.reserved("lm_calls") == store.count_charges("lm_calls") > 0
    store.close()
    failed = [t for t in evaluated if t.state == optuna.trial.TrialState.FAIL]
    assert all("calls_at_end" in t.user_attrs for t in failed), "a trial failed, not on the budget"
    assert json.loads((out / "result.json").read_text())["calls_used"] <= 120


def test_reflect_cli_end_to_end_and_run_reproduces(shared_data: Path, tmp_path: Path) -> None:
    """``--optimizer reflect`` on the real model: the proposer is shown the seed's failures,
    the artifact loads and ``run`` reproduces its test outputs (the report is tested with the
    default optimizer above)."""
    from promptlathe.optimizers import RunLog
    from promptlathe.store import Store

    r, out = optimize_negation(
        shared_data,
        tmp_path,
        "--proposer-model",
        TEST_MODEL,
        "--optimizer",
        "reflect,joint",
        "--budget-calls",
        "50",
        "--no-report",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "optimizer: reflect,joint" in r.stderr and "reflect" in r.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["optimizer"] == "reflect,joint" and result["calls_used"] <= 50
    assert any("reflection rounds" in n for n in result["notes"])
    cands = json.loads((out / "candidates.json").read_text())
    assert cands["v"] == 2 and cands["reflect"]["rounds"], "no reflection round ran"
    assert all(r["outcome"] for r in cands["reflect"]["rounds"])
    store = Store(out / "calls.sqlite")
    log = RunLog(store).entries()
    store.close()
    assert log[0].source == "seed" and log[0].state == "complete"

    assert_run_reproduces(out, tmp_path)


def test_optimize_with_strategies_end_to_end_and_run_reproduces(
    shared_data: Path, tmp_path: Path
) -> None:
    """``--strategies all`` on the real model and a multiple-choice task: several strategies
    are raced with their token costs logged, the report has the cost comparison, and
    ``run`` with the exported prompt executes its strategy and reproduces the test answers."""
    from promptlathe.optimizers import RunLog
    from promptlathe.store import Store

    rows = (shared_data / "bbh" / "disambiguation_qa.test.jsonl").read_text().splitlines()
    task, test_file = tmp_path / "dqa.jsonl", tmp_path / "dqa.test.jsonl"
    task.write_text("\n".join(rows[:48]) + "\n")
    test_file.write_text("\n".join(rows[48:52]) + "\n")
    out = tmp_path / "run"
    r = run_cli(
        "optimize",
        "--task",
        str(task),
        "--test",
        str(test_file),
        "--model",
        TEST_MODEL,
        "--proposer-model",
        TEST_MODEL,
        "--strategies",
        "all",
        "--optimizer",  # the strategies are under test, not the optimizer
        "propose,joint",
        "--reasoning-tokens",
        "24",
        "--budget-calls",
        "120",
        "--val-size",
        "8",
        "--confirm-size",
        "4",
        "--max-shots",
        "2",
        "--max-tokens",
        "8",
        "--out",
        str(out),
        "--no-progress",
        "--no-report",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "strategies: direct, " in r.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["calls_used"] <= 120
    store = Store(out / "calls.sqlite")
    entries = RunLog(store).entries()
    store.close()
    raced = {e.to_prompt().strategy.name for e in entries}
    assert len(raced) >= 3, raced
    assert all((e.tokens_per_example or 0) > 0 for e in entries if e.scores)
    records = json.loads((out / "test_records.json").read_text())["winner"]
    assert all(rec["tokens"] > 0 for rec in records)
    assert_run_reproduces(out, tmp_path)


def test_ease_cli_end_to_end_and_run_reproduces(shared_data: Path, tmp_path: Path) -> None:
    """``--optimizer ease`` on the real model: ordered demo sets of up to ``--max-shots``
    exemplars are pulled and raced, and ``run`` reproduces the winner's test outputs."""
    from promptlathe.optimizers import RunLog
    from promptlathe.store import Store

    r, out = optimize_negation(
        shared_data, tmp_path, "--optimizer", "ease", "--budget-calls", "60", "--no-report"
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "optimizer: ease" in r.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["optimizer"] == "ease" and result["calls_used"] <= 60
    store = Store(out / "calls.sqlite")
    raced = [e for e in RunLog(store).entries() if e.source == "ease"]
    store.close()
    assert raced and all(len(e.prompt["exemplars"]) <= 2 for e in raced)
    assert_run_reproduces(out, tmp_path)
