"""Google sign-in (OpenID Connect): the authorization-code flow with PKCE, `state` and `nonce`, built on
`google-auth-oauthlib`'s `Flow`, and ID-token verification with `google.oauth2.id_token`.

Every endpoint comes from one OpenID discovery document (`SHINE_GOOGLE_DISCOVERY_URL`), so a self-hosted
OpenID provider or a test fake can stand in for Google. Google's tokens are used once, to learn who
signed in, and never kept. The libraries are synchronous; their calls run in a worker thread.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import anyio
import google.auth.exceptions
import google.auth.transport.requests
import jwt
import requests
from google.oauth2 import id_token
from google_auth_oauthlib.flow import Flow
from oauthlib.oauth2.rfc6749.errors import OAuth2Error

log = logging.getLogger("shine.google")

# Full scope names: Google answers with these, and oauthlib refuses a token whose scope "changed".
SCOPES = [
    "openid",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
]
HTTP_TIMEOUT = 10
DISCOVERY_TTL = 3600
CLOCK_SKEW = 30

Reason = Literal[
    "not_configured",
    "unreachable",
    "misconfigured",
    "cancelled",
    "state_mismatch",
    "expired_login",
    "code_rejected",
    "invalid_id_token",
    "expired_id_token",
    "wrong_audience",
    "wrong_issuer",
    "nonce_mismatch",
    "email_unverified",
]


class SignInError(Exception):
    """A sign-in that must not go through; `str()` is a message for the person, `reason` for the audit log."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class VerifiedPerson:
    """What an identity provider (or the loopback dev sign-in) vouched for."""

    email: str
    email_verified: bool
    name: str | None = None
    picture: str | None = None
    google_sub: str | None = None


@dataclass(frozen=True)
class OpenIDConfig:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True)
class PendingLogin:
    """What the callback must find again: kept by the web shell in an encrypted, short-lived cookie."""

    state: str
    nonce: str
    code_verifier: str


class GoogleSignIn:
    def __init__(self, client_id: str, client_secret: str, discovery_url: str) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self._discovery_url = discovery_url
        self._config: OpenIDConfig | None = None
        self._fetched_at = 0.0

    async def discovery(self) -> OpenIDConfig:
        if self._config is None or time.monotonic() - self._fetched_at > DISCOVERY_TTL:
            self._config = await anyio.to_thread.run_sync(self._fetch_discovery)
            self._fetched_at = time.monotonic()
        return self._config

    def _unavailable(self, reason: Reason, problem: str) -> SignInError:
        """Log the merchant's one line (the setting, what is wrong, no secrets) and make the shopper's error."""
        parts = urlsplit(self._discovery_url)
        shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"  # no credentials, no query
        log.warning("sign-in is unavailable: SHINE_GOOGLE_DISCOVERY_URL (%s) %s", shown, problem)
        return SignInError(reason, "sign-in is unavailable right now; try again later")

    def _fetch_discovery(self) -> OpenIDConfig:
        if urlsplit(self._discovery_url).scheme != "https":
            raise self._unavailable("misconfigured", "is not an https address")
        try:
            response = requests.get(self._discovery_url, timeout=HTTP_TIMEOUT)
            response.raise_for_status()
            document = response.json()
            config = OpenIDConfig(
                issuer=str(document["issuer"]),
                authorization_endpoint=str(document["authorization_endpoint"]),
                token_endpoint=str(document["token_endpoint"]),
                jwks_uri=str(document["jwks_uri"]),
            )
        except requests.RequestException as exc:
            if not isinstance(exc, requests.JSONDecodeError):
                status = getattr(exc.response, "status_code", None)
                detail = f"HTTP {status}" if status else type(exc).__name__
                raise self._unavailable("unreachable", f"could not be fetched: {detail}") from exc
            raise self._unavailable("misconfigured", "is not JSON") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise self._unavailable(
                "misconfigured",
                "is not an OpenID discovery document (it needs issuer, authorization_endpoint, "
                "token_endpoint and jwks_uri)",
            ) from exc
        insecure = [
            name
            for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
            if urlsplit(getattr(config, name)).scheme != "https"
        ]
        if insecure:
            # oauthlib refuses plain http (rightly: codes and tokens would cross the network in clear).
            raise self._unavailable("misconfigured", f"lists non-https endpoints: {', '.join(insecure)}")
        return config

    def _flow(self, config: OpenIDConfig, redirect_uri: str, code_verifier: str | None = None) -> Flow:
        client_config = {
            "web": {
                "client_id": self.client_id,
                "client_secret": self._client_secret,
                "auth_uri": config.authorization_endpoint,
                "token_uri": config.token_endpoint,
            }
        }
        return Flow.from_client_config(
            client_config,
            scopes=SCOPES,
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
            autogenerate_code_verifier=code_verifier is None,
        )

    async def start(self, redirect_uri: str) -> tuple[str, PendingLogin]:
        """The URL to send the browser to, and what the callback will need to check the answer."""
        config = await self.discovery()
        flow = self._flow(config, redirect_uri)
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        try:
            url, _ = flow.authorization_url(
                state=state, nonce=nonce, access_type="online", prompt="select_account"
            )
        except OAuth2Error as exc:  # e.g. InsecureTransportError: the endpoint checks above missed a case
            raise self._unavailable("misconfigured", f"was refused by oauthlib: {exc.error}") from exc
        finally:
            flow.oauth2session.close()
        assert flow.code_verifier is not None  # PKCE S256: the Flow made a verifier and sent its challenge
        return url, PendingLogin(state=state, nonce=nonce, code_verifier=flow.code_verifier)

    async def finish(self, *, code: str, redirect_uri: str, pending: PendingLogin) -> VerifiedPerson:
        """Exchange the code and check the ID token; the caller has already matched `state`."""
        config = await self.discovery()
        raw = await anyio.to_thread.run_sync(self._exchange, config, code, redirect_uri, pending)
        claims = await anyio.to_thread.run_sync(self._verify, config, raw)
        return self._person(config, claims, pending)

    def _exchange(self, config: OpenIDConfig, code: str, redirect_uri: str, pending: PendingLogin) -> str:
        flow = self._flow(config, redirect_uri, pending.code_verifier)
        try:
            token = flow.fetch_token(code=code, timeout=HTTP_TIMEOUT)
        except OAuth2Error as exc:
            raise SignInError(
                "code_rejected",
                "the sign-in service refused this sign-in (it may have been used already); try again",
            ) from exc
        except requests.RequestException as exc:
            raise SignInError(
                "unreachable", "the sign-in service cannot be reached; try again shortly"
            ) from exc
        finally:
            flow.oauth2session.close()
        raw = token.get("id_token")
        if not isinstance(raw, str):
            raise SignInError("invalid_id_token", "the sign-in service sent no identity; try again")
        return raw

    def _verify(self, config: OpenIDConfig, raw: str) -> dict[str, Any]:
        session = requests.Session()
        try:
            return dict(
                id_token.verify_token(
                    raw,
                    google.auth.transport.requests.Request(session),
                    audience=self.client_id,
                    certs_url=config.jwks_uri,
                    clock_skew_in_seconds=CLOCK_SKEW,
                )
            )
        except jwt.ExpiredSignatureError as exc:
            raise SignInError("expired_id_token", "the sign-in took too long and expired; try again") from exc
        except jwt.InvalidAudienceError as exc:
            raise SignInError("wrong_audience", "that identity was issued for another application") from exc
        except (jwt.PyJWTError, google.auth.exceptions.GoogleAuthError, ValueError) as exc:
            raise SignInError("invalid_id_token", "the identity could not be verified; try again") from exc
        finally:
            session.close()

    def _person(self, config: OpenIDConfig, claims: dict[str, Any], pending: PendingLogin) -> VerifiedPerson:
        issuers = {config.issuer}
        if config.issuer == "https://accounts.google.com":
            issuers.add("accounts.google.com")  # Google documents both spellings
        if claims.get("iss") not in issuers:
            raise SignInError("wrong_issuer", "that identity comes from an unexpected issuer")
        if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(
            claims["nonce"], pending.nonce
        ):
            raise SignInError("nonce_mismatch", "the identity does not belong to this sign-in; try again")
        if claims.get("exp") is None or float(claims["exp"]) < time.time() - CLOCK_SKEW:
            raise SignInError("expired_id_token", "the sign-in took too long and expired; try again")
        email = claims.get("email")
        if not isinstance(email, str) or not email:
            raise SignInError("email_unverified", "the account has no email address to sign in with")
        if claims.get("email_verified") not in (True, "true"):
            raise SignInError("email_unverified", "verify your email address with Google first, then sign in")
        return VerifiedPerson(
            email=email,
            email_verified=True,
            name=claims.get("name"),
            picture=claims.get("picture"),
            google_sub=str(claims["sub"]) if claims.get("sub") else None,
        )
