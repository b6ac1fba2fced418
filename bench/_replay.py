"""A recording proxy in front of a model server, so a comparison run killed midway resumes.

A peer's optimizer (DSPy, CAPO) keeps no state between sittings: stopped after two hours, it
starts again from nothing. Every method therefore talks to its model server through this
proxy, which stores each completion response as it returns. In the next sitting the same
method sends the same requests in the same order (its randomness is seeded and calls go one at
a time), and each one already answered is served from the store at once; the first request
that differs, or was never answered, goes to the server. So a rerun repeats no model call, and
the numbers a row reports are those of one whole sitting:

* ``calls``: every completion request the method made (answered now or replayed), the count a
  one-sitting run's server log would show;
* ``seconds``: what the replayed answers took when the server answered them, added to the
  wall time of a sitting. The server answers one request at a time (``llama_cpp.server``
  holds a lock), so the proxy forwards one at a time too: that costs nothing, and the time it
  stores for an answer is that answer's own, not its wait behind requests a client sent
  alongside (promptlathe sends several at once; summed, their waits would count time twice).
  A pause of the whole run logged meanwhile (bench/_pauses.py) is not part of an answer's time.

A response is stored under the run it belongs to (``begin(scope)``: the task and method), the
request's method, path and JSON body, and its occurrence (the *n*-th identical request gets
the *n*-th stored answer, so a method that asks the same thing twice gets what it got before).
Only successful answers are stored; a request cut off by the kill is simply sent again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from _pauses import PauseLog  # bench/ is on the path when run

Answer = tuple[int, str, bytes, float]
"""A recorded response: status, content type, body, and the seconds it took."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    scope TEXT NOT NULL, upstream TEXT NOT NULL, key TEXT NOT NULL, n INTEGER NOT NULL,
    status INTEGER NOT NULL, content_type TEXT NOT NULL, body BLOB NOT NULL,
    seconds REAL NOT NULL, PRIMARY KEY (scope, upstream, key, n)
)
"""


def is_completion(method: str, path: str) -> bool:
    """A model call, as the server-log count has it: a POST to a completions endpoint."""
    return method == "POST" and "completions" in path


def request_key(method: str, path: str, body: bytes) -> str:
    """The request's identity: a JSON body is compared by content, not by its key order."""
    try:
        canon = json.dumps(json.loads(body), sort_keys=True, ensure_ascii=False).encode()
    except (ValueError, UnicodeDecodeError):
        canon = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canon).hexdigest()


class Store:
    """The recorded answers (SQLite; one writer at a time under a lock)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)
        self._lock = threading.Lock()

    def get(self, scope: str, upstream: str, key: str, n: int) -> Answer | None:
        with self._lock:
            row = self._db.execute(
                "SELECT status, content_type, body, seconds FROM answers "
                "WHERE scope=? AND upstream=? AND key=? AND n=?",
                (scope, upstream, key, n),
            ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]), bytes(row[2]), float(row[3]))

    def put(self, scope: str, upstream: str, key: str, n: int, answer: Answer) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (scope, upstream, key, n, *answer),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


class ReplayProxy:
    """``base_url`` forwards to ``upstream`` (``http://host:port``), replaying what ``store``
    recorded for the current scope. Counters cover every completion request made through it
    since it started: ``calls`` (answered or replayed), ``replayed``, and ``replayed_seconds``
    (what the replayed answers took when first answered); ``replayed_times`` lists those
    seconds in the order the answers were replayed."""

    def __init__(
        self, upstream: str, store: Store, name: str, pauses: PauseLog | None = None
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.pauses = pauses or PauseLog(None)
        self.name = name
        self.store = store
        self.scope = ""
        self.calls = 0
        self.replayed = 0
        self.replayed_seconds = 0.0
        self.replayed_times: list[float] = []
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._forward = threading.Lock()  # one request at a time to the server
        self._client = httpx.Client(timeout=httpx.Timeout(None, connect=10.0))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def begin(self, scope: str) -> None:
        """Requests from now on belong to ``scope`` (e.g. ``"ape/diff|dspy-bfrs"``); their
        occurrence counts start again."""
        with self._lock:
            self.scope = scope
            self._seen.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes]:
        """The response to one request: replayed if recorded, else forwarded (and recorded)."""
        if not is_completion(method, path):
            r = self._client.request(method, self.upstream + path, content=body or None)
            return r.status_code, r.headers.get("content-type", "application/json"), r.content
        key = request_key(method, path, body)
        with self._lock:
            scope, n = self.scope, self._seen[key]
            self._seen[key] += 1
            self.calls += 1
        hit = self.store.get(scope, self.name, key, n)
        if hit is not None:
            status, ctype, content, seconds = hit
            with self._lock:
                self.replayed += 1
                self.replayed_seconds += seconds
                self.replayed_times.append(seconds)
            return status, ctype, content
        send = {k: v for k, v in headers.items() if k.lower() in ("content-type", "authorization")}
        with self._forward:
            t0, w0 = time.perf_counter(), time.time()
            r = self._client.request(method, self.upstream + path, content=body, headers=send)
            seconds = max(0.0, time.perf_counter() - t0 - self.pauses.within(w0, time.time()))
        answer = (r.status_code, r.headers.get("content-type", "application/json"), r.content)
        if r.status_code == 200:
            self.store.put(scope, self.name, key, n, (*answer, seconds))
        return answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(size) if size else b""
                try:
                    status, ctype, content = proxy.answer(
                        self.command, self.path, dict(self.headers.items()), body
                    )
                except httpx.HTTPError as exc:
                    status, ctype = 502, "application/json"
                    content = json.dumps({"error": f"replay proxy: {exc}"}).encode()
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(content)  # the client may be gone (a killed run)

            do_GET = do_POST = _serve  # noqa: N815 - the names http.server dispatches to

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler
