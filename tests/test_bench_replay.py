"""The comparison bench's recording proxy (bench/_replay.py): a killed run's second sitting
gets the answers of the first without a model call, in the same order, and counts them."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

# appended, not prepended: bench/ holds scripts named like packages (cascade, trust, ...)
sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))
from _peer_data import make_row  # noqa: E402
from _replay import ReplayProxy, Store, request_key  # noqa: E402
from compare import split_replayed  # noqa: E402


class Upstream:
    """A stand-in model server: each completion answer carries a running number, so a
    replayed answer is told apart from a new one; ``fail`` makes the next answer a 500."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.active = 0
        self.most_active = 0  # the most requests it was ever answering at once
        up = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                up.active += 1
                up.most_active = max(up.most_active, up.active)
                time.sleep(0.02)
                up.active -= 1
                up.calls += 1
                status = 500 if up.fail else 200
                up.fail = False
                out = json.dumps({"n": up.calls, "echo": json.loads(body)}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def do_GET(self) -> None:  # noqa: N802
                out = b'{"data": []}'
                self.send_response(200)
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.server.shutdown()


def ask(proxy: ReplayProxy, prompt: str) -> dict[str, Any]:
    r = httpx.post(f"{proxy.base_url}/chat/completions", json={"messages": prompt, "t": 0})
    return {"status": r.status_code, **r.json()}


def test_a_second_sitting_replays_the_first_in_order_then_goes_on(
    upstream: Upstream, tmp_path: Path
) -> None:
    store = Store(tmp_path / "replay.sqlite")
    first = ReplayProxy(upstream.url, store, "task")
    first.begin("ape/x|capo")
    answers = [ask(first, p)["n"] for p in ("a", "a", "b")]  # "a" asked twice: two answers
    assert answers == [1, 2, 3] and upstream.calls == 3
    assert (first.calls, first.replayed) == (3, 0)
    first.close()  # the sitting is killed here

    second = ReplayProxy(upstream.url, store, "task")
    second.begin("ape/x|capo")
    again = [ask(second, p)["n"] for p in ("a", "a", "b")]
    assert again == [1, 2, 3] and upstream.calls == 3  # the same answers, no model call
    assert ask(second, "c")["n"] == 4  # past what the first sitting asked: a new call
    assert (second.calls, second.replayed) == (4, 3)
    assert second.replayed_seconds > 0
    # another method asking the same thing is not served the capo run's answers
    second.begin("ape/x|dspy-bfrs")
    assert ask(second, "a")["n"] == 5
    # listing the models reaches the server but is not a model call
    assert httpx.get(f"{second.base_url}/models").status_code == 200
    assert second.calls == 5
    second.close()
    store.close()


def test_a_failed_answer_is_not_recorded(upstream: Upstream, tmp_path: Path) -> None:
    store = Store(tmp_path / "replay.sqlite")
    proxy = ReplayProxy(upstream.url, store, "task")
    proxy.begin("s")
    upstream.fail = True
    assert ask(proxy, "a")["status"] == 500
    proxy.begin("s")  # the run starts again
    assert ask(proxy, "a") == {"status": 200, "n": 2, "echo": {"messages": "a", "t": 0}}
    proxy.close()
    store.close()


def test_requests_are_the_same_whatever_the_key_order() -> None:
    a = json.dumps({"x": 1, "y": [1, 2]}).encode()
    b = json.dumps({"y": [1, 2], "x": 1}).encode()
    path = "/v1/completions"
    assert request_key("POST", path, a) == request_key("POST", path, b)
    assert request_key("POST", path, a) != request_key("POST", "/v1/chat/completions", a)


def test_requests_sent_together_reach_the_server_one_at_a_time(
    upstream: Upstream, tmp_path: Path
) -> None:
    """As llama_cpp.server answers them: each stored time is then the answer's own, not its
    wait behind the others, so replayed seconds add up to what the answers took."""
    store = Store(tmp_path / "replay.sqlite")
    proxy = ReplayProxy(upstream.url, store, "task")
    proxy.begin("s")
    threads = [threading.Thread(target=ask, args=(proxy, str(i))) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert upstream.calls == 6 and upstream.most_active == 1
    proxy.close()
    again = ReplayProxy(upstream.url, store, "task")
    again.begin("s")
    for i in range(6):
        ask(again, str(i))
    assert again.replayed == 6 and len(again.replayed_times) == 6
    assert all(0.02 <= t < 0.5 for t in again.replayed_times)
    again.close()
    store.close()


def test_replayed_seconds_past_the_optimization_calls_are_the_tests() -> None:
    row = make_row("t", "promptlathe", [1.0] * 3, opt_calls=4, test_calls=3,
                   opt_seconds=0.0, test_seconds=0.0)  # fmt: skip
    # 4 optimization calls (one of 3 s on the proposer), 3 test calls, 2 of the seed's test:
    # all replayed, 22 s in all
    task_times = [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 5.0, 5.0]
    assert split_replayed(task_times, 22.0, 9, row) == (6.0, 6.0)
    # a rerun stopped inside the optimization: nothing of the test was replayed
    assert split_replayed(task_times[:2], 3.0, 3, row) == (3.0, 0.0)
