"""Widget tokens: how the chat widget on a shop's own site (`SHINE_ALLOWED_ORIGINS`) stays signed in
without Shine's cookie, which is a third-party cookie there and dropped by browsers.

The sign-in popup, on Shine's origin, issues a single-use code bound to the person, the embedding origin
and a PKCE-style challenge (SHA-256 of a verifier the widget made before opening the popup). The widget
trades code and verifier for an opaque token: stored as a hash, bound to that origin (every request must
come with that `Origin`), with an idle expiry that slides with use. The routes live in
`web_shell/widget_sign_in.py`; the front door (`gate.py`) reads the token for `/api/*`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlmodel import col

from shine_mcp.auth.keys import new_id, token_hash
from shine_mcp.auth.sessions import SLIDE_AFTER, ActiveSession
from shine_mcp.clock import aware
from shine_mcp.store.db import Database
from shine_mcp.store.users import WidgetCode, WidgetToken

CODE_LIFETIME = timedelta(minutes=2)  # the popup posts it to the widget at once
TOKEN_IDLE = timedelta(hours=12)  # a widget token ends after this long unused; each use slides it
TOKEN_PREFIX = "swt_"  # tells a widget token apart from an MCP access token in a log or a header
CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url of a SHA-256, unpadded
VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636's alphabet and lengths

log = logging.getLogger("shine.auth")


class WidgetSignInRefused(Exception):
    """A code exchange that must not give a token; `reason` is for the log and the API's error code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once to the widget, never stored
    session: ActiveSession


def challenge_of(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def issue_code(db: Database, user_id: str, origin: str, challenge: str, *, now: datetime) -> str:
    """A single-use code for `user_id`, redeemable only from `origin` with the verifier of `challenge`."""
    if not CHALLENGE.match(challenge):
        raise ValueError("the challenge is not a base64url SHA-256")
    code = secrets.token_urlsafe(32)
    async with db.session() as session:
        session.add(
            WidgetCode(
                code_hash=token_hash(code),
                user_id=user_id,
                origin=origin,
                challenge=challenge,
                expires_at=now + CODE_LIFETIME,
            )
        )
        await session.commit()
    return code


async def exchange_code(db: Database, code: str, verifier: str, origin: str, *, now: datetime) -> IssuedToken:
    """The widget token for a code, once. Any attempt burns the code (a wrong verifier cannot be retried);
    a code presented again also ends the token it was first exchanged for, as OAuth asks of servers."""
    if not code or len(code) > 200:
        raise WidgetSignInRefused("unknown_code", "this sign-in code is not valid; sign in again")
    async with db.session() as session:
        row = (
            await session.execute(select(WidgetCode).where(col(WidgetCode.code_hash) == token_hash(code)))
        ).scalar_one_or_none()
        if row is None:
            raise WidgetSignInRefused("unknown_code", "this sign-in code is not valid; sign in again")
        claimed = await session.execute(
            update(WidgetCode)
            .where(col(WidgetCode.code_hash) == row.code_hash)
            .where(col(WidgetCode.used_at).is_(None))
            .values(used_at=now)
        )
        await session.commit()
        if int(getattr(claimed, "rowcount", 0) or 0) != 1:
            if row.token_id:
                await _revoke(db, [col(WidgetToken.id) == row.token_id], now)
            log.warning("a widget sign-in code was presented again (from %r); its token is revoked", origin)
            raise WidgetSignInRefused("reused_code", "this sign-in code was already used; sign in again")
    if aware(row.expires_at) <= now:
        raise WidgetSignInRefused("expired_code", "this sign-in took too long; sign in again")
    if origin != row.origin:
        log.warning("a widget sign-in code for %r was presented from %r", row.origin, origin)
        raise WidgetSignInRefused("wrong_origin", "this sign-in code belongs to another site")
    if not VERIFIER.match(verifier or "") or not secrets.compare_digest(
        challenge_of(verifier), row.challenge
    ):
        log.warning("a widget sign-in code was presented with the wrong verifier (from %r)", origin)
        raise WidgetSignInRefused(
            "wrong_verifier", "this sign-in does not belong to this page; sign in again"
        )
    issued = await _create_token(db, row.user_id, row.origin, now=now)
    async with db.session() as session:
        await session.execute(
            update(WidgetCode)
            .where(col(WidgetCode.code_hash) == row.code_hash)
            .values(token_id=issued.session.id)
        )
        await session.commit()
    return issued


async def _create_token(db: Database, user_id: str, origin: str, *, now: datetime) -> IssuedToken:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = WidgetToken(
        id=new_id("wtk"),
        token_hash=token_hash(token),
        user_id=user_id,
        origin=origin,
        created_at=now,
        last_seen_at=now,
        expires_at=now + TOKEN_IDLE,
    )
    async with db.session() as session:
        session.add(row)
        await session.commit()
    return IssuedToken(token, ActiveSession(row.id, user_id, False, row.expires_at, slid=False))


def is_widget_token(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX) and len(value) <= 200


async def resolve_widget_token(
    db: Database, token: str, origin: str | None, *, now: datetime
) -> ActiveSession | None:
    """The signed-in person a widget token names, when it is live and `origin` is the one it was handed
    to; its idle expiry slides forward (one write per `SLIDE_AFTER`, as for web sessions)."""
    if not is_widget_token(token):
        return None
    async with db.session() as session:
        row = (
            await session.execute(select(WidgetToken).where(col(WidgetToken.token_hash) == token_hash(token)))
        ).scalar_one_or_none()
        if row is None or row.revoked_at is not None or aware(row.expires_at) <= now:
            return None
        if origin != row.origin:
            log.warning("a widget token for %r was presented from %r and refused", row.origin, origin)
            return None
        expires = aware(row.expires_at)
        if now - aware(row.last_seen_at) >= SLIDE_AFTER:
            expires = now + TOKEN_IDLE
            await session.execute(
                update(WidgetToken)
                .where(col(WidgetToken.id) == row.id)
                .values(last_seen_at=now, expires_at=expires)
            )
            await session.commit()
        return ActiveSession(row.id, row.user_id, False, expires, slid=False)


async def revoke_widget_token(db: Database, token: str, origin: str | None, *, now: datetime) -> bool:
    """Sign one widget out (its "Sign out" button); only from the origin the token belongs to."""
    if not is_widget_token(token) or origin is None:
        return False
    ended = await _revoke(
        db, [col(WidgetToken.token_hash) == token_hash(token), col(WidgetToken.origin) == origin], now
    )
    return ended > 0


async def revoke_user_widget_tokens(db: Database, user_id: str, *, now: datetime) -> int:
    """End every widget token of a person (sign out everywhere, or their account closing)."""
    return await _revoke(db, [col(WidgetToken.user_id) == user_id], now)


async def _revoke(db: Database, conditions: list[object], now: datetime) -> int:
    async with db.session() as session:
        result = await session.execute(
            update(WidgetToken)
            .where(*conditions)  # type: ignore[arg-type]
            .where(col(WidgetToken.revoked_at).is_(None))
            .values(revoked_at=now)
        )
        await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
