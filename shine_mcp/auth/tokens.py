"""OAuth codes and tokens in the database: issue, look up, rotate, revoke. Only hashes are stored.

A family is everything one approval produced: its code, its first tokens and every rotation after.
Showing a used code or a rotated refresh token again means it leaked, so the whole family is revoked.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from shine_mcp.auth.keys import new_id, token_hash
from shine_mcp.auth.policy import ACCESS_TOKEN_SECONDS, CODE_SECONDS, REFRESH_TOKEN_SECONDS
from shine_mcp.clock import aware
from shine_mcp.store.db import Database
from shine_mcp.store.users import OAuthCode, OAuthRequest, OAuthToken, User

ACCESS_PREFIX, REFRESH_PREFIX = "shine_at_", "shine_rt_"  # recognisable by secret scanners


@dataclass(frozen=True)
class Issued:
    access_token: str
    refresh_token: str | None
    scopes: list[str]
    expires_in: int


async def create_code(
    db: Database,
    *,
    client_id: str,
    user_id: str,
    scopes: list[str],
    code_challenge: str,
    redirect_uri: str,
    redirect_uri_provided_explicitly: bool,
    resource: str,
    now: datetime,
) -> str:
    code = secrets.token_urlsafe(32)  # 256 bits; RFC 6749 §10.10 asks for at least 128
    async with db.session() as session:
        session.add(
            OAuthCode(
                code_hash=token_hash(code),
                client_id=client_id,
                user_id=user_id,
                scopes=" ".join(scopes),
                code_challenge=code_challenge,
                redirect_uri=redirect_uri,
                redirect_uri_provided_explicitly=redirect_uri_provided_explicitly,
                resource=resource,
                family_id=new_id("fam"),
                expires_at=now + timedelta(seconds=CODE_SECONDS),
            )
        )
        await session.commit()
    return code


async def find_code(db: Database, code: str) -> OAuthCode | None:
    async with db.reading() as session:
        return await session.get(OAuthCode, token_hash(code))


async def spend_code(db: Database, code_hash: str, *, now: datetime) -> bool:
    """Mark a code used; False when another request spent it first."""
    async with db.session() as session:
        result = await session.execute(
            update(OAuthCode)
            .where(col(OAuthCode.code_hash) == code_hash)
            .where(col(OAuthCode.used_at).is_(None))
            .values(used_at=now)
        )
        await session.commit()
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def find_token(db: Database, token: str, kind: str) -> OAuthToken | None:
    async with db.reading() as session:
        row = (
            await session.execute(select(OAuthToken).where(col(OAuthToken.token_hash) == token_hash(token)))
        ).scalar_one_or_none()
    return row if row is not None and row.kind == kind else None


async def find_access_token(db: Database, token: str) -> tuple[OAuthToken, User] | None:
    """An access token with its user, in one query: this runs on every `/mcp` request."""
    async with db.reading() as session:
        row = (
            await session.execute(
                select(OAuthToken, User)
                .join(User, col(User.id) == col(OAuthToken.user_id))
                .where(col(OAuthToken.token_hash) == token_hash(token))
                .where(col(OAuthToken.kind) == "access")
            )
        ).first()
    return (row[0], row[1]) if row is not None else None


def live(row: OAuthToken, now: datetime) -> bool:
    return row.revoked_at is None and aware(row.expires_at) > now


async def issue(
    db: Database,
    *,
    family_id: str,
    client_id: str,
    user_id: str,
    scopes: list[str],
    resource: str,
    with_refresh: bool,
    now: datetime,
    rotating: OAuthToken | None = None,
) -> Issued | None:
    """New tokens in a family. When `rotating` a refresh token, it is spent in the same transaction;
    None means it was already spent (a concurrent or replayed refresh)."""
    access = ACCESS_PREFIX + secrets.token_urlsafe(32)
    refresh = REFRESH_PREFIX + secrets.token_urlsafe(32) if with_refresh else None
    async with db.session() as session:
        if rotating is not None:
            spent = await session.execute(
                update(OAuthToken)
                .where(col(OAuthToken.id) == rotating.id)
                .where(col(OAuthToken.used_at).is_(None))
                .where(col(OAuthToken.revoked_at).is_(None))
                .values(used_at=now)
            )
            if int(getattr(spent, "rowcount", 0) or 0) != 1:
                await session.rollback()
                return None
        minted = [(access, "access", ACCESS_TOKEN_SECONDS)]
        if refresh is not None:
            minted.append((refresh, "refresh", REFRESH_TOKEN_SECONDS))
        for token, kind, lifetime in minted:
            session.add(
                OAuthToken(
                    id=new_id("tok"),
                    token_hash=token_hash(token),
                    kind=kind,
                    family_id=family_id,
                    client_id=client_id,
                    user_id=user_id,
                    scopes=" ".join(scopes),
                    resource=resource,
                    created_at=now,
                    expires_at=now + timedelta(seconds=lifetime),
                )
            )
        await session.commit()
    return Issued(access, refresh, scopes, ACCESS_TOKEN_SECONDS)


async def _revoke(session: AsyncSession, now: datetime, **where: str) -> int:
    statement = update(OAuthToken).where(col(OAuthToken.revoked_at).is_(None))
    for column, value in where.items():
        statement = statement.where(getattr(OAuthToken, column) == value)
    result = await session.execute(statement.values(revoked_at=now))
    return int(getattr(result, "rowcount", 0) or 0)


async def revoke_family(db: Database, family_id: str, *, now: datetime) -> int:
    async with db.session() as session:
        count = await _revoke(session, now, family_id=family_id)
        await session.commit()
    return count


async def revoke_user_tokens(db: Database, user_id: str, *, now: datetime) -> int:
    """Every token a user's MCP clients hold (their account being deleted, or "sign out everywhere")."""
    async with db.session() as session:
        count = await _revoke(session, now, user_id=user_id)
        await session.commit()
    return count


async def save_request(
    db: Database, *, client_id: str, params: dict[str, object], expires_at: datetime
) -> str:
    request_id = new_id("azr", 16)
    async with db.session() as session:
        session.add(OAuthRequest(id=request_id, client_id=client_id, params=params, expires_at=expires_at))
        await session.commit()
    return request_id


async def find_request(db: Database, request_id: str, *, now: datetime) -> OAuthRequest | None:
    async with db.reading() as session:
        row = await session.get(OAuthRequest, request_id)
    return row if row is not None and aware(row.expires_at) > now else None


async def take_request(db: Database, request_id: str, *, now: datetime) -> OAuthRequest | None:
    """The request, removed so that it is answered only once."""
    async with db.session() as session:
        row = await session.get(OAuthRequest, request_id)
        if row is None:
            return None
        result = await session.execute(delete(OAuthRequest).where(col(OAuthRequest.id) == request_id))
        await session.commit()
    if int(getattr(result, "rowcount", 0) or 0) != 1 or aware(row.expires_at) <= now:
        return None
    return row


async def sweep(db: Database, *, now: datetime) -> None:
    """Forget what can no longer be used. Rotated refresh tokens stay until they expire: a late replay
    of one must still be recognised as reuse."""
    async with db.session() as session:
        await session.execute(delete(OAuthRequest).where(col(OAuthRequest.expires_at) < now))
        await session.execute(delete(OAuthCode).where(col(OAuthCode.expires_at) < now - timedelta(days=1)))
        await session.execute(delete(OAuthToken).where(col(OAuthToken.expires_at) < now - timedelta(days=1)))
        await session.commit()
