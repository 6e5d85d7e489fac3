"""A service inside the network that an outbound fetch must never reach: a TCP listener that never
answers, on an address of the test's choosing. `reached()` tells whether anything connected to it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


class InsideService:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def reached(self) -> bool:
        """Whether a connection arrived (the kernel completes it in the backlog even if never accepted)."""
        try:
            conn, _ = self._sock.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True


@contextmanager
def listening(host: str, port: int) -> Iterator[InsideService]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, port))
        sock.listen(8)
        sock.setblocking(False)
        yield InsideService(sock)
