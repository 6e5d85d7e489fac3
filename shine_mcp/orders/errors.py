"""The one exception the order logic raises for a request that a better request could avoid."""

from __future__ import annotations


class OrderError(Exception):
    """A refusal with a message a shopper or merchant can act on (tools turn it into a ToolError)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
