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

from promptlathe.errors import PromptlatheError

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
CREATE TABLE IF NOT EXISTS budgets (
    name TEXT PRIMARY KEY,
    used INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS charges (
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (name, key)
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
            p = Path(self.path)
            if p.is_dir():
                raise PromptlatheError(f"{p}: is a directory, not a SQLite cache file")
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise PromptlatheError(
                    f"{p.parent}: cannot create the directory for {p.name} ({exc.strerror}); "
                    "is a file in the way? (check --cache, --out or $PROMPTLATHE_HOME)"
                ) from None
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            self._conn.commit()
        except sqlite3.DatabaseError as exc:
            raise PromptlatheError(
                f"{self.path}: not a usable SQLite cache ({exc}); give another --cache file or "
                "move this one away"
            ) from None

    # ---- calls -----------------------------------------------------------------------------
    def get_call(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT response FROM calls WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_call(
        self,
        key: str,
        model_id: str,
        kind: str,
        request: dict[str, Any],
        response: dict[str, Any],
        charge: str | None = None,
    ) -> None:
        """Persist one call immediately (committed before returning); with ``charge``, record
        in the same transaction that budget ``charge`` paid for it."""
        with self._lock:
            if charge is not None:
                self._conn.execute("INSERT OR IGNORE INTO charges VALUES (?, ?)", (charge, key))
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

    # ---- budgets ---------------------------------------------------------------------------
    def reserve(self, name: str, n: int, limit: int | None) -> bool:
        """Atomically add ``n`` to counter ``name`` unless that would pass ``limit``.

        Several processes sharing the file never reserve more than ``limit`` in total.
        """
        with self._lock:
            self._conn.execute("INSERT OR IGNORE INTO budgets VALUES (?, 0)", (name,))
            if limit is None:
                cur = self._conn.execute(
                    "UPDATE budgets SET used = used + ? WHERE name = ?", (n, name)
                )
            else:
                cur = self._conn.execute(
                    "UPDATE budgets SET used = used + ? WHERE name = ? AND used + ? <= ?",
                    (n, name, n, limit),
                )
            self._conn.commit()
            return cur.rowcount == 1

    def count_charges(self, name: str) -> int:
        with self._lock:
            row = self._conn.execute(
                "SELECT COUNT(*) FROM charges WHERE name=?", (name,)
            ).fetchone()
        return int(row[0])

    def set_counter(self, name: str, value: int) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO budgets VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET used=?",
                (name, value, value),
            )
            self._conn.commit()

    def has_counter(self, name: str) -> bool:
        with self._lock:
            row = self._conn.execute("SELECT 1 FROM budgets WHERE name=?", (name,)).fetchone()
        return row is not None

    def release(self, name: str, n: int) -> None:
        """Subtract ``n`` from counter ``name`` (not below zero)."""
        with self._lock:
            self._conn.execute(
                "UPDATE budgets SET used = MAX(0, used - ?) WHERE name = ?", (n, name)
            )
            self._conn.commit()

    def reserved(self, name: str) -> int:
        with self._lock:
            row = self._conn.execute("SELECT used FROM budgets WHERE name=?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def tokens_used(self) -> int:
        """Tokens of every call stored: prompt + completion tokens of generations, and the
        scored tokens of log-probability calls."""
        with self._lock:
            row = self._conn.execute(
                "SELECT COALESCE(SUM(CASE kind"
                " WHEN 'generate' THEN json_extract(response, '$.prompt_tokens')"
                " + json_extract(response, '$.completion_tokens')"
                " WHEN 'labels' THEN json_extract(response, '$.prompt_tokens')"
                " + json_extract(response, '$.completion_tokens')"
                " ELSE COALESCE(json_extract(response, '$.n_tokens'), 0) END), 0)"
                " FROM calls"
            ).fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
