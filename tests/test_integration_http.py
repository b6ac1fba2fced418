"""The HTTP backend against a real OpenAI-compatible server (llama-cpp-python's) on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from promptlathe import Decoding, Evaluator, Exemplar, Prompt, get_metric
from promptlathe.errors import ModelError
from promptlathe.lms._http import OpenAICompatLM
from promptlathe.lms._llama import LlamaCppLM
from promptlathe.tasks import load_examples
from tests.conftest import TEST_MODEL, first_lines, run_cli

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(test_model_path: Path, tmp_path_factory: pytest.TempPathFactory):
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(test_model_path),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
                "--model_alias",
                TEST_MODEL,
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited early: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("server did not start within 120 s")
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_http_backend_matches_embedded_greedy_outputs(
    server: str, shared_data: Path, test_model_path: Path
) -> None:
    examples = load_examples(shared_data / "ape" / "negation.test.jsonl")[:4]
    prompt = Prompt(
        instruction="Negate the sentence.",
        exemplars=(Exemplar("Zork is a game.", "Zork is not a game."),),
    )
    metric, dec = get_metric("normalized"), Decoding(max_tokens=24)
    http = OpenAICompatLM(server, TEST_MODEL, concurrency=2)
    local = LlamaCppLM(test_model_path, name=TEST_MODEL, n_ctx=2048)
    try:
        via_http = Evaluator(http, metric, dec).evaluate(prompt, examples)
        via_local = Evaluator(local, metric, dec).evaluate(prompt, examples)
    finally:
        http.close()
        local.close()
    assert [r.output.strip() for r in via_http.records] == [
        r.output.strip() for r in via_local.records
    ]
    assert via_http.calls == 4 and via_http.prompt_tokens > 0


def test_http_completion_mode_works(server: str) -> None:
    lm = OpenAICompatLM(server, TEST_MODEL)
    try:
        from promptlathe.lms import GenerationRequest

        (g,) = lm.generate([GenerationRequest.text("1, 2, 3, 4,", max_tokens=6)])
    finally:
        lm.close()
    assert g.text.strip() and g.completion_tokens > 0


def test_unreachable_server_is_a_clear_error(tmp_path: Path, shared_data: Path) -> None:
    port = _free_port()  # nothing listens there
    lm = OpenAICompatLM(f"http://127.0.0.1:{port}/v1", "x", max_retries=1, backoff=0.01)
    from promptlathe.lms import GenerationRequest

    with pytest.raises(ModelError, match="unreachable"):
        lm.generate([GenerationRequest.text("hi")])
    lm.close()
    r = run_cli(
        "eval",
        "--task",
        str(shared_data / "ape" / "negation.test.jsonl"),
        "--instruction",
        "x",
        "--base-url",
        f"http://127.0.0.1:{port}/v1",
        "--model",
        "x",
        "--retries",
        "0",
        "--limit",
        "2",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--no-progress",
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"127.0.0.1:{port}" in r.stderr and "unreachable" in r.stderr


class _FlakyProxy:
    """A proxy in front of the server: of every 10 requests it answers 2 with 503, drops 1
    connection without an answer and delays 1 (a fixed cycle, so the drill is repeatable)."""

    def __init__(self, upstream: str) -> None:
        import http.server
        import itertools
        import threading

        self.faults = {"503": 0, "drop": 0, "delay": 0, "ok": 0}
        counter, lock, faults = itertools.count(), threading.Lock(), self.faults
        client = httpx.Client(timeout=120)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    roll = next(counter) % 10 / 10
                if roll < 0.2:
                    faults["503"] += 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if roll < 0.3:
                    faults["drop"] += 1
                    self.close_connection = True
                    self.connection.shutdown(2)  # no status line: a dropped connection
                    return
                if roll < 0.4:
                    faults["delay"] += 1
                    time.sleep(0.5)
                faults["ok"] += 1
                resp = client.post(
                    upstream + self.path.removeprefix("/v1"),
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                self.send_response(resp.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self._client = client
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()


def test_a_failing_proxy_gives_the_same_outputs_as_a_clean_run(
    server: str, shared_data: Path
) -> None:
    examples = load_examples(shared_data / "ape" / "negation.test.jsonl")[:10]
    prompt = Prompt("Negate the sentence.")
    metric, dec = get_metric("normalized"), Decoding(max_tokens=16)
    proxy = _FlakyProxy(server)
    clean = OpenAICompatLM(server, TEST_MODEL, concurrency=2)
    flaky = OpenAICompatLM(proxy.url, TEST_MODEL, concurrency=2, max_retries=10, backoff=0.05)
    try:
        want = Evaluator(clean, metric, dec).evaluate(prompt, examples)
        got = Evaluator(flaky, metric, dec).evaluate(prompt, examples)
    finally:
        clean.close()
        flaky.close()
        proxy.close()
    assert [r.output for r in got.records] == [r.output for r in want.records]
    assert proxy.faults["503"] and proxy.faults["drop"], proxy.faults


def test_proposer_on_a_server_while_the_task_model_is_embedded(
    server: str, shared_data: Path, tmp_path: Path
) -> None:
    """--proposer-base-url: the instructions come from the server, the task answers from the
    embedded model; the key comes from $PROMPTLATHE_PROPOSER_API_KEY and is never stored."""
    import json
    import sqlite3

    out = tmp_path / "run"
    r = run_cli(
        "optimize",
        "--task", str(shared_data / "ape" / "negation.train.jsonl"),
        "--test", str(first_lines(
            shared_data / "ape" / "negation.test.jsonl", tmp_path / "test.jsonl", 6
        )),
        "--model", TEST_MODEL,
        "--proposer-model", TEST_MODEL, "--proposer-base-url", server,
        "--budget-calls", "80", "--val-size", "8", "--confirm-size", "4",
        "--max-shots", "2", "--max-tokens", "16", "--no-report", "--no-progress",
        "--strategies", "direct",
        "--out", str(out),
        env={"PROMPTLATHE_PROPOSER_API_KEY": "sk-proposer-secret"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "given by --proposer-model, on --proposer-base-url" in r.stderr
    with sqlite3.connect(out / "calls.sqlite") as conn:
        by_model = dict(
            conn.execute("SELECT model_id, COUNT(*) FROM calls GROUP BY model_id").fetchall()
        )
    http = {m: n for m, n in by_model.items() if m.startswith("http:")}
    gguf = {m: n for m, n in by_model.items() if m.startswith("gguf:")}
    assert http and gguf, by_model  # proposals from the server, answers from the embedded model
    assert all(server.rstrip("/") in m for m in http)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["proposer_base_url"].startswith("http://127.0.0.1")
    for f in out.iterdir():
        if f.is_file():
            assert b"sk-proposer-secret" not in f.read_bytes(), f.name
