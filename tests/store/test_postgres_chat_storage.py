"""A chat on PostgreSQL: each reply rewrites the whole stored conversation in one statement, compressed
with lz4 where the server has it (a long chat is ~210 kB of JSON; pglz spent most of the save on it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.store import chat as store
from shine_mcp.store.db import open_database
from tests.support.pg_wire import counting_relay

pytestmark = pytest.mark.postgres


def long_conversation(turns: int) -> dict[str, object]:
    messages: list[dict[str, object]] = []
    for i in range(turns):
        messages.append({"role": "user", "content": [{"type": "text", "text": f"show me serums {i}"}]})
        messages.append(
            {"role": "assistant", "content": [{"type": "tool_use", "id": f"t{i}", "name": "s", "input": {}}]}
        )
        products = [{"id": f"prd_{i}_{n}", "name": f"Serum {n}", "price": "19.99"} for n in range(40)]
        messages.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": f"t{i}", "content": str(products)}],
            }
        )
    return {"messages": messages, "state": {"turn": turns}}


async def test_a_long_chat_is_saved_in_one_statement_and_stored_with_lz4(
    postgres_url: str, tmp_path: Path
) -> None:
    async with counting_relay(postgres_url) as (url, sent):
        db = await open_database(Settings(data_dir=tmp_path, database_url=url))
        try:
            chat = await store.create_chat(db, "gst_0123456789abcdef", now=utcnow())
            conversation = long_conversation(60)
            sent.clear()
            saved = await store.save_chat(
                db, chat.user_id, chat.id, conversation, version=chat.version, advisor="offline", now=utcnow()
            )
            assert saved and sent.statements == 1 and sent.queries == []  # no BEGIN, no COMMIT
            async with db.reading() as session:
                size, method = (
                    await session.execute(
                        text(
                            "SELECT length(conversation::text), pg_column_compression(conversation) "
                            "FROM chat_sessions WHERE id = :id"
                        ),
                        {"id": chat.id},
                    )
                ).one()
                has_lz4 = (
                    await session.execute(
                        text(
                            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
                        )
                    )
                ).scalar_one()
            assert size > 100_000
            assert method == ("lz4" if has_lz4 else "pglz")
            read_back = await store.get_chat(db, chat.user_id, chat.id)
            assert read_back is not None and read_back.conversation == conversation and read_back.version == 1
        finally:
            await db.close()
