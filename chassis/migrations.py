"""Alembic helpers shared by every service's migrations.

Each service keeps its own ``migrations/`` (env.py and versions); this module holds what they
share: running migrations online on the async engine, the DDL the chassis owns (the outbox and
inbox with the NOTIFY trigger, the job queue, the replica of inventory's district tree), the
column shapes the services' tables have in common, creating the service's database if it is
missing, and ``upgrade``.

Released migrations call these helpers, and the chassis's DDL is built from the chassis's own
tables (``outbox_table``, ``inbox_table``, ``district_replica_table``): what a helper creates
must not change, or databases migrated before and after the change would differ. Changing one of
those tables takes a new helper and a new revision in every service that has it.

A service's migration names its revision and its parent (``revision``, ``down_revision``;
Alembic takes ``branch_labels`` and ``depends_on`` as None when a module has none) and its
``upgrade`` and ``downgrade``; where those are only chassis DDL, they are the helpers themselves
(``upgrade = create_messaging_tables``).
"""

from __future__ import annotations

import asyncio
import re
from importlib import import_module
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.util import await_only

from chassis.consumer import inbox_table
from chassis.database import new_metadata
from chassis.districts import district_replica_table
from chassis.outbox import NOTIFY_CHANNEL, asyncpg_dsn, outbox_table

# NOTIFY inside a transaction is delivered at commit, and never for a rolled-back one; once per
# statement is enough to wake the relay, which then reads everything unsent.
NOTIFY_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION chorus_outbox_notify() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('{NOTIFY_CHANNEL}', '');
  RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""
NOTIFY_TRIGGER_SQL = """
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
FOR EACH STATEMENT EXECUTE FUNCTION chorus_outbox_notify()
"""


def messaging_ddl_metadata() -> MetaData:
    metadata = new_metadata()  # the services' naming convention, so constraint names match
    outbox_table(metadata)
    inbox_table(metadata)
    return metadata


def create_messaging_tables() -> None:
    """Inside a migration's upgrade(): the outbox (with its NOTIFY trigger) and the inbox."""
    messaging_ddl_metadata().create_all(op.get_bind())
    op.execute(NOTIFY_FUNCTION_SQL)
    op.execute(NOTIFY_TRIGGER_SQL)


def drop_messaging_tables() -> None:
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.execute("DROP FUNCTION IF EXISTS chorus_outbox_notify()")
    messaging_ddl_metadata().drop_all(op.get_bind())


def create_job_queue_schema() -> None:
    """Inside a migration's upgrade(): procrastinate's tables and functions (chassis.jobs)."""
    from procrastinate.schema import SchemaManager

    _execute_script(SchemaManager.get_schema())


def drop_job_queue_schema() -> None:
    """Drop what create_job_queue_schema made, read from the same schema script."""
    from procrastinate.schema import SchemaManager

    schema = SchemaManager.get_schema()
    statements = []
    for kind in ("TABLE", "FUNCTION", "TYPE"):
        pattern = rf"CREATE (?:OR REPLACE )?{kind} (?:public\.)?(\w+)"
        for name in sorted(set(re.findall(pattern, schema))):
            statements.append(f"DROP {kind} IF EXISTS {name} CASCADE;")
    _execute_script("\n".join(statements))


def _execute_script(sql: str) -> None:
    """Run a multi-statement script: asyncpg prepares single statements only, so this goes to
    the driver's simple-query path (we are inside Alembic's run_sync greenlet)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(sql))


def create_district_replica() -> None:
    """Inside a migration's upgrade(): the replica of inventory's district tree
    (``chassis.districts.district_replica_table``) and the ltree extension its paths need."""
    op.execute("CREATE EXTENSION IF NOT EXISTS ltree")
    district_replica_table(new_metadata()).create(op.get_bind())


def drop_district_replica() -> None:
    """The replica's table and its index; the extension stays (other tables may use it)."""
    district_replica_table(new_metadata()).drop(op.get_bind())


def timestamp_default_now(name: str) -> sa.Column[Any]:
    """``timestamptz NOT NULL DEFAULT now()``: created_at, updated_at, at."""
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def jsonb_default(name: str, default: str) -> sa.Column[Any]:
    """``jsonb NOT NULL`` with a constant default, given as JSON text (``"{}"``, ``"[]"``)."""
    return sa.Column(
        name,
        JSONB(astext_type=sa.Text()),
        server_default=sa.text(f"'{default}'::jsonb"),
        nullable=False,
    )


# Tables other packages own in the service's database (the job queue's): not in our models.
FOREIGN_TABLE_PREFIXES = ("procrastinate_",)


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    return not (type_ == "table" and name is not None and name.startswith(FOREIGN_TABLE_PREFIXES))


def run_migrations(target_metadata: MetaData) -> None:
    """The body of a service's env.py (online mode, async engine)."""
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url is not set; run migrations through `chorus migrate`")

    def do_run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run_async())


def migrations_path(service: str) -> Path:
    module = import_module(f"services.{service}")
    assert module.__file__ is not None
    return Path(module.__file__).parent / "migrations"


def alembic_config(service: str, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_path(service)))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(slug)s")
    return config


async def ensure_database(database_url: str) -> None:
    """Create the service's database on its server when it does not exist yet."""
    url = make_url(database_url)
    name = url.database
    assert name, "the database URL names no database"
    admin_dsn = asyncpg_dsn(url.set(database="postgres").render_as_string(hide_password=False))
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            quoted = '"' + name.replace('"', '""') + '"'
            await conn.execute(f"CREATE DATABASE {quoted}")
    finally:
        await conn.close()


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    """Create the database if needed and run the service's migrations up to `revision`."""
    asyncio.run(ensure_database(database_url))
    command.upgrade(alembic_config(service, database_url), revision)
