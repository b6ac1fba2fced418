"""``promptlathe status``: a run's progress from its directory, while running or after."""

from __future__ import annotations

from pathlib import Path

from promptlathe.optimizers import Optimization
from promptlathe.optimizers._lock import RunLock
from tests.conftest import run_cli
from tests.test_optimize import _cfg, make_lm


def test_status_of_a_stopped_a_running_and_a_finished_run(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, budget_calls=150)
    run = Optimization(cfg, lm=make_lm())
    run.prepare()  # stages up to the shared search, then stop (as a killed run would)
    used = run.budget.used
    run.close()
    r = run_cli("status", cfg.out)
    assert r.returncode == 0, r.stderr
    assert "stopped (resume it" in r.stdout and f"calls: {used} of 150" in r.stdout
    assert "candidates raced:" in r.stdout and "best so far:" in r.stdout
    assert "elapsed:" in r.stdout

    lock = RunLock.acquire(Path(cfg.out))  # another process runs it
    try:
        r = run_cli("status", cfg.out)
        assert ": running" in r.stdout and "projected for the search" in r.stdout
    finally:
        lock.release()

    again = Optimization(cfg, resume=True, lm=make_lm())
    again.run()
    again.close()
    r = run_cli("status", cfg.out)
    assert ": finished" in r.stdout and "calls: " in r.stdout
    assert "best on validation:" in r.stdout and "  winner: " in r.stdout
    assert "test " in r.stdout.split("  winner: ")[1]
    (Path(cfg.out) / "result.json").write_text("{broken")  # the rest of the status holds
    r = run_cli("status", cfg.out)
    assert r.returncode == 0 and "calls: " in r.stdout
    assert "winner: not readable: " in r.stdout and "result.json" in r.stdout


def test_status_of_a_directory_that_is_no_run_is_one_line(tmp_path: Path) -> None:
    r = run_cli("status", str(tmp_path))
    assert r.returncode == 2 and "not an optimize run directory" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_status_calls_a_race_the_budget_cut_short_stopped_not_failed(tmp_path: Path) -> None:
    from promptlathe.optimizers._rundir import run_store
    from promptlathe.optimizers._runlog import LogEntry, RunLog
    from promptlathe.prompts import Prompt

    cfg = _cfg(tmp_path, budget_calls=150)
    run = Optimization(cfg, lm=make_lm())
    run.prepare()
    run.close()
    store = run_store(cfg, Path(cfg.out))
    try:
        prompt = Prompt(instruction="A race the budget cut short.")
        RunLog(store).write(
            LogEntry(
                id=prompt.hash,
                optimizer="joint",
                source="joint",
                prompt=prompt.to_dict(),
                scores=(1.0, 0.0),
                rungs=(),
                state="failed",
            )
        )
    finally:
        store.close()
    r = run_cli("status", cfg.out)
    assert r.returncode == 0, r.stderr
    assert "(last raced: joint, stopped by the budget)" in r.stdout
    raced = next(line for line in r.stdout.splitlines() if "candidates raced:" in line)
    assert "stopped by the budget" in raced and "failed" not in r.stdout


def test_the_report_counts_races_the_budget_cut_short_as_stopped() -> None:
    from promptlathe.report._build import _search_note

    note = _search_note([], {"complete": 2, "failed": 1, "pruned": 4})
    assert note == (
        "7 trials: 2 complete, 1 stopped by the budget, 4 pruned (pruned: stopped early by racing)."
    )
