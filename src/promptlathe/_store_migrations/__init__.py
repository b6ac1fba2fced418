"""Migrations of the store's schema (alembic), as Optuna migrates its RDB storage.

A store is brought to the head revision when it is opened (:func:`migrate`): a new database
gets the tables and the head stamp; one made before migrations existed (the same tables, no
``alembic_version``) is stamped at the baseline and upgraded; one stamped by a newer
promptlathe is refused with one line. A schema change is a new file in ``versions/`` (write
it with ``alembic -c src/promptlathe/_store_migrations/alembic.ini revision -m "..."``)."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from promptlathe._store_schema import SCHEMA
from promptlathe.errors import PromptlatheError

HERE = Path(__file__).parent
VERSION_TABLE = "promptlathe_alembic_version"
"""Where the store's revision is kept: not alembic's default table, which Optuna's storage
uses in the same PostgreSQL database."""
BASELINE = "0001"
"""The revision of the schema as it was before migrations (every store made then has it)."""


def _config(conn: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = conn
    return cfg


def head() -> str:
    """The newest revision this promptlathe knows."""
    rev = ScriptDirectory.from_config(_config()).get_current_head()
    assert rev is not None
    return rev


def _known() -> set[str]:
    return {s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()}


@contextmanager
def _exclusive(conn: sa.Connection, path: str | None) -> Iterator[None]:
    """One process migrates a store at a time: a lock file next to a SQLite file, an
    advisory lock held by the transaction on PostgreSQL."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(7291508)"))
        yield
        return
    if path is None or path == ":memory:":
        yield
        return
    fd = os.open(f"{path}.migrate.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def revision(conn: sa.Connection) -> str | None:
    """The revision a store is stamped with (``None``: not stamped)."""
    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def migrate(engine: sa.Engine, where: str, path: str | None = None) -> None:
    """Bring the store behind ``engine`` to the head revision (see the module's docs).

    Raises:
        PromptlatheError: the store was stamped by a newer promptlathe.
    """
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with engine.begin() as conn, _exclusive(conn, path):
        current = revision(conn)
        if current == head():
            return
        if current is not None and current not in _known():
            raise PromptlatheError(
                f"{where}: the store's schema is at revision {current}, which this promptlathe "
                f"does not know (newest: {head()}); upgrade promptlathe, or use another store"
            )
        if current is None:
            ours = set(SCHEMA.tables) & set(sa.inspect(conn).get_table_names())
            if not ours:
                SCHEMA.create_all(conn)
                command.stamp(_config(conn), "head")
                return
            command.stamp(_config(conn), BASELINE)  # made before migrations existed
        command.upgrade(_config(conn), "head")
