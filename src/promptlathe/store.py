"""Persistence through SQLAlchemy: every LM call as it completes, evaluation records, budgets.

By default a SQLite file in the run directory holds it all (WAL mode, so the processes of one
machine share it). Given a server URL (``postgresql://...``), one database holds it for every
machine of a run, beside the Optuna study: budgets are reserved atomically there, so machines
never overspend, and a call one machine made is served from the cache to the others.

Tables: ``calls`` is the cache (key = model id + exact request + decoding parameters);
``records`` keeps each scored example of each evaluation, so a killed run loses nothing and a
report can be rebuilt; ``budgets`` and ``charges`` count and justify paid calls; ``documents``
holds a run's shared state (its settings and candidates) for workers on other machines;
``runlog`` holds the run log, one row per evaluated candidate (see ``optimizers._runlog``).
Records, budgets, documents and the run log live under a ``namespace`` (the run's study
name on a shared server); cached calls are shared by every run, since they are keyed by content.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from promptlathe._store_migrations import migrate
from promptlathe._store_schema import (
    BUDGETS,
    CALLS,
    CHARGES,
    DOCUMENTS,
    RECORDS,
    RUNLOG,
)
from promptlathe.errors import PromptlatheError


def is_server_url(url: str | None) -> bool:
    """Whether ``url`` names a database server (shared by machines), not a SQLite file."""
    return bool(url) and "://" in str(url) and not str(url).startswith("sqlite")


def _insert(dialect: str, table: sa.Table) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
    raise PromptlatheError(f"unsupported database {dialect!r}")  # refused in Store.__init__


class Store:
    """Cached calls, evaluation records, budget counters and shared run documents.

    Args:
        location: a SQLite file (created with its parent directory), ``":memory:"``, or a
            SQLAlchemy URL of a PostgreSQL server (``postgresql://user@host/db``).
        namespace: prefix of record runs, budget counters and documents (lets several runs
            share one server database). Empty for a run directory's own file.
    """

    def __init__(self, location: str | Path, namespace: str = "") -> None:
        self.path = str(location)
        self.namespace = namespace
        self.shared = is_server_url(self.path)
        self._lock = threading.Lock()
        if self.shared:
            url = self.path
            try:
                parsed = sa.engine.make_url(url)
            except ArgumentError:
                raise PromptlatheError(
                    f"--storage {url.split('://', 1)[0]}://...: not a database URL"
                ) from None
            self._where = f"--storage {parsed.render_as_string(hide_password=True)}"
            if parsed.get_backend_name() != "postgresql":
                raise PromptlatheError(
                    f"{self._where}: only SQLite and PostgreSQL can hold the call store"
                )
        else:
            self._where = self.path
            if self.path != ":memory:":
                self._make_parent(Path(self.path))
            url = f"sqlite:///{self.path}" if self.path != ":memory:" else "sqlite://"
        try:
            self._engine = self._connect(url)
            if self._engine.dialect.name not in ("sqlite", "postgresql"):
                raise PromptlatheError(
                    f"{self._where}: only SQLite and PostgreSQL can hold the call store"
                )
            migrate(self._engine, self._where, None if self.shared else self.path)
        except PromptlatheError:
            raise
        except (SQLAlchemyError, DBAPIError, ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise PromptlatheError(self._describe(exc)) from None
        self._dialect = self._engine.dialect.name

    @staticmethod
    def _make_parent(p: Path) -> None:
        if p.is_dir():
            raise PromptlatheError(f"{p}: is a directory, not a SQLite cache file")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PromptlatheError(
                f"{p.parent}: cannot create the directory for {p.name} ({exc.strerror}); "
                "is a file in the way? (check --cache, --out or $PROMPTLATHE_HOME)"
            ) from None

    def _connect(self, url: str) -> sa.Engine:
        if not self.shared:
            engine = sa.create_engine(
                url,
                connect_args={"timeout": 60, "check_same_thread": False},
                poolclass=sa.pool.StaticPool,  # one connection, guarded by self._lock
            )

            @sa.event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()

            return engine
        return sa.create_engine(url, pool_pre_ping=True)

    def _describe(self, exc: BaseException) -> str:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        reason = first[0] if first else type(exc).__name__
        if isinstance(exc, NoSuchModuleError | ImportError) or "No module named" in reason:
            return (
                f"{self._where}: the database driver is not installed ({reason}); for "
                "PostgreSQL: pip install 'promptlathe[postgres]'"
            )
        if self.shared:
            return f"{self._where}: cannot use the database ({reason})"
        return (
            f"{self.path}: not a usable SQLite cache ({reason}); give another --cache file or "
            "move this one away"
        )

    def _run(self, fn: Any) -> Any:
        """Run ``fn(conn)`` in one transaction (committed before returning)."""
        try:
            with self._lock, self._engine.begin() as conn:
                return fn(conn)
        except (SQLAlchemyError, DBAPIError) as exc:
            raise PromptlatheError(self._describe(exc)) from None

    def _ns(self, name: str) -> str:
        return f"{self.namespace}{name}"

    # ---- calls -----------------------------------------------------------------------------
    def get_call(self, key: str) -> dict[str, Any] | None:
        q = sa.select(CALLS.c.response).where(CALLS.c.key == key)
        row = self._run(lambda c: c.execute(q).first())
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
        values = {
            "key": key,
            "model_id": model_id,
            "kind": kind,
            "request": json.dumps(request, ensure_ascii=False),
            "response": json.dumps(response, ensure_ascii=False),
            "created": time.time(),
        }
        ins = _insert(self._dialect, CALLS).values(**values)
        upsert = ins.on_conflict_do_update(
            index_elements=["key"],
            set_={k: ins.excluded[k] for k in values if k != "key"},
        )

        def tx(conn: sa.Connection) -> None:
            if charge is not None:
                conn.execute(
                    _insert(self._dialect, CHARGES)
                    .values(name=self._ns(charge), key=key)
                    .on_conflict_do_nothing()
                )
            conn.execute(upsert)

        self._run(tx)

    def count_calls(self, model_id: str | None = None) -> int:
        q = sa.select(sa.func.count()).select_from(CALLS)
        if model_id is not None:
            q = q.where(CALLS.c.model_id == model_id)
        return int(self._run(lambda c: c.execute(q).scalar_one()))

    # ---- records ---------------------------------------------------------------------------
    def put_record(
        self, run: str, prompt_hash: str, example_id: str, record: dict[str, Any]
    ) -> None:
        ins = _insert(self._dialect, RECORDS).values(
            run=self._ns(run),
            prompt_hash=prompt_hash,
            example_id=example_id,
            record=json.dumps(record, ensure_ascii=False),
            created=time.time(),
        )
        upsert = ins.on_conflict_do_update(
            index_elements=["run", "prompt_hash", "example_id"],
            set_={"record": ins.excluded.record, "created": ins.excluded.created},
        )
        self._run(lambda c: c.execute(upsert))

    def get_records(self, run: str, prompt_hash: str) -> dict[str, dict[str, Any]]:
        q = sa.select(RECORDS.c.example_id, RECORDS.c.record).where(
            RECORDS.c.run == self._ns(run), RECORDS.c.prompt_hash == prompt_hash
        )
        rows = self._run(lambda c: c.execute(q).all())
        return {eid: json.loads(rec) for eid, rec in rows}

    # ---- budgets ---------------------------------------------------------------------------
    def reserve(self, name: str, n: int, limit: int | None) -> bool:
        """Atomically add ``n`` to counter ``name`` unless that would pass ``limit``.

        Several processes (or machines, on a server) never reserve more than ``limit`` in
        total: the conditional update is one statement, and the database serializes updates
        of one row.
        """
        name = self._ns(name)
        upd = sa.update(BUDGETS).where(BUDGETS.c.name == name)
        if limit is not None:
            upd = upd.where(BUDGETS.c.used + n <= limit)
        upd = upd.values(used=BUDGETS.c.used + n)

        def tx(conn: sa.Connection) -> bool:
            conn.execute(
                _insert(self._dialect, BUDGETS).values(name=name, used=0).on_conflict_do_nothing()
            )
            return conn.execute(upd).rowcount == 1

        return bool(self._run(tx))

    def count_charges(self, name: str) -> int:
        q = sa.select(sa.func.count()).select_from(CHARGES).where(CHARGES.c.name == self._ns(name))
        return int(self._run(lambda c: c.execute(q).scalar_one()))

    def set_counter(self, name: str, value: int) -> None:
        ins = _insert(self._dialect, BUDGETS).values(name=self._ns(name), used=value)
        self._run(
            lambda c: c.execute(
                ins.on_conflict_do_update(index_elements=["name"], set_={"used": value})
            )
        )

    def has_counter(self, name: str) -> bool:
        q = sa.select(BUDGETS.c.name).where(BUDGETS.c.name == self._ns(name))
        return self._run(lambda c: c.execute(q).first()) is not None

    def release(self, name: str, n: int) -> None:
        """Subtract ``n`` from counter ``name`` (not below zero)."""
        upd = (
            sa.update(BUDGETS)
            .where(BUDGETS.c.name == self._ns(name))
            .values(used=sa.case((BUDGETS.c.used > n, BUDGETS.c.used - n), else_=0))
        )
        self._run(lambda c: c.execute(upd))

    def reserved(self, name: str) -> int:
        q = sa.select(BUDGETS.c.used).where(BUDGETS.c.name == self._ns(name))
        row = self._run(lambda c: c.execute(q).first())
        return int(row[0]) if row else 0

    def call_span(self) -> tuple[float, float, int] | None:
        """When the first and the last stored call were made, and how many there are
        (``None``: no call yet)."""
        q = sa.select(sa.func.min(CALLS.c.created), sa.func.max(CALLS.c.created), sa.func.count())
        first, last, n = self._run(lambda c: c.execute(q).one())
        return None if not n else (float(first), float(last), int(n))

    def tokens_used(self, charged_to: str | None = None) -> int:
        """Tokens of every call stored (or only of those charged to budget ``charged_to``):
        prompt + completion tokens of generations and label choices, and the scored tokens
        of log-probability calls."""
        return sum(i + o for i, o in self.io_tokens(charged_to).values())

    def io_tokens(self, charged_to: str | None = None) -> dict[str, tuple[int, int]]:
        """(input, output) tokens by model id of every call stored (or only of those charged
        to budget ``charged_to``): a generation's or label choice's prompt and completion
        tokens; a log-probability call's scored tokens are input (read, not generated)."""
        if self._dialect == "postgresql":

            def field(k: str) -> str:
                return f"COALESCE((response::json->>'{k}')::bigint, 0)"
        else:

            def field(k: str) -> str:
                return f"COALESCE(json_extract(response, '$.{k}'), 0)"

        gen = "kind IN ('generate', 'labels')"
        scored = field("n_tokens")
        inp = f"COALESCE(SUM(CASE WHEN {gen} THEN {field('prompt_tokens')} ELSE {scored} END), 0)"
        out = f"COALESCE(SUM(CASE WHEN {gen} THEN {field('completion_tokens')} ELSE 0 END), 0)"
        if charged_to is None:
            q = sa.text(f"SELECT model_id, {inp}, {out} FROM calls GROUP BY model_id")
            params: dict[str, Any] = {}
        else:
            q = sa.text(
                f"SELECT model_id, {inp}, {out} FROM calls JOIN charges ON charges.key = "
                "calls.key WHERE charges.name = :name GROUP BY model_id"
            )
            params = {"name": self._ns(charged_to)}
        rows = self._run(lambda c: c.execute(q, params).all())
        return {str(r[0]): (int(r[1]), int(r[2])) for r in rows}

    # ---- shared run documents --------------------------------------------------------------
    def put_document(self, name: str, body: dict[str, Any]) -> None:
        text = json.dumps(body, ensure_ascii=False)
        ins = _insert(self._dialect, DOCUMENTS).values(name=self._ns(name), body=text)
        self._run(
            lambda c: c.execute(
                ins.on_conflict_do_update(index_elements=["name"], set_={"body": text})
            )
        )

    @property
    def where(self) -> str:
        """How errors name the store (a server's password hidden)."""
        return self._where

    def merge_document(
        self, name: str, update: dict[str, Any], under: str | None = None
    ) -> dict[str, Any]:
        """Merge ``update`` into document ``name`` (created empty if missing; other keys are
        kept), or into its object at key ``under``, and return the result. The read and the
        write are one transaction that holds the row (PostgreSQL) or the database's write
        lock (SQLite, from the first statement), so two processes merging at once never lose
        each other's keys."""
        key = self._ns(name)
        row = DOCUMENTS.c.name == key

        def tx(conn: sa.Connection) -> dict[str, Any]:
            conn.execute(
                _insert(self._dialect, DOCUMENTS)
                .values(name=key, body="{}")
                .on_conflict_do_nothing()
            )
            body = conn.execute(
                sa.select(DOCUMENTS.c.body).where(row).with_for_update()
            ).scalar_one()
            merged = json.loads(body)
            if under is None:
                merged.update(update)
            else:
                inner = merged.get(under)
                merged[under] = {**(inner if isinstance(inner, dict) else {}), **update}
            text = json.dumps(merged, ensure_ascii=False)
            conn.execute(sa.update(DOCUMENTS).where(row).values(body=text))
            return merged

        return dict(self._run(tx))

    def get_document(self, name: str) -> dict[str, Any] | None:
        q = sa.select(DOCUMENTS.c.body).where(DOCUMENTS.c.name == self._ns(name))
        row = self._run(lambda c: c.execute(q).first())
        return json.loads(row[0]) if row else None

    # ---- the run log -----------------------------------------------------------------------
    def put_log(self, entry_id: str, body: dict[str, Any]) -> None:
        """Write (or replace) one run-log entry; ``created`` keeps the first write's time, so
        the log reads back in the order candidates were first logged."""
        text = json.dumps(body, ensure_ascii=False)
        ins = _insert(self._dialect, RUNLOG).values(
            run=self._ns("log"), id=entry_id, body=text, created=time.time()
        )
        self._run(
            lambda c: c.execute(
                ins.on_conflict_do_update(index_elements=["run", "id"], set_={"body": text})
            )
        )

    def get_log(self) -> list[dict[str, Any]]:
        """Every run-log entry, oldest first."""
        q = (
            sa.select(RUNLOG.c.body)
            .where(RUNLOG.c.run == self._ns("log"))
            .order_by(RUNLOG.c.created, RUNLOG.c.id)
        )
        return [json.loads(body) for (body,) in self._run(lambda c: c.execute(q).all())]

    def close(self) -> None:
        with self._lock:
            self._engine.dispose()
