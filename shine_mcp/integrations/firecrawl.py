"""Shine as an MCP *client* of the Firecrawl MCP server (`firecrawl-mcp`): one shared, resilient session.

`Browser` is the interface the browse tools use; `FirecrawlMCPBrowser` reaches Firecrawl over stdio (a local
`firecrawl-mcp` process) or Streamable HTTP (a remote endpoint); where the local process cannot start because
Node (`npx`) is not installed, `FirecrawlAPIBrowser` calls the same Firecrawl REST API directly with
firecrawl-py, behind the same slots, rate limit, circuit breaker and retries (`ResilientBrowser`), giving the
same answers and errors; `UnconfiguredBrowser` says how to turn browsing on. Turning raw results into clean, safe tool output is `shine_mcp.tools.browse`'s job, not this
module's. No message or log line here ever holds the API key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import re
import shutil
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import anyio
import httpx2
from firecrawl.v2.utils.http_client_async import AsyncHttpClient
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CONNECTION_CLOSED, REQUEST_TIMEOUT, CallToolResult, TextContent

from shine_mcp.config import Settings
from shine_mcp.observers import BreakerState

log = logging.getLogger("shine.firecrawl")

ErrorKind = Literal[
    "not_configured",
    "unavailable",
    "timeout",
    "out_of_credits",
    "rate_limited",
    "refused",
    "bad_answer",
    "failed",
]
Progress = Callable[[str], Awaitable[None]]
NOT_CONFIGURED = (
    "web browsing is not configured: set FIRECRAWL_API_KEY (Firecrawl cloud), FIRECRAWL_API_URL (a self-hosted "
    "Firecrawl) or FIRECRAWL_MCP_URL (a remote Firecrawl MCP server) and restart Shine"
)
CONNECT_TIMEOUT = 60.0  # `npx -y` may download the package on first use
HTTP_TIMEOUT, HTTP_READ_TIMEOUT = (
    30.0,
    300.0,
)  # a remote Firecrawl MCP server's requests; its held-open streams
DEFAULT_API_URL = (
    "https://api.firecrawl.dev"  # Firecrawl cloud, as firecrawl-mcp uses without FIRECRAWL_API_URL
)
BACKOFF_BASE = 0.25
BACKOFF_CAP = 4.0
_STATUS = re.compile(r"(?:status code|failed \(|HTTP )\s*(\d{3})")
# How Node's fetch (inside firecrawl-mcp) says the API could not be reached at all.
_UNREACHABLE = re.compile(
    r"ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|socket hang up|fetch failed"
)
UNREACHABLE = "Firecrawl can't be reached right now; try again in a few minutes"


class BrowseError(Exception):
    """A Firecrawl call that did not give an answer; `message` is for the person, `kind` for the code."""

    def __init__(self, kind: ErrorKind, message: str, *, retry_in: float | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.retry_in = kind, message, retry_in

    @property
    def transient(self) -> bool:
        """Worth another try after a pause: the service hiccuped, not the request."""
        return self.kind in ("unavailable", "rate_limited")

    @property
    def outage(self) -> bool:
        """Counts towards opening the circuit breaker (Firecrawl looks down, not merely picky)."""
        return self.kind in ("unavailable", "timeout", "bad_answer")


class Browser(Protocol):
    configured: bool

    async def call(
        self, tool: str, arguments: dict[str, Any], *, progress: Progress | None = None
    ) -> Any: ...

    async def aclose(self) -> None: ...


class UnconfiguredBrowser:
    """The embedded default: no Firecrawl, and every call says how to configure it."""

    configured = False

    async def call(self, tool: str, arguments: dict[str, Any], *, progress: Progress | None = None) -> Any:
        raise BrowseError("not_configured", NOT_CONFIGURED)

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class FirecrawlConfig:
    command: list[str] = field(default_factory=lambda: ["npx", "-y", "firecrawl-mcp"])
    env: dict[str, str] = field(default_factory=dict)  # for the local process (holds the key: never log it)
    url: str | None = None  # remote Streamable HTTP endpoint instead of a process
    headers: dict[str, str] = field(default_factory=dict)
    call_timeout: float = 30.0
    concurrency: int = 4
    rate_per_minute: int = 60
    retries: int = 2
    breaker_failures: int = 3
    breaker_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> FirecrawlConfig | None:
        key = settings.firecrawl_api_key.get_secret_value() if settings.firecrawl_api_key else None
        common: dict[str, Any] = {
            "call_timeout": settings.firecrawl_timeout,
            "concurrency": settings.firecrawl_concurrency,
            "rate_per_minute": settings.firecrawl_rate_limit,
            "retries": settings.firecrawl_retries,
            "breaker_failures": settings.firecrawl_breaker_failures,
            "breaker_seconds": settings.firecrawl_breaker_seconds,
        }
        if settings.firecrawl_mcp_url:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            return cls(url=settings.firecrawl_mcp_url, headers=headers, **common)
        if key or settings.firecrawl_api_url:
            env = {"FIRECRAWL_API_KEY": key} if key else {}
            if settings.firecrawl_api_url:
                env["FIRECRAWL_API_URL"] = settings.firecrawl_api_url
            return cls(command=list(settings.firecrawl_command), env=env, **common)
        return None

    @property
    def secrets(self) -> list[str]:
        found = [self.env.get("FIRECRAWL_API_KEY", "")] + [v.split()[-1] for v in self.headers.values()]
        return [s for s in found if len(s) >= 6]


def browser_from_settings(
    settings: Settings, on_breaker: Callable[[BreakerState], None] | None = None
) -> Browser:
    """`on_breaker` is told the circuit breaker's state as it changes (the web shell's metrics)."""
    config = FirecrawlConfig.from_settings(settings)
    if config is None:
        return UnconfiguredBrowser()
    if not config.url and shutil.which(config.command[0]) is None:
        log.info("%s is not installed: browsing calls the Firecrawl API directly", config.command[0])
        return FirecrawlAPIBrowser(config, on_breaker)
    return FirecrawlMCPBrowser(config, on_breaker)


class CircuitBreaker:
    """Closed: calls flow. After `failures` outages in a row it opens: calls fail at once for `reset_after`
    seconds. Then it is half-open: one probe call goes through; its outcome closes or re-opens it."""

    def __init__(
        self,
        failures: int,
        reset_after: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self.threshold, self.reset_after, self.clock = failures, reset_after, clock
        self.failures = 0
        self.opened_at: float | None = None
        self.probing = False
        # Told "open" when it opens, "half_open" when a probe goes through, "closed" when one succeeds.
        self.on_change = on_change or (lambda _state: None)
        self.on_change("closed")

    @property
    def state(self) -> Literal["closed", "open", "half_open"]:
        if self.opened_at is None:
            return "closed"
        return "open" if self.clock() - self.opened_at < self.reset_after else "half_open"

    def before_call(self) -> None:
        state = self.state
        if state == "closed":
            return
        if state == "half_open" and not self.probing:
            self.probing = True
            self.on_change("half_open")
            return
        wait = max(1, round(self.reset_after - (self.clock() - (self.opened_at or 0.0))))
        raise BrowseError(
            "unavailable", f"Firecrawl is not answering; try again in {wait} s", retry_in=float(wait)
        )

    def succeeded(self) -> None:
        was_open = self.opened_at is not None
        self.failures, self.opened_at, self.probing = 0, None, False
        if was_open:
            self.on_change("closed")

    def failed(self) -> None:
        self.failures += 1
        if self.probing or self.failures >= self.threshold:
            self.opened_at, self.probing = self.clock(), False
            self.on_change("open")


class CallPacer:
    """Spaces calls evenly: at most `per_minute` a minute, without bursts that trip Firecrawl's own limit."""

    def __init__(self, per_minute: int) -> None:
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self.next_slot = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(now, self.next_slot)
        self.next_slot = slot + self.interval
        if slot > now:
            await anyio.sleep(slot - now)


def _classify(text: str) -> BrowseError:
    """firecrawl-mcp reports an upstream failure as an error result whose text names the status or message."""
    lowered = text.lower()
    match = _STATUS.search(text)
    status = int(match.group(1)) if match else None
    if status is None and _UNREACHABLE.search(text):
        return BrowseError("unavailable", UNREACHABLE)
    if status == 402 or "insufficient credits" in lowered or "payment required" in lowered:
        return BrowseError(
            "out_of_credits",
            "Firecrawl is out of credits (402): top up or upgrade the Firecrawl plan, then try again",
        )
    if status == 429 or "rate limit" in lowered:
        return BrowseError("rate_limited", "Firecrawl is rate-limiting Shine (429); try again in a minute")
    if status in (401, 403) or "unauthorized" in lowered or "invalid token" in lowered:
        return BrowseError(
            "refused",
            "Firecrawl refused Shine's credentials: check FIRECRAWL_API_KEY (or the self-hosted API)",
        )
    if (status is not None and status >= 500) or "internal server error" in lowered:
        return BrowseError("unavailable", "Firecrawl had a server error; try again shortly")
    if status == 200:
        return BrowseError("bad_answer", "Firecrawl sent an answer Shine could not read; try again later")
    return BrowseError("failed", "Firecrawl could not do this request")


class ResilientBrowser:
    """What every way of reaching Firecrawl shares: each call waits for a concurrency slot and the rate
    limit, asks the circuit breaker, and is retried with exponential backoff and jitter only on transient
    failures (5xx, 429, a lost connection). Subclasses make one attempt (`_call_once`)."""

    configured = True

    def __init__(
        self, config: FirecrawlConfig, on_breaker: Callable[[BreakerState], None] | None = None
    ) -> None:
        self.config = config
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_seconds, on_change=on_breaker)
        self._slots = anyio.Semaphore(config.concurrency)
        self._rate = CallPacer(config.rate_per_minute)

    async def call(self, tool: str, arguments: dict[str, Any], *, progress: Progress | None = None) -> Any:
        """The structured answer of one Firecrawl MCP tool (by its name and arguments, whichever way Firecrawl
        is reached), or a `BrowseError` saying what went wrong."""
        attempt = 0
        while True:
            self.breaker.before_call()
            try:
                async with self._slots:
                    await self._rate.wait()
                    answer = await self._call_once(tool, arguments, progress)
            except BrowseError as error:
                if error.outage:
                    self.breaker.failed()
                else:  # Firecrawl answered (a refusal is an answer): it is up
                    self.breaker.succeeded()
                if not error.transient or attempt >= self.config.retries or self.breaker.state != "closed":
                    log.info("firecrawl %s failed: %s", tool, error.kind)
                    raise
                delay = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt) * random.uniform(0.5, 1.5)
                attempt += 1
                if progress is not None:
                    await progress(f"Firecrawl hiccuped ({error.kind}); retrying")
                await anyio.sleep(delay)
                continue
            self.breaker.succeeded()
            return answer

    async def _call_once(self, tool: str, arguments: dict[str, Any], progress: Progress | None) -> Any:
        raise NotImplementedError

    def _redact(self, text: str) -> str:
        for secret in self.config.secrets:
            text = text.replace(secret, "[redacted]")
        return text


class FirecrawlMCPBrowser(ResilientBrowser):
    """One `firecrawl-mcp` session shared by every caller, opened on first use and reopened when it dies.

    Each call runs with a timeout, under `ResilientBrowser`'s slots, rate limit, breaker and retries. The
    session lives in a task of its own so it is closed where it was opened."""

    def __init__(
        self, config: FirecrawlConfig, on_breaker: Callable[[BreakerState], None] | None = None
    ) -> None:
        super().__init__(config, on_breaker)
        self._connect_lock = anyio.Lock()
        self._session: ClientSession | None = None
        self._holder: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self.connections = 0  # sessions opened so far: reconnects show up here
        self._stderr: _StderrSink | None = None

    # --- the session -------------------------------------------------------------------------------
    def _transport(self) -> contextlib.AbstractAsyncContextManager[Any]:
        if self.config.url:
            # The MCP SDK's transport timeouts (30 s, and 5 min to read a stream the server holds open),
            # set through httpx2's public API rather than the SDK's private `mcp.shared._httpx_utils`.
            client = httpx2.AsyncClient(
                headers=self.config.headers, timeout=httpx2.Timeout(HTTP_TIMEOUT, read=HTTP_READ_TIMEOUT)
            )
            return _http_transport(self.config.url, client)
        program, *args = self.config.command
        params = StdioServerParameters(command=program, args=args, env=self.config.env)
        if self._stderr is None:
            self._stderr = _StderrSink(self.config.secrets)
        return stdio_client(params, errlog=self._stderr)  # type: ignore[arg-type]

    async def _session_now(self) -> ClientSession:
        if self._session is not None and self._holder is not None and not self._holder.done():
            return self._session
        async with self._connect_lock:
            if self._session is not None and self._holder is not None and not self._holder.done():
                return self._session
            await self._drop()
            ready, stop = asyncio.Event(), asyncio.Event()
            box: dict[str, Any] = {}

            async def hold() -> None:
                try:
                    async with self._transport() as (read, write), ClientSession(read, write) as session:
                        with anyio.fail_after(CONNECT_TIMEOUT):
                            await session.initialize()
                        box["session"] = session
                        ready.set()
                        await stop.wait()
                except BaseException as exc:  # reported to the waiting caller, or ends a dead session
                    box.setdefault("error", exc)
                    ready.set()
                    if not isinstance(exc, Exception):
                        raise

            self._stop = stop
            self._holder = asyncio.create_task(hold(), name="firecrawl-mcp session")
            await ready.wait()
            if "session" not in box:
                self._holder = None
                log.warning(
                    "could not start the Firecrawl MCP session: %s", self._redact(repr(box.get("error")))
                )
                raise BrowseError(
                    "unavailable", "Shine could not start its Firecrawl connection; try again shortly"
                )
            session: ClientSession = box["session"]
            self._session = session
            self.connections += 1
            return session

    async def _drop(self) -> None:
        """Close the current session (if any) and wait, bounded, for its process to end."""
        holder, stop = self._holder, self._stop
        self._session, self._holder, self._stop = None, None, None
        if holder is None:
            return
        if stop is not None:
            stop.set()
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await asyncio.wait({holder})
        if not holder.done():
            holder.cancel()

    async def aclose(self) -> None:
        async with self._connect_lock:
            await self._drop()
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None

    async def ping(self) -> bool:
        """Health check: whether the Firecrawl MCP server answers a ping (opens the session if needed)."""
        try:
            session = await self._session_now()
            with anyio.fail_after(5):
                await session.send_ping()
        except (BrowseError, MCPError, TimeoutError, anyio.ClosedResourceError, anyio.BrokenResourceError):
            return False
        return True

    # --- calls -------------------------------------------------------------------------------------
    async def raw_call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        """The tool on the shared session with nothing of Shine's around it (benchmarks compare with this)."""
        return await (await self._session_now()).call_tool(tool, arguments)

    async def _call_once(self, tool: str, arguments: dict[str, Any], progress: Progress | None) -> Any:
        session = await self._session_now()
        try:
            result = await session.call_tool(tool, arguments, read_timeout_seconds=self.config.call_timeout)
        except MCPError as error:
            if error.code == REQUEST_TIMEOUT:
                raise BrowseError(
                    "timeout",
                    f"Firecrawl did not answer within {self.config.call_timeout:g} s; try again later",
                ) from None
            if error.code == CONNECTION_CLOSED:
                await self._lost()
                raise BrowseError("unavailable", "the connection to Firecrawl was lost; try again") from None
            log.warning("firecrawl %s: MCP error %s", tool, self._redact(error.message))
            raise BrowseError("failed", "Firecrawl could not do this request") from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
            await self._lost()
            raise BrowseError("unavailable", "the connection to Firecrawl was lost; try again") from None
        except RuntimeError as error:  # the SDK refused the answer: no or invalid structured content
            log.warning("firecrawl %s: unreadable answer: %s", tool, self._redact(str(error)))
            raise BrowseError(
                "bad_answer", "Firecrawl sent an answer Shine could not read; try again later"
            ) from None
        if result.is_error:
            text = self._redact(_text_of(result))
            log.warning("firecrawl %s answered an error: %s", tool, text[:300])
            raise _classify(text)
        if result.structured_content is not None:
            return result.structured_content
        try:
            return json.loads(_text_of(result))
        except ValueError:
            raise BrowseError(
                "bad_answer", "Firecrawl sent an answer Shine could not read; try again later"
            ) from None

    async def _lost(self) -> None:
        async with self._connect_lock:
            await self._drop()


# The REST endpoint behind each firecrawl-mcp tool Shine calls. The tools' arguments are the endpoints'
# request bodies (`query`, `limit`, `sources`, `includeDomains`; `url`, `formats`, `onlyMainContent`).
_ENDPOINTS = {"firecrawl_search": "/v2/search", "firecrawl_scrape": "/v2/scrape"}


class FirecrawlAPIBrowser(ResilientBrowser):
    """Firecrawl's REST API called directly with firecrawl-py, for a Shine without Node: the answers are
    those `firecrawl-mcp` would give (a search's whole response body, a scrape's document) and failures
    read the same, so the browse tools cannot tell the two apart.

    firecrawl-py's HTTP client, not its typed `search`/`scrape` methods: those turn the API's answers into
    models that drop fields the browse tools read (4.55 keeps no `imageUrl`, `imageWidth` or `imageHeight`
    of an image result). Its own retries are off: `ResilientBrowser` decides."""

    def __init__(
        self, config: FirecrawlConfig, on_breaker: Callable[[BreakerState], None] | None = None
    ) -> None:
        super().__init__(config, on_breaker)
        self._http = AsyncHttpClient(
            config.env.get("FIRECRAWL_API_KEY"),
            config.env.get("FIRECRAWL_API_URL") or DEFAULT_API_URL,
            max_retries=1,
        )

    async def aclose(self) -> None:
        await self._http.close()

    async def _call_once(self, tool: str, arguments: dict[str, Any], progress: Progress | None) -> Any:
        endpoint = _ENDPOINTS.get(tool)
        if endpoint is None:
            raise BrowseError("failed", "Firecrawl could not do this request")
        try:
            with anyio.fail_after(self.config.call_timeout):
                response = await self._http.post(endpoint, arguments)
        except TimeoutError:
            raise BrowseError(
                "timeout", f"Firecrawl did not answer within {self.config.call_timeout:g} s; try again later"
            ) from None
        except Exception as error:  # firecrawl-py's client (httpx) could not reach the API
            # Read as firecrawl-mcp's "connect ECONNREFUSED …" is: an outage, counted by the breaker.
            log.warning("firecrawl %s: %s", tool, self._redact(repr(error)))
            raise BrowseError("unavailable", UNREACHABLE) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400 or not isinstance(body, dict):
            said = body.get("error") if isinstance(body, dict) else None
            text = self._redact(f"Request failed with status code {response.status_code}: {said or ''}")
            log.warning("firecrawl %s answered an error: %s", tool, text[:300])
            raise _classify(text)
        if not body.get("success", True):
            raise _classify(self._redact(str(body.get("error") or "")))
        return body if tool == "firecrawl_search" else body.get("data", {})


def _text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


@contextlib.asynccontextmanager
async def _http_transport(url: str, client: httpx2.AsyncClient) -> AsyncIterator[Any]:
    async with client, streamable_http_client(url, http_client=client) as streams:
        yield streams[0], streams[1]


class _StderrSink:
    """Where the local server's stderr goes: Shine's log at debug level, with the key taken out.

    A real pipe drained by a thread, because the child process needs a file descriptor to write to."""

    def __init__(self, secrets: list[str]) -> None:
        self._secrets = secrets
        self._read, self._write = os.pipe()
        threading.Thread(target=self._drain, name="firecrawl-mcp stderr", daemon=True).start()

    def fileno(self) -> int:
        return self._write

    def write(self, text: str) -> int:
        self._log(text)
        return len(text)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        """The drain ends once every process that inherited the pipe has exited too."""
        with contextlib.suppress(OSError):
            os.close(self._write)

    def _log(self, text: str) -> None:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        if text.strip():
            log.debug("firecrawl-mcp: %s", text.rstrip())

    def _drain(self) -> None:
        with os.fdopen(self._read, "r", errors="replace") as stream:
            for line in stream:
                self._log(line)
