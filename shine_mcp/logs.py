"""Logging set-up: the request id on every log line, and plain or JSON lines (`SHINE_LOG_FORMAT`).

The web shell's middleware sets `request_id` for each HTTP request; tasks started while handling it
(tool calls included: the MCP SDK runs them in the sender's context) inherit it, so their log lines carry
it too. Outside a request it is "-".
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

request_id: ContextVar[str | None] = ContextVar("shine_request_id", default=None)

# What a proxy may hand us as a request id: short, and only characters that are safe in logs and headers.
WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
PLAIN_FORMAT = "%(levelname)s %(name)s [%(request_id)s]: %(message)s"


def new_request_id() -> str:
    return secrets.token_hex(16)


def accepted_request_id(offered: str | None) -> str:
    """The proxy's id when it is well formed (so one id follows a request through both), else a new one."""
    if offered is not None and WELL_FORMED_ID.fullmatch(offered):
        return offered
    return new_request_id()


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on each record as `request_id` (a filter on the handler, so records
    from every logger, uvicorn's and libraries' included, get it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id, and the
    traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get() or "-",
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def log_handler(log_format: Literal["plain", "json"]) -> logging.Handler:
    """A stderr handler (over stdio, stdout belongs to the MCP protocol) with the request-id filter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(PLAIN_FORMAT))
    return handler


def configure_logging(level: str, log_format: Literal["plain", "json"]) -> None:
    """Set up the root logger once, at the entry point (`shine serve`, `shine mcp`)."""
    logging.basicConfig(level=level, handlers=[log_handler(log_format)])
