"""What a client sends PostgreSQL, counted on the wire: a TCP relay in front of the server that reads the
frontend messages passing through it (protocol 3). It sees every statement whatever sends it (SQLAlchemy,
asyncpg directly, a prepared or an unnamed statement), which neither SQLAlchemy's events nor asyncpg's
query loggers do."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

_SSL_REQUEST, _GSS_REQUEST, _CANCEL_REQUEST = 80877103, 80877104, 80877102


@dataclass
class Sent:
    """The frontend messages since the last `clear`, by type: 'P' parse, 'B' bind, 'E' execute, 'S' sync,
    'H' flush, 'Q' a simple query (asyncpg's BEGIN, ROLLBACK and a ping's ';' are simple queries, kept in `queries`)."""

    messages: Counter[str] = field(default_factory=Counter)
    queries: list[str] = field(default_factory=list)

    @property
    def statements(self) -> int:
        """Statements run: each Execute of the extended protocol, each simple query."""
        return self.messages["E"] + self.messages["Q"]

    @property
    def round_trips(self) -> int:
        """The client waits for the server after each Sync and each simple query (its ReadyForQuery) and
        after each Flush (asyncpg's parse and describe of a statement end with one): a round trip each."""
        return self.messages["S"] + self.messages["Q"] + self.messages["H"]

    @property
    def parsed(self) -> int:
        return self.messages["P"]

    def clear(self) -> None:
        self.messages.clear()
        self.queries.clear()


class _Reader:
    """Splits one client's byte stream into messages: untyped until the start-up message, typed after."""

    def __init__(self, sent: Sent) -> None:
        self.sent = sent
        self.buffer = b""
        self.started = False

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if not self.started:
                if len(self.buffer) < 8:
                    return
                length, code = struct.unpack("!ii", self.buffer[:8])
                if len(self.buffer) < length:
                    return
                self.buffer = self.buffer[length:]
                if code not in (_SSL_REQUEST, _GSS_REQUEST, _CANCEL_REQUEST):
                    self.started = True  # the start-up message; typed messages follow
                continue
            if len(self.buffer) < 5:
                return
            kind = chr(self.buffer[0])
            (length,) = struct.unpack("!i", self.buffer[1:5])
            if len(self.buffer) < 1 + length:
                return
            body, self.buffer = self.buffer[5 : 1 + length], self.buffer[1 + length :]
            self.sent.messages[kind] += 1
            if kind == "Q":
                self.sent.queries.append(body.rstrip(b"\0").decode())


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: _Reader | None) -> None:
    try:
        while data := await reader.read(65536):
            if seen is not None:
                seen.feed(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


@asynccontextmanager
async def counting_relay(url: str) -> AsyncIterator[tuple[str, Sent]]:
    """A relay to the server of `url` (a `postgresql+asyncpg://user@host:port/db` URL, no TLS) on a free
    loopback port, in this event loop: yields the URL through the relay and what its clients send."""
    head, tail = url.split("@", 1)
    host_port, database = tail.split("/", 1)
    host, port = host_port.rsplit(":", 1)
    sent = Sent()
    tasks: set[asyncio.Task[None]] = set()

    async def serve(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(host, int(port))
        both = [
            asyncio.ensure_future(_pipe(client_reader, server_writer, _Reader(sent))),
            asyncio.ensure_future(_pipe(server_reader, client_writer, None)),
        ]
        tasks.update(both)
        await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
        for task in both:
            task.cancel()

    relay = await asyncio.start_server(serve, "127.0.0.1", 0)
    relay_port = relay.sockets[0].getsockname()[1]
    try:
        yield f"{head}@127.0.0.1:{relay_port}/{database}", sent
    finally:
        relay.close()
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await relay.wait_closed()
