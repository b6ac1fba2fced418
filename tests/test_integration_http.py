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
from tests.conftest import TEST_MODEL, run_cli

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
