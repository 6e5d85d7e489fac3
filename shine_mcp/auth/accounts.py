"""People: create or update a user from a verified sign-in, read them back, fold a guest's data into
their account when they sign in, and close an account on its owner's request."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Table, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col

from shine_mcp.auth.keys import new_id
from shine_mcp.auth.sessions import revoke_user_sessions
from shine_mcp.auth.tokens import revoke_user_tokens
from shine_mcp.integrations.google import VerifiedPerson
from shine_mcp.store.db import Database
from shine_mcp.store.tables import pipe_split
from shine_mcp.store.users import OAuthCode, User

log = logging.getLogger("shine.auth")

# Tables that hold who someone is, not what they made: never re-owned by a guest merge.
_IDENTITY_TABLES = frozenset(
    {
        "users",
        "web_sessions",
        "oauth_clients",
        "oauth_requests",
        "oauth_codes",
        "oauth_tokens",
        "audit_events",
    }
)


class AccountConflict(Exception):
    """The sign-in names an account that another identity already owns."""


def stored_roles(user: User) -> list[str]:
    return pipe_split(user.roles)


async def upsert_user(db: Database, person: VerifiedPerson, *, now: datetime) -> User:
    """The user for this person: matched by Google subject first, then by (verified) email."""
    email = person.email.strip().lower()
    for attempt in range(2):  # a concurrent first sign-in of the same person may win the insert
        async with db.session() as session:
            conditions = [col(User.email) == email]
            if person.google_sub:
                conditions.append(col(User.google_sub) == person.google_sub)
            found = list((await session.execute(select(User).where(or_(*conditions)))).scalars())
            by_sub = next((u for u in found if person.google_sub and u.google_sub == person.google_sub), None)
            by_email = next((u for u in found if u.email == email), None)
            if by_sub is None and by_email is not None and by_email.google_sub and person.google_sub:
                raise AccountConflict("this email already belongs to another Google account on this shop")
            user = by_sub or by_email
            if user is None:
                user = User(id=new_id("usr"), email=email, created_at=now)
                session.add(user)
            if by_email is None or by_email is user:
                user.email = email  # an address another account holds stays with that account
            user.email_verified = person.email_verified
            user.name = person.name or user.name
            user.picture = person.picture or user.picture
            user.google_sub = person.google_sub or user.google_sub
            user.updated_at = now
            user.last_sign_in_at = now
            try:
                await session.commit()
            except IntegrityError:
                if attempt:
                    raise
                continue
            await session.refresh(user)
            return user
    raise AssertionError("unreachable")


async def get_user(db: Database, user_id: str) -> User | None:
    async with db.session() as session:
        return await session.get(User, user_id)


async def merge_guest(db: Database, guest_id: str, user_id: str) -> dict[str, int]:
    """Re-own every row a guest made (carts, reports, …) to the account they just signed in to.

    Generic over every table with a `user_id` column, so features added later carry over too. A table
    where the account already holds the one row allowed (a unique profile) keeps the account's row; the
    guest's stays behind under the guest id, unreachable, until it expires with the guest's data."""
    moved: dict[str, int] = {}
    tables: list[Table] = [
        t for t in SQLModel.metadata.sorted_tables if "user_id" in t.c and t.name not in _IDENTITY_TABLES
    ]
    async with db.session() as session:
        for table in tables:
            try:
                async with session.begin_nested():
                    result = await session.execute(
                        update(table).where(table.c.user_id == guest_id).values(user_id=user_id)
                    )
            except IntegrityError:
                log.info("guest merge: %s keeps the account's own row", table.name)
                continue
            count = int(getattr(result, "rowcount", 0) or 0)
            if count:
                moved[table.name] = count
        await session.commit()
    return moved


async def close_account(db: Database, user_id: str, *, now: datetime) -> dict[str, int]:
    """End every way in (web sessions, MCP clients' tokens, unused sign-in codes), then remove the account.

    The caller erases the person's data first; this removes who they are. Signing in again with the same
    Google account makes a new, empty account.
    """
    sessions = await revoke_user_sessions(db, user_id, now=now)
    tokens = await revoke_user_tokens(db, user_id, now=now)
    async with db.session() as session, session.begin():
        codes = await session.execute(delete(OAuthCode).where(col(OAuthCode.user_id) == user_id))
        account = await session.execute(delete(User).where(col(User.id) == user_id))
    return {
        "web_sessions_ended": sessions,
        "app_tokens_revoked": tokens,
        "sign_in_codes_deleted": int(getattr(codes, "rowcount", 0) or 0),
        "account": int(getattr(account, "rowcount", 0) or 0),
    }
