"""How alembic runs promptlathe's store migrations: on the connection the store hands it."""

from alembic import context

from promptlathe._store_migrations import VERSION_TABLE
from promptlathe._store_schema import SCHEMA

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic revision` from the command line: an empty SQLite file
    import sqlalchemy as sa

    url = context.config.get_main_option("sqlalchemy.url") or "sqlite:///migrations-dev.sqlite"
    connection = sa.create_engine(url).connect()
context.configure(
    connection=connection,
    target_metadata=SCHEMA,
    render_as_batch=True,
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
