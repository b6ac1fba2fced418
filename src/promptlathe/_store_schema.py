"""The store's tables (see :mod:`promptlathe.store` for what each holds)."""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA = sa.MetaData()
CALLS = sa.Table(
    "calls",
    SCHEMA,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("model_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)
RECORDS = sa.Table(
    "records",
    SCHEMA,
    sa.Column("run", sa.Text, primary_key=True),
    sa.Column("prompt_hash", sa.Text, primary_key=True),
    sa.Column("example_id", sa.Text, primary_key=True),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)
BUDGETS = sa.Table(
    "budgets",
    SCHEMA,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("used", sa.Integer, nullable=False),
)
CHARGES = sa.Table(
    "charges",
    SCHEMA,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
)
RUNLOG = sa.Table(
    "runlog",
    SCHEMA,
    sa.Column("run", sa.Text, primary_key=True),
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)
DOCUMENTS = sa.Table(
    "documents",
    SCHEMA,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
)
