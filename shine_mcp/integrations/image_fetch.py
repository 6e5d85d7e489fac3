"""Downloading a photo from an https URL someone gave `analyze_skin`, without becoming an SSRF proxy.

Rules: https only, also after every redirect; the host is resolved by us and every address it resolves
to must be public (no loopback, private, link-local, shared, multicast or reserved ranges, including
IPv4 hidden in IPv6), checked at connect time for each connection, so a redirect or a DNS answer that
changes between check and use cannot reach the inside; the connection goes to the checked address
itself. No proxies from the environment, no credentials in URLs, no compressed transfer encodings; the
body is streamed and cut at the size limit; one deadline covers the whole download, redirects included;
the response must say it is an image (or say nothing more specific than binary).

Not here: deciding whether the bytes are a usable photo (that is `shine_mcp.models`).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio
import httpcore
import httpx

from shine_mcp import __version__

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]

MAX_REDIRECTS = 5
# Content types a photo may arrive with; the bytes' magic decides the format afterwards.
IMAGE_TYPES = ("image/",)
BINARY_TYPES = ("application/octet-stream", "binary/octet-stream")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class FetchRefused(Exception):
    """The URL cannot be used; `message` says why and what to do instead, for the person who sent it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64), which decides where it goes."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why Shine will not connect to `ip`, or None for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner = refusal_reason(embedded)
            return f"{inner} (inside an IPv6 address)" if inner else None
    for flag, reason in (
        (ip.is_loopback, "a loopback address (this machine)"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private network address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a public internet address"),
    ):
        if flag:
            return reason
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses may be fetched from: public ones only. `allow` lists exceptions and exists for
    tests that serve a photo from a local fake server; production code never sets it."""

    allow: tuple[IPNetwork, ...] = ()

    @classmethod
    def allowing(cls, networks: Iterable[str]) -> AddressPolicy:
        return cls(allow=tuple(ipaddress.ip_network(n) for n in networks))

    def refusal(self, ip: IPAddress) -> str | None:
        if any(ip in network for network in self.allow):
            return None
        return refusal_reason(ip)


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for `host`, without duplicates, in its order."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])  # drop an IPv6 zone id
        if address not in found:
            found.append(address)
    return found


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the address check in `connect_tcp`: it resolves the host,
    refuses the connection unless every address is allowed, then connects to a checked address. TLS
    still verifies the certificate against the URL's host name (httpcore passes it as SNI)."""

    def __init__(self, policy: AddressPolicy, resolver: Resolver) -> None:
        self._policy, self._resolver = policy, resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = list(await self._resolver(host, port))
        except (OSError, UnicodeError) as exc:
            raise FetchRefused(f"the host {host!r} could not be found; check the URL") from exc
        if not addresses:
            raise FetchRefused(f"the host {host!r} could not be found; check the URL")
        for address in addresses:
            reason = self._policy.refusal(address)
            if reason is not None:
                what = f"{host} is" if _literal(host) == address else f"{host} resolves to {address},"
                raise FetchRefused(
                    f"{what} {reason}: Shine only fetches photos from public internet addresses; "
                    "send the photo itself (base64) instead"
                )
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise FetchRefused("photos are only fetched over TCP")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def check_url(url: str, *, redirected_from: str | None = None) -> httpx.URL:
    """A URL Shine may request, or `FetchRefused` saying what is wrong with it."""
    where = " (redirected)" if redirected_from else ""
    try:
        parts = urlsplit(url)
        parsed = httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        raise FetchRefused(f"the photo URL{where} is not a valid URL") from exc
    scheme = parts.scheme.lower()
    if scheme == "http":
        raise FetchRefused(
            f"the photo URL{where} uses http; only https URLs are fetched (plain http can be altered on "
            "the way). Use the https:// address or send the photo itself"
        )
    if scheme != "https":
        raise FetchRefused(f"the photo URL{where} must start with https://")
    if not parts.hostname:
        raise FetchRefused(f"the photo URL{where} has no host name")
    if parts.username is not None or parts.password is not None:
        raise FetchRefused(
            f"the photo URL{where} contains a user name or password; use a link that needs no sign-in"
        )
    return parsed


def _content_type_problem(value: str | None) -> str | None:
    if not value:
        return None
    media = value.split(";", 1)[0].strip().lower()
    if media.startswith(IMAGE_TYPES) or media in BINARY_TYPES:
        return None
    if media in ("text/html", "application/xhtml+xml"):
        return (
            "the URL leads to a web page, not a photo: open the photo itself and copy its address "
            "(it usually ends in .jpg, .png or .webp)"
        )
    return f"the URL returned {media}, not a photo; link the image file itself"


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.3g} MB"


class ImageFetcher:
    """Fetches one photo per call; see the module docstring for the rules.

    `policy`, `resolver` and `ssl_context` are seams for tests (a local fake server with its own
    certificate authority); a running Shine uses the defaults: public addresses, the system resolver,
    the system's trusted certificate authorities."""

    def __init__(
        self,
        *,
        max_bytes: int,
        timeout: float,
        policy: AddressPolicy | None = None,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.max_bytes, self.timeout = max_bytes, timeout
        self._policy = policy or AddressPolicy()
        self._resolver = resolver
        self._ssl_context = ssl_context

    def _client(self) -> httpx.AsyncClient:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()  # loads the CA bundle once per fetcher
        transport = httpx.AsyncHTTPTransport(verify=self._ssl_context, trust_env=False)
        # httpx (0.28, pinned) has no public hook for httpcore's network backend: swap in the same
        # pool it builds, with the guarded backend.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=self._ssl_context,
            max_connections=2,
            network_backend=_GuardedBackend(self._policy, self._resolver),
        )
        return httpx.AsyncClient(
            transport=transport,
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(self.timeout),
            headers={
                "User-Agent": f"Shine/{__version__} (skin analysis photo fetch)",
                "Accept": "image/jpeg, image/png, image/webp, image/*;q=0.8",
                "Accept-Encoding": "identity",
            },
        )

    async def fetch(self, url: str) -> bytes:
        """The photo's bytes, or `FetchRefused` with a reason a person can act on."""
        current = check_url(url)
        try:
            with anyio.fail_after(self.timeout):
                async with self._client() as client:
                    for _ in range(MAX_REDIRECTS + 1):
                        async with client.stream("GET", current) as response:
                            if response.is_redirect:
                                location = response.headers.get("location", "")
                                current = check_url(
                                    urljoin(str(current), location), redirected_from=str(current)
                                )
                                continue
                            return await self._body(response)
                    raise FetchRefused(f"the photo URL redirects more than {MAX_REDIRECTS} times")
        except TimeoutError as exc:
            raise FetchRefused(
                f"the photo took longer than {self.timeout:g} s to download; try again or send the photo itself"
            ) from exc
        except httpx.TimeoutException as exc:
            raise FetchRefused(
                f"the photo took longer than {self.timeout:g} s to download; try again or send the photo itself"
            ) from exc
        except httpx.HTTPError as exc:
            host = current.host
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise FetchRefused(
                    f"{host} did not present a valid certificate for https; send the photo itself"
                ) from exc
            raise FetchRefused(f"could not download the photo from {host} ({type(exc).__name__})") from exc

    async def _body(self, response: httpx.Response) -> bytes:
        host = response.url.host
        if response.status_code != 200:
            raise FetchRefused(
                f"{host} answered {response.status_code} {response.reason_phrase} for the photo URL; "
                "check that the link works in a browser without signing in"
            )
        problem = _content_type_problem(response.headers.get("content-type"))
        if problem is not None:
            raise FetchRefused(problem)
        too_big = f"the photo at that URL is larger than {_mb(self.max_bytes)}; link or send a smaller JPEG"
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            # unpacking would let a small download expand past the size limit before it is counted
            raise FetchRefused(
                f"{host} sent the photo compressed ({encoding}); link a plain image file or send the photo itself"
            )
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchRefused(too_big)
        chunks: list[bytes] = []
        received = 0
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received > self.max_bytes:
                raise FetchRefused(too_big)
            chunks.append(chunk)
        return b"".join(chunks)
