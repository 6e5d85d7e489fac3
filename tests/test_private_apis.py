"""Shine reaches into no library's private modules or methods, except one pinned use that is checked here so
an upgrade fails with a message saying what to re-check, not somewhere deep in a fetch."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import sys
import tomllib
from pathlib import Path

import httpcore2
import httpx2
import stripe

from shine_mcp.integrations.payments import _HTTPXClient

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("shine_mcp", "agent", "web_shell", "shine_cli")


def test_no_module_imports_a_private_module_of_a_library() -> None:
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = (
                    [alias.name for alias in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module]
                    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                    else []
                )
                for name in names:
                    parts = name.split(".")
                    library = parts[0] not in PACKAGES and parts[0] not in sys.stdlib_module_names
                    if library and any(part.startswith("_") for part in parts):
                        found.append(f"{path.relative_to(ROOT)}: {name}")
    assert not found, "private modules of libraries (they change without notice):\n" + "\n".join(found)


def test_the_stripe_client_overrides_only_the_sdk_s_public_client_methods() -> None:
    # stripe.HTTPClient is the base the SDK offers custom clients; underscored methods of any SDK class are
    # internals that may change in a minor release.
    assert _HTTPXClient.__bases__ == (stripe.HTTPClient,)
    sdk = {name for klass in _HTTPXClient.__mro__[1:] for name in vars(klass)}
    overridden = {name for name in vars(_HTTPXClient) if name in sdk and not name.startswith("__")}
    assert overridden and all(not name.startswith("_") for name in overridden), sorted(overridden)
    assert {"request_async", "sleep_async", "close_async"} <= overridden


def test_public_http_pinned_use_of_httpx2_transport_pool() -> None:
    """`PublicHTTP._client` replaces `httpx2.AsyncHTTPTransport._pool` (private) with an
    `httpcore2.AsyncConnectionPool` on the address-checking network backend: httpx2 has no public hook for
    it. On an httpx2 upgrade past the pin, re-read `AsyncHTTPTransport.__init__` and `handle_async_request`
    before widening the range in pyproject.toml and here."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "httpx2>=2.17,<2.18" in declared
    version = tuple(int(part) for part in metadata.version("httpx2").split(".")[:2])
    assert version == (2, 17), (
        f"httpx2 {metadata.version('httpx2')} is installed but shine_mcp/integrations/public_http.py relies on "
        "the private httpx2.AsyncHTTPTransport._pool, checked only on httpx2 2.17"
    )
    transport = httpx2.AsyncHTTPTransport(trust_env=False)
    assert isinstance(getattr(transport, "_pool", None), httpcore2.AsyncConnectionPool), (
        "httpx2.AsyncHTTPTransport no longer keeps its httpcore2 pool in `_pool`: PublicHTTP's address checks "
        "would not be installed"
    )
