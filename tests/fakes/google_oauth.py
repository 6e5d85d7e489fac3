"""A local stand-in for Google's OpenID Connect provider, speaking its wire format.

Endpoints: the discovery document, the authorization endpoint (the configured person consents at once,
or declines), the token endpoint (client authentication, single-use codes, redirect URI and PKCE S256
checks, as Google does), and the JWKS with the RS256 key that signs the ID tokens. The key is generated
by the test (`cryptography`); nothing here is a real Google credential.

Tests steer it through `FakeGoogle`: who signs in, whether they consent, and one-off changes to the next
ID token (`tamper`) to produce the failures a real provider or an attacker could.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

SCOPES = (
    "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile"
)


@dataclass
class Person:
    email: str = "ana@example.com"
    sub: str = "1098765432101234567890"
    name: str = "Ana Example"
    email_verified: bool = True
    picture: str = "https://lh3.googleusercontent.com/a/ana"


@dataclass
class FakeGoogle:
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    issuer: str = ""  # set once the server's address is known
    advertised_base: str = ""  # the discovery document lists its endpoints here ("": the issuer)
    person: Person = field(default_factory=Person)
    consent: bool = True
    tamper: dict[str, Any] = field(default_factory=dict)  # claims to override in the next ID token only
    sign_with: rsa.RSAPrivateKey | None = None  # a key the JWKS does not publish, for the next ID token only
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    kid: str = field(default_factory=lambda: secrets.token_hex(8))
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)  # what Shine sent, for assertions

    def id_token(self, client_id: str, nonce: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "azp": client_id,
            "aud": client_id,
            "sub": self.person.sub,
            "email": self.person.email,
            "email_verified": self.person.email_verified,
            "name": self.person.name,
            "picture": self.person.picture,
            "iat": now,
            "exp": now + 3600,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(self.tamper)
        key, self.tamper, self.sign_with = self.sign_with or self.key, {}, None
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})


def _error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def create_app(google: FakeGoogle) -> Starlette:
    async def discovery(_request: Request) -> Response:
        base = google.advertised_base or google.issuer
        return JSONResponse(
            {
                "issuer": google.issuer,
                "authorization_endpoint": f"{base}/o/oauth2/v2/auth",
                "token_endpoint": f"{base}/token",
                "jwks_uri": f"{base}/oauth2/v3/certs",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "code_challenge_methods_supported": ["plain", "S256"],
            }
        )

    async def certs(_request: Request) -> Response:
        jwk = json.loads(RSAAlgorithm.to_jwk(google.key.public_key()))
        jwk.update({"kid": google.kid, "use": "sig", "alg": "RS256"})
        return JSONResponse({"keys": [jwk]})

    async def authorize(request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != google.client_id:
            return _error(400, "invalid_client", "The OAuth client was not found.")
        redirect_uri = q.get("redirect_uri", "")
        if redirect_uri not in google.redirect_uris:
            return _error(400, "redirect_uri_mismatch", "The redirect URI does not match a registered one.")
        if q.get("response_type") != "code":
            return _error(400, "unsupported_response_type", "response_type must be code")
        if not google.consent:
            return RedirectResponse(
                f"{redirect_uri}?{urlencode({'error': 'access_denied', 'state': q.get('state', '')})}"
            )
        code = "4/0A" + secrets.token_urlsafe(24)
        google.codes[code] = {
            "redirect_uri": redirect_uri,
            "challenge": q.get("code_challenge"),
            "method": q.get("code_challenge_method", "plain"),
            "nonce": q.get("nonce"),
            "scope": q.get("scope", ""),
            "used": False,
        }
        answer = {
            "state": q.get("state", ""),
            "code": code,
            "scope": q.get("scope", ""),
            "authuser": "0",
            "prompt": "consent",
        }
        return RedirectResponse(f"{redirect_uri}?{urlencode(answer)}", status_code=302)

    async def token(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        google.token_requests.append({k: v for k, v in form.items() if k != "client_secret"})
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
        if client_id != google.client_id or client_secret != google.client_secret:
            return _error(401, "invalid_client", "Unauthorized")
        if form.get("grant_type") != "authorization_code":
            return _error(400, "unsupported_grant_type", "Invalid grant_type")
        entry = google.codes.get(form.get("code", ""))
        if entry is None or entry["used"]:
            if entry is not None:
                entry["replayed"] = True
            return _error(400, "invalid_grant", "Malformed auth code.")
        entry["used"] = True
        if form.get("redirect_uri") != entry["redirect_uri"]:
            return _error(400, "redirect_uri_mismatch", "Bad Request")
        verifier = form.get("code_verifier", "")
        if entry["challenge"] is not None:
            if entry["method"] == "S256":
                computed = (
                    base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
                )
            else:
                computed = verifier
            if computed != entry["challenge"]:
                return _error(400, "invalid_grant", "code_verifier or verifier is not needed.")
        return JSONResponse(
            {
                "access_token": "ya29." + secrets.token_urlsafe(32),
                "expires_in": 3599,
                "token_type": "Bearer",
                "scope": entry["scope"],
                "id_token": google.id_token(google.client_id, entry["nonce"]),
            },
            headers={"Cache-Control": "no-store"},
        )

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
            Route("/oauth2/v3/certs", certs, methods=["GET"]),
            Route("/o/oauth2/v2/auth", authorize, methods=["GET"]),
            Route("/token", token, methods=["POST"]),
        ]
    )
