"""What the sign-in tests share: a loopback TLS authority, ASGI apps served by uvicorn in a thread, a
settable clock, and a small browser that follows redirects, keeps cookies and submits forms."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.support.asgi import serve_asgi


@dataclass(frozen=True)
class TLSFiles:
    ca: Path
    cert: Path
    key: Path


def make_tls(directory: Path) -> TLSFiles:
    """A throwaway CA and a certificate for 127.0.0.1 / localhost signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Shine test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TLSFiles(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


def serving(app: Any, port: int, tls: TLSFiles | None = None) -> AbstractContextManager[str]:
    """Serve an ASGI app on 127.0.0.1:`port` (over TLS with `tls`) from a thread; yields its base URL."""
    return serve_asgi(app, port, certfile=tls.cert if tls else None, keyfile=tls.key if tls else None)


@dataclass
class Clock:
    """The time the server under test sees; tests move it forward instead of waiting."""

    offset: dt.timedelta = field(default_factory=dt.timedelta)

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += dt.timedelta(**delta)


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str]
    buttons: list[tuple[str, str]]


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower(), {}, []))
        elif self.forms and tag == "input" and a.get("name") and a.get("type") != "checkbox":
            self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif self.forms and tag == "button" and a.get("name"):
            self.forms[-1].buttons.append((a["name"], a.get("value", "")))


def forms_of(page: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(page)
    return parser.forms


@dataclass
class Browser:
    """Follows redirects with cookies until it reaches `stop_at`; fills the pages a person would."""

    http: httpx.AsyncClient
    email: str = "ana@example.com"
    decision: str | None = "approve"  # None: stop at the consent page
    visited: list[str] = field(default_factory=list)

    async def go(
        self, url: str, stop_at: Callable[[str], bool] = lambda _u: False, limit: int = 20
    ) -> httpx.Response | str:
        """The final response, or the URL it stopped at (a client's redirect URI)."""
        method, data = "GET", None
        for _ in range(limit):
            self.visited.append(url)
            response = await self.http.request(method, url, data=data)
            if response.is_redirect:
                url = urljoin(url, response.headers["location"])
                method, data = "GET", None
                if stop_at(url):
                    return url
                continue
            form = self._fill(response)
            if form is None:
                return response
            method, url, data = "POST", urljoin(str(response.url), form[0]), form[1]
        raise AssertionError(f"too many steps: {self.visited}")

    def _fill(self, response: httpx.Response) -> tuple[str, dict[str, str]] | None:
        if response.status_code != 200 or "text/html" not in response.headers.get("content-type", ""):
            return None
        for form in forms_of(response.text):
            if form.action.endswith("/auth/dev"):
                return form.action, {
                    **form.fields,
                    "email": self.email,
                    "name": self.email.split("@")[0].title(),
                }
            if form.action.endswith("/auth/consent") and self.decision is not None:
                return form.action, {**form.fields, "decision": self.decision}
        return None
