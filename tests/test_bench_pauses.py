"""The comparison bench leaves logged pauses of the run out of its timings
(bench/_pauses.py): out of a recorded answer's seconds, and out of a row's phases."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

# appended, not prepended: bench/ holds scripts named like packages (cascade, trust, ...)
sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))
from _pauses import PauseLog, parse_pauses  # noqa: E402
from _peer_data import make_row  # noqa: E402
from _replay import ReplayProxy, Store  # noqa: E402
from compare import leave_out_pauses  # noqa: E402

from tests.test_bench_replay import Upstream  # noqa: E402


def line(start: float, seconds: float, what: str = "pytest") -> str:
    iso = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return f"{iso} paused {seconds:.1f} s: {what}\n"


def test_pause_lines_are_read_in_either_precision_and_other_lines_ignored() -> None:
    text = (
        "2026-12-07T09:42:26Z paused 339 s: bash -c for i in 1 2 3\n"
        "--- a restart\n"
        "2026-12-07T09:49:01.500Z paused 40.5 s: python -m pytest\n"
    )
    (a0, a1), (b0, b1) = parse_pauses(text)
    assert a1 - a0 == 339 and b1 - b0 == 40.5
    assert b0 - a0 == 6 * 60 + 35.5


def test_paused_seconds_inside_an_interval(tmp_path: Path) -> None:
    log = tmp_path / "pauses.log"
    assert PauseLog(log).within(0, 1e12) == 0  # no file yet: no pause
    log.write_text(line(1000, 10) + line(2000, 30))
    pauses = PauseLog(log)
    assert pauses.within(0, 5000) == 40
    assert pauses.within(1005, 2010) == 5 + 10  # the end of one, the start of the other
    assert pauses.within(1100, 1900) == 0


def test_a_row_loses_the_pauses_of_its_phases(tmp_path: Path) -> None:
    """The test phase runs last: a pause in the row's last ``test_seconds`` comes off the
    test, one before it off the optimization."""
    log = tmp_path / "pauses.log"
    log.write_text(line(1100, 60) + line(1950, 20))
    row = make_row("t", "dspy-bfrs", [1.0], opt_calls=10, test_calls=1,
                   opt_seconds=900.0, test_seconds=100.0)  # fmt: skip
    leave_out_pauses(row, PauseLog(log), 1000.0, 2000.0)  # the test: 1900 to 2000
    assert (row.opt_seconds, row.test_seconds) == (840.0, 80.0)
    assert row.extra["paused_seconds"] == 80 and row.extra["wall"] == [1000.0, 2000.0]
    clean = make_row("t", "capo", [1.0], opt_calls=10, test_calls=1,
                     opt_seconds=900.0, test_seconds=100.0)  # fmt: skip
    leave_out_pauses(clean, PauseLog(log), 3000.0, 4000.0)
    assert (clean.opt_seconds, clean.test_seconds) == (900.0, 100.0)
    assert "paused_seconds" not in clean.extra


def test_an_answer_in_flight_during_a_pause_is_stored_without_it(tmp_path: Path) -> None:
    up = Upstream()
    log = tmp_path / "pauses.log"
    store = Store(tmp_path / "replay.sqlite")
    try:
        proxy = ReplayProxy(up.url, store, "task", PauseLog(log))
        proxy.begin("s")
        httpx.post(f"{proxy.base_url}/chat/completions", json={"messages": "a"})
        # a pause logged around the second answer (as a pause would be, written before the
        # run goes on): the answer's stored time leaves it out
        log.write_text(line(time.time() - 5, 3600))
        httpx.post(f"{proxy.base_url}/chat/completions", json={"messages": "b"})
        proxy.close()
        again = ReplayProxy(up.url, store, "task")
        again.begin("s")
        for p in ("a", "b"):
            httpx.post(f"{again.base_url}/chat/completions", json={"messages": p})
        first, second = again.replayed_times
        assert first >= 0.02 and second == 0.0
        again.close()
    finally:
        up.server.shutdown()
        store.close()


def test_a_paused_server_start_is_not_a_timeout(tmp_path: Path) -> None:
    """A server slower to answer than the start timeout allows: a timeout, unless the run was
    paused meanwhile (its pause logged), which does not count as waiting for the server."""
    from _peer_servers import Server

    def slow_server(pauses: PauseLog) -> Server:
        server = Server(tmp_path / "m.gguf", "m", 512, tmp_path / "s.log", store, pauses)
        server._cmd = [  # answers /v1/models a second after it starts
            sys.executable,
            "-c",
            "import http.server, time; time.sleep(1.0)\n"
            "class H(http.server.BaseHTTPRequestHandler):\n"
            "    def do_GET(self): self.send_response(200); self.end_headers()\n"
            f"http.server.HTTPServer(('127.0.0.1', {server.port}), H).serve_forever()",
        ]
        return server

    store = Store(tmp_path / "replay.sqlite")
    log = tmp_path / "pauses.log"
    late = slow_server(PauseLog(log))
    with pytest.raises(RuntimeError, match="did not start"):
        late.start(timeout=0.2)
    late.stop()
    log.write_text(line(time.time() - 1, 3600))  # the run paused, from now on
    paused = slow_server(PauseLog(log))
    paused.start(timeout=0.2)
    assert paused.proxy is not None
    paused.stop()
    store.close()


def test_a_pause_log_that_cannot_be_read_is_refused_before_the_run(tmp_path: Path) -> None:
    from compare import parse_args

    log = tmp_path / "pauses.log"
    log.write_text(line(1000, 10) + "yesterday paused 5 s: a hand-written line\n")
    with pytest.raises(ValueError, match="line 2: 'yesterday'"):
        PauseLog(log).pauses()
    with pytest.raises(SystemExit) as exc:
        parse_args(["--pauses", str(log)])
    assert exc.value.code == 2
