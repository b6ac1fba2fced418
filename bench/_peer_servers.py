"""The model servers of the comparison bench (bench/compare.py): one ``llama_cpp.server``
process per model, reached through a recording proxy (bench/_replay.py) that counts every
completion request any client made and lets a killed run resume without repeating one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from _pauses import PauseLog
from _replay import ReplayProxy, Store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m llama_cpp.server`` on a free port, behind a :class:`ReplayProxy`.

    Clients use :attr:`base_url` (the proxy's); :meth:`posts` counts their completion requests,
    replayed ones included. Before the proxy is up, uvicorn's access log (one line per
    request, ``"POST /v1/chat/completions HTTP/1.1"``, retried and failed ones too) counts what
    reached the server: :meth:`server_posts`.
    """

    def __init__(
        self,
        model_path: Path,
        alias: str,
        n_ctx: int,
        log_path: Path,
        store: Store,
        pauses: PauseLog | None = None,
    ) -> None:
        self.alias = alias
        self.pauses = pauses or PauseLog(None)
        self.log_path = log_path
        self.port = _free_port()
        self.direct_url = f"http://127.0.0.1:{self.port}"
        self.store = store
        self.proxy: ReplayProxy | None = None
        self._cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(n_ctx),
            "--model_alias",
            alias,
            # llama_cpp.server decodes on half the cores by default (prompts on all of them);
            # promptlathe's embedded backend uses every core for both, and so must the peers.
            "--n_threads",
            str(os.cpu_count() or 1),
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self._offset = 0
        self._posts = 0

    def start(self, timeout: float = 180.0) -> None:
        with self.log_path.open("wb") as fh:
            self.proc = subprocess.Popen(self._cmd, stdout=fh, stderr=subprocess.STDOUT)
        deadline, started = time.monotonic() + timeout, time.time()
        # a logged pause of the run is not time spent waiting for the server
        while time.monotonic() < deadline + self.pauses.within(started, time.time()):
            if self.proc.poll() is not None:
                raise RuntimeError(f"model server exited early:\n{self._tail()}")
            try:
                if httpx.get(f"{self.direct_url}/v1/models", timeout=2).status_code == 200:
                    self.proxy = ReplayProxy(self.direct_url, self.store, self.alias, self.pauses)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"model server did not start within {timeout:.0f} s:\n{self._tail()}")

    @property
    def base_url(self) -> str:
        """Where clients send requests: the proxy once the server is up."""
        return self.proxy.base_url if self.proxy is not None else f"{self.direct_url}/v1"

    def begin(self, scope: str) -> None:
        """Requests from now on belong to ``scope`` (a task and method): what the proxy
        recorded for it in an earlier sitting is replayed."""
        if self.proxy is not None:
            self.proxy.begin(scope)

    def replayed_seconds(self) -> float:
        """What the answers replayed so far took when the server first gave them."""
        return self.proxy.replayed_seconds if self.proxy is not None else 0.0

    def replayed_calls(self) -> int:
        """Completion requests answered so far from an earlier sitting's record."""
        return self.proxy.replayed if self.proxy is not None else 0

    def replayed_times(self) -> list[float]:
        """The seconds of each replayed answer, in the order they were replayed."""
        return list(self.proxy.replayed_times) if self.proxy is not None else []

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"model server is not running:\n{self._tail()}")

    def _tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def posts(self) -> int:
        """Completion requests clients made so far, answered or replayed."""
        return self.proxy.calls if self.proxy is not None else self.server_posts()

    def server_posts(self) -> int:
        """Completion requests the server logged so far (waits briefly for the log to
        settle)."""
        last = -1
        for _ in range(20):
            with self.log_path.open("rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
            end = chunk.rfind(b"\n") + 1  # only whole lines
            for line in chunk[:end].splitlines():
                if b'"POST /v1/' in line and b"completions" in line:
                    self._posts += 1
            self._offset += end
            if self._posts == last:
                break
            last = self._posts
            time.sleep(0.15)
        return self._posts


class Servers:
    """The task model's server and, when another model proposes, the proposer's."""

    def __init__(self, task: Server, proposer: Server | None) -> None:
        self.task = task
        self.proposer = proposer

    def all(self) -> list[Server]:
        return [self.task] + ([self.proposer] if self.proposer else [])

    def posts(self) -> int:
        return sum(s.posts() for s in self.all())

    def begin(self, scope: str) -> None:
        for s in self.all():
            s.begin(scope)

    def replayed_seconds(self) -> float:
        return sum(s.replayed_seconds() for s in self.all())

    def replayed_calls(self) -> int:
        return sum(s.replayed_calls() for s in self.all())

    def proposer_posts(self) -> int:
        return self.proposer.posts() if self.proposer else 0

    def check_alive(self) -> None:
        self.task.check_alive()
        if self.proposer:
            self.proposer.check_alive()
