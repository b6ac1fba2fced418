"""An exclusive lock on a run directory, so two processes never drive one run.

The lock is an advisory ``flock`` on ``<run>/run.lock``, which holds the owner's pid. The
kernel drops it when the process ends, even after ``kill -9``, so a stale lock never blocks a
``--resume``. (``filelock`` truncates the file before locking, which would erase the pid the
error message names; hence ``fcntl`` directly.) Worker processes that join a running search
do not take it: the main process holds it for them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from promptlathe.errors import PromptlatheError

LOCK_NAME = "run.lock"


class RunInUseError(PromptlatheError):
    """Another process holds the run directory."""


class RunLock:
    """A held lock; :meth:`release` (or process exit) frees it."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def acquire(cls, run_dir: Path) -> RunLock:
        """Create ``run_dir`` if needed and lock it, or raise a one-line error.

        Raises:
            PromptlatheError: ``run_dir`` is a file or cannot be created.
            RunInUseError: another process holds the lock (the message names its pid).
        """
        if run_dir.exists() and not run_dir.is_dir():
            raise PromptlatheError(f"--out {run_dir}: is a file, not a run directory")
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            path = run_dir / LOCK_NAME
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise PromptlatheError(
                f"--out {run_dir}: cannot use it as a run directory ({exc.strerror})"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunInUseError(
                f"{run_dir}: run in use by pid {holder}; wait for it to finish, stop it, or join "
                f"its search with: promptlathe optimize --worker --out {run_dir}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


@contextlib.contextmanager
def state_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<path>.lock`` (waiting for it): one process of a
    run at a time reads, changes and writes the file at ``path``."""
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor drops the flock
