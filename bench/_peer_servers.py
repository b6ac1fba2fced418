"""The model servers of the comparison bench (bench/compare.py): one ``llama_cpp.server``
process per model, whose access log counts every completion request any client made."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m llama_cpp.server`` on a free port; counts completion requests in its log.

    uvicorn writes one access-log line per request (``"POST /v1/chat/completions HTTP/1.1"``),
    including retried and failed ones, so the count covers every call any client made.
    """

    def __init__(self, model_path: Path, alias: str, n_ctx: int, log_path: Path) -> None:
        self.alias = alias
        self.log_path = log_path
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
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
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self._offset = 0
        self._posts = 0

    def start(self, timeout: float = 180.0) -> None:
        with self.log_path.open("wb") as fh:
            self.proc = subprocess.Popen(self._cmd, stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"model server exited early:\n{self._tail()}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"model server did not start within {timeout:.0f} s:\n{self._tail()}")

    def stop(self) -> None:
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
        """Completion requests logged so far (waits briefly for the log to settle)."""
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

    def posts(self) -> int:
        return self.task.posts() + (self.proposer.posts() if self.proposer else 0)

    def proposer_posts(self) -> int:
        return self.proposer.posts() if self.proposer else 0

    def check_alive(self) -> None:
        self.task.check_alive()
        if self.proposer:
            self.proposer.check_alive()
