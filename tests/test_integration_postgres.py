"""Two machines' worth of processes on one PostgreSQL server: one study, one budget, one cache.

The main process and a worker run in separate run directories (as on two machines); the
worker finds the run through the database alone. Real model (smollm2-135m), real server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptlathe.store import Store
from tests.conftest import TEST_MODEL, first_lines

pytestmark = pytest.mark.integration

STUDY = "pgtwo"
BUDGET = 120


def _cli(*args: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "promptlathe.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        env={**os.environ, "COLUMNS": "200"},
    )


def test_two_run_directories_share_study_budget_and_cache(
    shared_data: Path, tmp_path: Path, postgres_url: str
) -> None:
    import optuna

    main_dir, worker_dir = tmp_path / "machine-a", tmp_path / "machine-b"
    # six test examples: the test stage is not what is tested here
    test_file = first_lines(shared_data / "ape" / "negation.test.jsonl", tmp_path / "t.jsonl", 6)
    common = ["--storage", postgres_url, "--study", STUDY, "--threads", "1", "--no-progress"]
    main = _cli(
        "optimize",
        "--task", str(shared_data / "ape" / "negation.train.jsonl"),
        "--test", str(test_file),
        "--model", TEST_MODEL, "--proposer-model", TEST_MODEL,
        "--instruction", "Negate the sentence.",
        "--budget-calls", str(BUDGET), "--val-size", "8", "--confirm-size", "4",
        "--max-shots", "2", "--max-tokens", "16", "--no-report", "--strategies", "direct",
        "--optimizer", "propose,joint",  # the shared store is under test, not the optimizer
        "--out", str(main_dir), *common,
        log=tmp_path / "main.log",
    )  # fmt: skip
    store = Store(postgres_url, namespace=f"{STUDY}/")
    try:
        # The worker joins once the main process has raced the instructions (as a second
        # machine would be started by hand); it has no run directory of its own yet.
        deadline = time.monotonic() + 600
        while "joint" not in (store.get_document("candidates") or {}):
            assert main.poll() is None, (tmp_path / "main.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the main process never reached the search"
            time.sleep(0.5)
        worker = _cli(
            "optimize", "--worker", "--out", str(worker_dir), *common,
            log=tmp_path / "worker.log",
        )  # fmt: skip
        assert worker.wait(900) == 0, (tmp_path / "worker.log").read_text()[-3000:]
        assert main.wait(900) == 0, (tmp_path / "main.log").read_text()[-3000:]
        # One budget: never exceeded, and every reserved call was a distinct paid call, so
        # no call was made twice (a second machine making the same call would reserve twice
        # but could record the charge only once).
        result = json.loads((main_dir / "result.json").read_text())
        assert result["calls_used"] <= BUDGET
        assert store.reserved("lm_calls") == store.count_charges("lm_calls")
        # One study: both processes ran trials, and no prompt was raced to the end twice
        # (each process's last trial may fail on the spent budget, two of them holding the
        # same prompt: neither evaluated it).
        study = optuna.load_study(study_name=f"{STUDY}-joint", storage=postgres_url)
        evaluated = [
            t
            for t in study.get_trials(deepcopy=False)
            if t.state.is_finished()
            and "duplicate_of" not in t.user_attrs
            and "pid" in t.user_attrs
        ]
        assert len({t.user_attrs["pid"] for t in evaluated}) == 2, "both processes ran trials"
        fail = optuna.trial.TrialState.FAIL
        hashes = [t.user_attrs["prompt_hash"] for t in evaluated if t.state != fail]
        assert len(hashes) == len(set(hashes)), "a prompt was raced to the end twice"
        # Nothing of the run lives in the worker's directory but its data check.
        assert not (worker_dir / "calls.sqlite").exists()
        assert not (main_dir / "calls.sqlite").exists()
        # The database password never reaches the run directory (here: none was typed).
        saved = json.loads((main_dir / "config.json").read_text())
        assert saved["storage"].startswith("postgresql://promptlathe@127.0.0.1")
    finally:
        for p in (main,):
            if p.poll() is None:
                p.kill()
        store.close()
