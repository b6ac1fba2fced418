"""The store's schema is migrated with alembic: a new store is stamped at the head, a store
made before migrations is stamped at the baseline and upgraded with its data, a store from a
newer promptlathe is one line, and the migrations build exactly the declared schema."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from promptlathe._store_migrations import BASELINE, VERSION_TABLE, _config, head, revision
from promptlathe._store_schema import SCHEMA
from promptlathe.errors import PromptlatheError
from promptlathe.store import Store


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own."""
    if request.param == "sqlite":
        yield str(tmp_path / "calls.sqlite")
        return
    server = sa.engine.make_url(request.getfixturevalue("postgres_url"))
    name = f"mig_{os.getpid()}_{abs(hash(tmp_path)) % 10**8}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url if "://" in url else f"sqlite:///{url}")


def test_a_new_store_is_stamped_at_the_head(url: str) -> None:
    Store(url).close()
    with _engine(url).connect() as c:
        assert revision(c) == head()
        assert set(SCHEMA.tables) <= set(sa.inspect(c).get_table_names())


def test_a_store_made_before_migrations_keeps_its_data_and_is_stamped(url: str) -> None:
    engine = _engine(url)
    with engine.begin() as c:  # the tables as the old code made them, with a document
        SCHEMA.create_all(c)
        c.execute(SCHEMA.tables["documents"].insert().values(name="d", body='{"a": 1}'))
    store = Store(url)
    assert store.get_document("d") == {"a": 1}
    store.close()
    with engine.connect() as c:
        assert revision(c) == head()
    assert head() >= BASELINE


def test_a_store_from_a_newer_promptlathe_is_one_line(url: str) -> None:
    Store(url).close()
    with _engine(url).begin() as c:
        c.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    with pytest.raises(PromptlatheError) as exc:
        Store(url)
    msg = str(exc.value)
    assert "revision 9999" in msg and "upgrade promptlathe" in msg and "\n" not in msg


def test_the_migrations_build_exactly_the_declared_schema(url: str) -> None:
    with _engine(url).begin() as c:
        command.upgrade(_config(c), "head")  # the migrations alone, from nothing
        mc = MigrationContext.configure(c, opts={"version_table": VERSION_TABLE})
        diff = compare_metadata(mc, SCHEMA)
    assert diff == []


def test_the_store_and_optuna_share_a_database_without_a_clash(url: str) -> None:
    """On PostgreSQL the study and the store live in one database; both use alembic."""
    import optuna

    Store(url).close()
    storage_url = url if "://" in url else f"sqlite:///{url}"
    optuna.create_study(storage=storage_url, study_name="s")  # Optuna stamps its own table
    Store(url).close()  # and the store still opens
    optuna.load_study(storage=storage_url, study_name="s")
