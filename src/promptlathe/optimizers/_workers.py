"""Worker processes: extra processes on this machine that join the running stage's shared
search (:meth:`Optimizer.join`) through the run's storage, so ``optimize(..., workers=2)``
works from Python as from the command line. Workers on other machines join by hand with
``promptlathe optimize --worker`` and the same ``--storage``/``--study``."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from promptlathe.errors import PromptlatheError
from promptlathe.optimizers._config import OptimizeConfig
from promptlathe.store import Store, is_server_url

Worker = tuple[subprocess.Popen[bytes], Path]


def worker_config(out: Path, storage: str | None, study: str) -> OptimizeConfig:
    """The settings of the run a worker joins: the run directory's config.json, or (on
    another machine) the copy the main process left in the shared --storage database."""
    cfg_path = out / "config.json"
    if cfg_path.is_file():
        return replace(OptimizeConfig.load(cfg_path), out=str(out))
    if not is_server_url(storage):
        raise PromptlatheError(
            f"{cfg_path}: no run to join; start the main process first (a worker on another "
            "machine joins through a database server: the same --storage and --study)"
        )
    assert storage is not None
    store = Store(storage, namespace=f"{study}/")
    try:
        doc = store.get_document("config")
    finally:
        store.close()
    if doc is None:
        raise PromptlatheError(
            f"--study {study}: no such run in the --storage database; start the main process "
            "first with the same --storage and --study"
        )
    return replace(
        OptimizeConfig.from_dict(doc, f"run {study!r} in --storage"), out=str(out), storage=storage
    )


def spawn(
    out: str, storage: str | None, metric: str | None, threads: int | None, n: int
) -> list[Worker]:
    """Start ``n`` extra processes joining the run in ``out``. Each writes its messages to
    ``<out>/worker-<i>.log`` (so a failure can be read there)."""
    procs: list[Worker] = []
    for i in range(1, n + 1):
        cmd = [sys.executable, "-m", "promptlathe.cli", "optimize", "--worker", "--out", out]
        if storage:
            cmd += ["--storage", storage]
        if metric:
            cmd += ["--metric", metric]
        if threads:
            cmd += ["--threads", str(threads)]
        log_path = Path(out) / f"worker-{i}.log"
        with log_path.open("wb") as fh:
            procs.append((subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT), log_path))
    return procs


def wait(procs: list[Worker]) -> None:
    """Wait for the workers; one that failed fails the run, naming its log."""
    failed = []
    for p, log_path in procs:
        code = p.wait()
        if code != 0:
            lines = log_path.read_text(errors="replace").strip().splitlines()
            last = lines[-1] if lines else "no output"
            failed.append(f"exit {code} ({log_path}: {last})")
    if failed:
        raise PromptlatheError(
            f"{len(failed)} of {len(procs)} worker processes failed: {'; '.join(failed)}; "
            "every finished call is saved, rerun with --resume"
        )


def stop(procs: list[Worker]) -> None:
    """Terminate the workers still running (after an error or Ctrl-C in the main process)."""
    for p, _log in procs:
        if p.poll() is None:
            p.terminate()
