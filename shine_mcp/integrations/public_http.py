"""The one way Shine fetches a URL someone else chose (a photo link, an MCP client's metadata document):
without becoming a door into the network it runs in (SSRF).

Rules: the URL is https (unless the caller allows http) and carries no user name or password, also after
every redirect; redirects are followed only up to a bound, each one checked like the first. The host name
is resolved once per connection, here, and every address it resolves to must be public in every
spelling (`refusal_reason`): the connection then goes to one of those checked addresses, so a DNS answer
that changes between check and use (rebinding) cannot reach the inside. The request keeps the URL's host
name, so the Host header, TLS SNI and the certificate check are all for the name, not the address. No
proxies from the environment, no compressed transfer (a small download could unpack past the limit); the
body is streamed and cut at the size limit, and one deadline covers the whole fetch, redirects included.

Not here: what the caller makes of the answer (is it a photo? a valid client document?).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import anyio
import httpcore2
import httpx2

from shine_mcp import __version__

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Every address `host` resolves to; raises OSError when it resolves to nothing.
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]
Problem = Literal[
    "url",  # not a URL Shine fetches (scheme, no host name, malformed)
    "credentials",  # a user name or password in the URL
    "unresolved",  # the host name does not resolve
    "address",  # the host is, or resolves to, an address that is not public
    "redirects",  # more redirects than allowed
    "too_large",  # the body is larger than allowed
    "compressed",  # the body came with a content encoding
    "timeout",  # the whole fetch took longer than allowed
    "certificate",  # the TLS certificate is not valid for the host name
    "connection",  # any other failure to talk to the host
]

MAX_REDIRECTS = 5

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
# Ranges Python's `ipaddress` flags do not (all) call non-public in every Python version we support.
_NOT_PUBLIC: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(network), reason)
    for network, reason in (
        ("0.0.0.0/8", "an address of this network (0.0.0.0/8)"),
        ("100.64.0.0/10", "a shared address (carrier-grade NAT)"),
        ("192.0.2.0/24", "a documentation address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("192.88.99.0/24", "a retired 6to4 relay address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("2001::/32", "a Teredo tunnel address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("2001:db8::/32", "a documentation address"),
        ("3fff::/20", "a documentation address"),
        ("5f00::/16", "a segment-routing address"),
        ("fec0::/10", "a site-local address"),
    )
)
_NUMERIC_HOST = re.compile(r"[0-9a-fx.]+", re.IGNORECASE)


class Refused(Exception):
    """The fetch was refused or failed. `message` says why in words for the person who gave the URL;
    `problem` lets a caller add its own advice."""

    def __init__(self, problem: Problem, message: str) -> None:
        super().__init__(message)
        self.problem, self.message = problem, message


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), which decides where it goes."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR:
        return ip.sixtofour
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why Shine will not connect to `ip`, or None for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "a link-local address"
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner = refusal_reason(embedded)
            return f"{inner} (inside an IPv6 address)" if inner else None
    for network, reason in _NOT_PUBLIC:
        if ip in network:
            return reason
    for flag, reason in (
        (ip.is_loopback, "a loopback address (this machine)"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private network address"),
        (not ip.is_global, "not a public internet address"),
    ):
        if flag:
            return reason
    return None


def is_public_address(address: IPAddress | str) -> bool:
    """Whether `address` (an address or its text, an IPv6 zone allowed) is a public unicast internet address."""
    if isinstance(address, str):
        try:
            address = ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            return False
    return refusal_reason(address) is None


def host_address(host: str) -> IPAddress | None:
    """The address a URL's host spells, also in the legacy IPv4 forms resolvers and browsers accept
    ("127.1", "2130706433", "0x7f.0.0.1"); None for a host name."""
    host = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(host) and any(c.isdigit() for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses only. `allow` lists exceptions: for tests that serve from a local fake server, and
    for a Shine that only this machine can reach (client documents); never set for a public Shine."""

    allow: tuple[IPNetwork, ...] = ()

    @classmethod
    def allowing(cls, networks: Iterable[str]) -> AddressPolicy:
        return cls(allow=tuple(ipaddress.ip_network(n) for n in networks))

    def plus(self, networks: Iterable[str]) -> AddressPolicy:
        return AddressPolicy(self.allow + AddressPolicy.allowing(networks).allow)

    def refusal(self, ip: IPAddress) -> str | None:
        if any(ip in network for network in self.allow):
            return None
        return refusal_reason(ip)


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for `host`, without duplicates, in its order."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]))  # keeps an IPv6 zone id: refused as link-local
        if address not in found:
            found.append(address)
    return found


class _GuardedBackend(httpcore2.AsyncNetworkBackend):
    """httpcore2's network backend with the address check in `connect_tcp`: it resolves the host once,
    refuses the connection unless every address is allowed, then connects to one of those addresses. TLS
    is started afterwards by httpcore2 with the URL's host name (SNI and certificate check)."""

    def __init__(self, policy: AddressPolicy, resolver: Resolver) -> None:
        self._policy, self._resolver = policy, resolver
        self._inner = httpcore2.AnyIOBackend()

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        literal = host_address(host)
        if literal is not None:
            return [literal]
        unknown = Refused("unresolved", f"the host {host!r} could not be found; check the URL")
        try:
            addresses = list(await self._resolver(host, port))
        except (OSError, UnicodeError) as exc:
            raise unknown from exc
        if not addresses:
            raise unknown
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore2's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        addresses = await self._addresses(host, port)
        for address in addresses:
            reason = self._policy.refusal(address)
            if reason is not None:
                what = f"{host} is" if host_address(host) == address else f"{host} resolves to {address},"
                raise Refused("address", f"{what} {reason}: only public internet addresses are fetched")
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
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore2's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise Refused("url", "only internet addresses are fetched")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def check_url(url: str, *, https_only: bool = True, redirected: bool = False) -> httpx2.URL:
    """`url` if Shine may request it, else `Refused` saying what is wrong with it."""
    where = " (redirected)" if redirected else ""
    try:
        parts = urlsplit(url)
        parsed = httpx2.URL(url)
        port = parts.port  # a port out of range raises here
    except (ValueError, httpx2.InvalidURL) as exc:
        raise Refused("url", f"the URL{where} is not a valid URL") from exc
    scheme = parts.scheme.lower()
    if scheme == "http" and https_only:
        raise Refused(
            "url",
            f"the URL{where} uses http; only https URLs are fetched (plain http can be altered on the way)",
        )
    if scheme not in ("http", "https"):
        raise Refused("url", f"the URL{where} must start with https://")
    if not parts.hostname:
        raise Refused("url", f"the URL{where} has no host name")
    if port == 0:
        raise Refused("url", f"the URL{where} is not a valid URL")
    if parts.username is not None or parts.password is not None:
        raise Refused("credentials", f"the URL{where} contains a user name or password")
    return parsed


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.3g} MB"


@dataclass(frozen=True)
class Fetched:
    url: str  # where the body came from, after redirects
    status: int
    headers: httpx2.Headers
    body: bytes  # with `enough`: the first bytes only, up to where they were enough


async def _read(
    response: httpx2.Response, max_bytes: int, enough: Callable[[bytes], bool] | None = None
) -> bytes:
    """The body, cut at `max_bytes`. With `enough`, only the first bytes: reading stops as soon as
    `enough(bytes so far)` says they are (a picture's header), and `max_bytes` bounds that prefix instead of
    the whole file (whose declared length then does not matter)."""
    host = response.url.host
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise Refused("compressed", f"{host} sent its answer compressed ({encoding})")
    too_big = Refused(
        "too_large",
        f"the file at that URL is larger than {_mb(max_bytes)}"
        if enough is None
        else f"the first {_mb(max_bytes)} of the file at that URL were not enough",
    )
    declared = response.headers.get("content-length")
    if enough is None and declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_big
    chunks: list[bytes] = []
    received = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk[: max_bytes - received])
        received += len(chunk)
        if enough is not None and enough(b"".join(chunks)):
            return b"".join(chunks)
        if received > max_bytes:
            raise too_big
    return b"".join(chunks)


class PublicHTTP:
    """Fetches URLs by the rules in the module docstring.

    `policy`, `resolver` and `ssl_context` are seams for tests (a local fake server with its own
    certificate authority, DNS answers of the test's choosing); a running Shine uses the defaults: public
    addresses, the system resolver, the system's trusted certificate authorities."""

    def __init__(
        self,
        *,
        policy: AddressPolicy | None = None,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = f"Shine/{__version__}",
    ) -> None:
        self._policy = policy or AddressPolicy()
        self._resolver = resolver
        self._ssl_context = ssl_context
        self._user_agent = user_agent

    def _client(
        self, policy: AddressPolicy, timeout: float, headers: Mapping[str, str]
    ) -> httpx2.AsyncClient:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()  # loads the CA bundle once per instance
        transport = httpx2.AsyncHTTPTransport(verify=self._ssl_context, trust_env=False)
        # httpx2 (2.17, pinned) has no public hook for httpcore2's network backend: swap in the same
        # pool it builds, with the guarded backend.
        transport._pool = httpcore2.AsyncConnectionPool(
            ssl_context=self._ssl_context,
            max_connections=2,
            network_backend=_GuardedBackend(policy, self._resolver),
        )
        return httpx2.AsyncClient(
            transport=transport,
            trust_env=False,
            follow_redirects=False,
            timeout=httpx2.Timeout(timeout),
            headers={"User-Agent": self._user_agent, **headers, "Accept-Encoding": "identity"},
        )

    async def get(
        self,
        url: str,
        *,
        max_bytes: int,
        timeout: float,  # noqa: ASYNC109  (the deadline is part of the contract: it covers every redirect)
        max_redirects: int = MAX_REDIRECTS,
        https_only: bool = True,
        headers: Mapping[str, str] | None = None,
        also_allow: Iterable[str] = (),
        check: Callable[[httpx2.Response], None] | None = None,
        enough: Callable[[bytes], bool] | None = None,
    ) -> Fetched:
        """GET `url`, following at most `max_redirects` redirects, within `timeout` seconds in all.

        `check` sees the final response's status and headers before its body is read, and raises (any
        exception, passed on as it is) to stop there. `also_allow` adds networks to this request's
        address policy (for a Shine only this machine can reach). `enough`: read only the first bytes, up
        to `max_bytes`, until it says they suffice (see `_read`). `Refused` for everything else."""
        current = check_url(url, https_only=https_only)
        policy = self._policy.plus(also_allow)
        try:
            with anyio.fail_after(timeout):
                async with self._client(policy, timeout, headers or {}) as client:
                    redirects = 0
                    while True:
                        async with client.stream("GET", current) as response:
                            if not response.is_redirect:
                                if check is not None:
                                    check(response)
                                body = await _read(response, max_bytes, enough)
                                return Fetched(
                                    str(response.url), response.status_code, response.headers, body
                                )
                            if redirects == max_redirects:
                                raise Refused(
                                    "redirects",
                                    f"the URL redirects more than {max_redirects} times"
                                    if max_redirects
                                    else "the URL redirects elsewhere; give the final address",
                                )
                            redirects += 1
                            location = urljoin(str(current), response.headers["location"])
                            current = check_url(location, https_only=https_only, redirected=True)
        except (TimeoutError, httpx2.TimeoutException) as exc:
            raise Refused("timeout", f"the download took longer than {timeout:g} s") from exc
        except httpx2.HTTPError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise Refused(
                    "certificate", f"{current.host} did not present a valid certificate for https"
                ) from exc
            raise Refused(
                "connection", f"could not download from {current.host} ({type(exc).__name__})"
            ) from exc
