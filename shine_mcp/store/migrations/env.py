"""Alembic environment: runs on the connection `open_database` hands over, or on the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import shine_mcp.store.carts  # noqa: F401
import shine_mcp.store.chat  # noqa: F401
import shine_mcp.store.memberships  # noqa: F401
import shine_mcp.store.orders  # noqa: F401
import shine_mcp.store.profiles  # noqa: F401
import shine_mcp.store.skin_reports  # noqa: F401
import shine_mcp.store.stream_events  # noqa: F401
import shine_mcp.store.subscriptions  # noqa: F401
import shine_mcp.store.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
import shine_mcp.store.users  # noqa: F401
import shine_mcp.store.web_cache  # noqa: F401
from shine_mcp.store.db import include_object

target_metadata = SQLModel.metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        url = context.config.get_main_option("sqlalchemy.url") or ""
        sync_url = url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")
        with create_engine(sync_url).connect() as conn:
            _configure_and_run(conn)
    else:
        _configure_and_run(connection)


def _configure_and_run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        include_object=include_object,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies tables safely
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
