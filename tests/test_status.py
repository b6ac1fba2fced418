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
