"""SQLite persistence: every LM call as it completes, and evaluation records.

One file holds two tables. ``calls`` is the cache (key = model id + exact request + decoding
parameters). ``records`` keeps each scored example of each evaluation, so a killed run loses
nothing and a report can be rebuilt from disk. WAL mode lets several processes share the file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    run TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    example_id TEXT NOT NULL,
    record TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (run, prompt_hash, example_id)
);
"""


class Store:
    """A SQLite file for cached calls and evaluation records.

    Args:
        path: the database file (created with its parent directory), or ``":memory:"``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._conn.commit()

    # ---- calls -----------------------------------------------------------------------------
    def get_call(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT response FROM calls WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_call(
        self, key: str, model_id: str, kind: str, request: dict[str, Any], response: dict[str, Any]
    ) -> None:
        """Persist one call immediately (committed before returning)."""
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key,
                    model_id,
                    kind,
                    json.dumps(request, ensure_ascii=False),
                    json.dumps(response, ensure_ascii=False),
                    time.time(),
                ),
            )
            self._conn.commit()

    def count_calls(self, model_id: str | None = None) -> int:
        q, args = "SELECT COUNT(*) FROM calls", ()
        if model_id is not None:
            q, args = q + " WHERE model_id=?", (model_id,)
        with self._lock:
            return int(self._conn.execute(q, args).fetchone()[0])

    # ---- records ---------------------------------------------------------------------------
    def put_record(
        self, run: str, prompt_hash: str, example_id: str, record: dict[str, Any]
    ) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?)",
                (run, prompt_hash, example_id, json.dumps(record, ensure_ascii=False), time.time()),
            )
            self._conn.commit()

    def get_records(self, run: str, prompt_hash: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT example_id, record FROM records WHERE run=? AND prompt_hash=?",
                (run, prompt_hash),
            ).fetchall()
        return {eid: json.loads(rec) for eid, rec in rows}

    def close(self) -> None:
        with self._lock:
            self._conn.close()
