"""People: create or update a user from a verified sign-in, read them back, fold a guest's data into
their account when they sign in, and close an account on its owner's request."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import anyio
from sqlalchemy import ColumnElement, Table, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from shine_mcp.auth.keys import new_id
from shine_mcp.auth.sessions import revoke_user_sessions
from shine_mcp.auth.tokens import revoke_user_tokens
from shine_mcp.auth.widget_tokens import revoke_user_widget_tokens
from shine_mcp.clock import utcnow
from shine_mcp.integrations.google import VerifiedPerson
from shine_mcp.store.carts import Cart, CartItem
from shine_mcp.store.db import Database
from shine_mcp.store.photos import PhotoStore
from shine_mcp.store.profiles import merge_profile_data
from shine_mcp.store.skin_reports import SkinReportRecord
from shine_mcp.store.tables import pipe_split
from shine_mcp.store.users import (
    OAuthCode,
    OAuthToken,
    PersonAlias,
    RateLimitBucket,
    User,
    WebSession,
    WidgetCode,
    WidgetToken,
)

log = logging.getLogger("shine.auth")

# Tables that hold who someone is, not what they made: never re-owned by a guest merge.
_IDENTITY_TABLES = frozenset(
    {
        "users",
        "web_sessions",
        "widget_tokens",
        "widget_codes",
        "oauth_clients",
        "oauth_requests",
        "oauth_codes",
        "oauth_tokens",
        "audit_events",
        "person_aliases",
        "rate_limit_buckets",
    }
)
# Tables whose rows a guest merge combines by hand (a person holds one profile, one cart; kept photos move).
_MERGED_BY_HAND = frozenset({"profiles", "product_feedback", "carts", "skin_reports"})


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
    async with db.reading() as session:
        return await session.get(User, user_id)


async def merge_guest(db: Database, guest_id: str, user_id: str, *, photos: PhotoStore) -> dict[str, int]:
    """Make everything a guest made (profile, ratings, reports and kept photos, chats, cart, orders, …) the
    account's they just signed in to, and remember the guest id as the account's (`PersonAlias`).

    Where the account already holds the one row a person has, the two are combined: the profile's lists
    are united and the account's single answers kept (`merge_profile_data`), the guest's cart items join the
    account's cart. Every other table with a `user_id` column is re-owned generically, so features added
    later carry over too. Nothing stays under the guest id; its sessions end. Returns rows moved, by table."""
    moved: dict[str, int] = {}
    tables: list[Table] = [
        t
        for t in SQLModel.metadata.sorted_tables
        if "user_id" in t.c and t.name not in _IDENTITY_TABLES and t.name not in _MERGED_BY_HAND
    ]
    files: dict[str, str] = {}
    async with db.session() as session:
        try:
            moved |= await merge_profile_data(session, guest_id, user_id)
            moved |= await _merge_carts(session, guest_id, user_id)
            files = await anyio.to_thread.run_sync(photos.move_user, guest_id, user_id)
            moved |= await _merge_reports(session, guest_id, user_id, files)
            for table in tables:
                try:
                    async with session.begin_nested():
                        result = await session.execute(
                            update(table).where(table.c.user_id == guest_id).values(user_id=user_id)
                        )
                except IntegrityError:
                    log.warning("guest merge: %s rows stay under the guest id until erased", table.name)
                    continue
                count = int(getattr(result, "rowcount", 0) or 0)
                if count:
                    moved[table.name] = count
            await session.merge(PersonAlias(alias_id=guest_id, person_id=user_id, created_at=utcnow()))
            await _forget_ids(session, [guest_id])
            await session.commit()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await session.rollback()
                await anyio.to_thread.run_sync(photos.move_back, files)
            raise
    return moved


async def _merge_reports(
    session: AsyncSession, guest_id: str, user_id: str, files: dict[str, str]
) -> dict[str, int]:
    reports = SkinReportRecord.__table__  # type: ignore[attr-defined]
    result = await session.execute(
        update(reports).where(reports.c.user_id == guest_id).values(user_id=user_id)
    )
    for old, new in files.items():
        await session.execute(
            update(reports)
            .where(reports.c.user_id == user_id, reports.c.photo_path == old)
            .values(photo_path=new)
        )
    count = int(getattr(result, "rowcount", 0) or 0)
    return {"skin_reports": count} if count else {}


async def _merge_carts(session: AsyncSession, guest_id: str, user_id: str) -> dict[str, int]:
    """The guest's cart becomes the account's; when the account has one, the guest's products join it
    (a product in both keeps the account's quantity) and the guest's cart goes."""
    found = await session.execute(select(Cart).where(col(Cart.user_id).in_([guest_id, user_id])))
    carts = {cart.user_id: cart for cart in found.scalars()}
    guest, account = carts.get(guest_id), carts.get(user_id)
    if guest is None:
        return {}
    if account is None:
        guest.user_id = user_id
        await session.flush()
        return {"carts": 1}
    items = list((await session.execute(select(CartItem).where(col(CartItem.cart_id) == guest.id))).scalars())
    have = set(
        (
            await session.execute(select(col(CartItem.variant_id)).where(col(CartItem.cart_id) == account.id))
        ).scalars()
    )
    added = 0
    for item in items:
        other_currency = bool(have) and account.currency not in (None, item.currency)
        if item.variant_id in have or other_currency:  # one currency per cart
            continue
        session.add(
            CartItem(
                cart_id=account.id,
                variant_id=item.variant_id,
                product_id=item.product_id,
                quantity=item.quantity,
                unit_price_minor=item.unit_price_minor,
                currency=item.currency,
                added_at=item.added_at,
            )
        )
        account.currency = item.currency
        have.add(item.variant_id)
        added += 1
    if added:
        account.version += 1  # a changed cart is a new version: an order for the old one stays that
        account.updated_at = utcnow()
    await session.flush()
    await session.execute(delete(CartItem).where(col(CartItem.cart_id) == guest.id))
    await session.execute(delete(Cart).where(col(Cart.id) == guest.id))
    return {"cart_items": added} if added else {}


def _bucket_of(ids: Sequence[str]) -> ColumnElement[bool]:
    """The rate-limit counters keyed by these people (`user:<id>`, `user:<id>:…`)."""
    key = col(RateLimitBucket.key)
    return or_(
        key.in_([f"user:{i}" for i in ids]),
        *(key.startswith(f"user:{i}:", autoescape=True) for i in ids),
    )


async def _forget_ids(session: AsyncSession, ids: Sequence[str]) -> None:
    """Inside a transaction: the sessions and rate-limit counters of ids nobody can act as any more."""
    if ids:
        await session.execute(delete(WebSession).where(col(WebSession.user_id).in_(list(ids))))
        await session.execute(delete(RateLimitBucket).where(_bucket_of(ids)))


async def merged_ids(db: Database, user_id: str) -> list[str]:
    """The guest ids merged into this account: erasing the account erases under them too."""
    async with db.reading() as session:
        found = await session.execute(
            select(col(PersonAlias.alias_id))
            .where(col(PersonAlias.person_id) == user_id)
            .order_by(col(PersonAlias.alias_id))
        )
        return list(found.scalars())


async def forget_merged_ids(db: Database, user_id: str, alias_ids: Sequence[str]) -> int:
    """Once their data is erased: the guest ids merged into this account, with their ended sessions and
    rate-limit counters. Returns how many ids were forgotten."""
    if not alias_ids:
        return 0
    async with db.session() as session, session.begin():
        await _forget_ids(session, alias_ids)
        result = await session.execute(
            delete(PersonAlias).where(
                col(PersonAlias.person_id) == user_id, col(PersonAlias.alias_id).in_(list(alias_ids))
            )
        )
    return int(getattr(result, "rowcount", 0) or 0)


async def close_account(db: Database, user_id: str, *, now: datetime) -> dict[str, int]:
    """End every way in (web sessions, MCP clients' tokens, unused sign-in codes), then remove the account.

    The caller erases the person's data first; this removes who they are, the rows of their ended sessions
    and tokens included (only the audit log keeps the account id). Signing in again with the same Google
    account makes a new, empty account.
    """
    sessions = await revoke_user_sessions(db, user_id, now=now)
    sessions += await revoke_user_widget_tokens(db, user_id, now=now)
    tokens = await revoke_user_tokens(db, user_id, now=now)
    async with db.session() as session, session.begin():
        codes = await session.execute(delete(OAuthCode).where(col(OAuthCode.user_id) == user_id))
        await session.execute(delete(OAuthToken).where(col(OAuthToken.user_id) == user_id))
        await session.execute(delete(WidgetToken).where(col(WidgetToken.user_id) == user_id))
        await session.execute(delete(WidgetCode).where(col(WidgetCode.user_id) == user_id))
        await _forget_ids(session, [user_id])
        await session.execute(delete(PersonAlias).where(col(PersonAlias.person_id) == user_id))
        account = await session.execute(delete(User).where(col(User.id) == user_id))
    return {
        "web_sessions_ended": sessions,
        "app_tokens_revoked": tokens,
        "sign_in_codes_deleted": int(getattr(codes, "rowcount", 0) or 0),
        "account": int(getattr(account, "rowcount", 0) or 0),
    }
