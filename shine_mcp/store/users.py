"""Tables for who people are and what they may do: users, web sessions, OAuth clients, authorization
codes and tokens, rate-limit buckets, the audit log and the guest ids merged into an account. The logic
that uses them lives in `shine_mcp.auth`.

Secrets never sit here in the clear: session tokens, authorization codes and OAuth tokens are stored as
SHA-256 hashes, and a dynamically registered client's secret is encrypted with the server key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from shine_mcp.clock import utcnow


def _when(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class User(SQLModel, table=True):
    """A person who signed in (Google or the loopback dev sign-in). Guests have no row."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("email", name="uq_users_email"),
        UniqueConstraint("google_sub", name="uq_users_google_sub"),
    )

    id: str = Field(primary_key=True, max_length=40)  # "usr_…"
    email: str = Field(max_length=320)  # lower-cased
    email_verified: bool = False
    name: str | None = Field(default=None, max_length=200)
    picture: str | None = Field(default=None, max_length=2000)
    google_sub: str | None = Field(default=None, max_length=255)
    roles: str = ""  # pipe_join of stored roles ("premium"); "admin" comes from SHINE_ADMIN_EMAILS
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    last_sign_in_at: datetime | None = _when(nullable=True)


class WebSession(SQLModel, table=True):
    """A browser session: the cookie holds a random token, this row holds its hash."""

    __tablename__ = "web_sessions"
    __table_args__ = (
        UniqueConstraint("token_hash", name="uq_web_sessions_token_hash"),
        Index("ix_web_sessions_user_id", "user_id"),
    )

    id: str = Field(primary_key=True, max_length=40)  # "ses_…"
    token_hash: str = Field(max_length=64)
    user_id: str = Field(max_length=64)  # "usr_…", or "gst_…" for a guest
    guest: bool = False
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    last_seen_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = _when(nullable=True)


class OAuthClient(SQLModel, table=True):
    """An MCP client: registered dynamically (RFC 7591) or known by its metadata document URL (CIMD)."""

    __tablename__ = "oauth_clients"

    client_id: str = Field(primary_key=True, max_length=2048)
    kind: str = Field(max_length=10)  # "dcr" | "cimd"
    client_metadata: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    secret_encrypted: str | None = None  # Fernet token of the client secret, for confidential DCR clients
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    refresh_after: datetime | None = _when(nullable=True)  # CIMD: when to fetch the document again


class OAuthRequest(SQLModel, table=True):
    """An authorization request waiting for the person to sign in and approve it."""

    __tablename__ = "oauth_requests"

    id: str = Field(primary_key=True, max_length=40)  # "azr_…"
    client_id: str = Field(max_length=2048)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class OAuthCode(SQLModel, table=True):
    """An authorization code (hashed), single use; `family_id` names the tokens it was exchanged for."""

    __tablename__ = "oauth_codes"

    code_hash: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=2048)
    user_id: str = Field(max_length=64)
    scopes: str = Field(max_length=200)  # space-separated
    code_challenge: str = Field(max_length=128)
    redirect_uri: str = Field(max_length=2048)
    redirect_uri_provided_explicitly: bool = True
    resource: str = Field(max_length=2048)
    family_id: str = Field(max_length=40)
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    used_at: datetime | None = _when(nullable=True)


class OAuthToken(SQLModel, table=True):
    """An access or refresh token (hashed). One sign-in's tokens share a family; rotation keeps it."""

    __tablename__ = "oauth_tokens"
    __table_args__ = (
        UniqueConstraint("token_hash", name="uq_oauth_tokens_token_hash"),
        Index("ix_oauth_tokens_family_id", "family_id"),
        Index("ix_oauth_tokens_user_id", "user_id"),
    )

    id: str = Field(primary_key=True, max_length=40)  # "tok_…"
    token_hash: str = Field(max_length=64)
    kind: str = Field(max_length=10)  # "access" | "refresh"
    family_id: str = Field(max_length=40)
    client_id: str = Field(max_length=2048)
    user_id: str = Field(max_length=64)
    scopes: str = Field(max_length=200)
    resource: str = Field(max_length=2048)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    used_at: datetime | None = _when(nullable=True)  # refresh tokens: when it was rotated
    revoked_at: datetime | None = _when(nullable=True)


class RateLimitBucket(SQLModel, table=True):
    """A sliding-window counter (this minute and the last), shared by every Shine process."""

    __tablename__ = "rate_limit_buckets"

    key: str = Field(primary_key=True, max_length=200)
    window_start: int = Field(sa_column=Column(BigInteger, nullable=False))  # epoch seconds
    count: int = 0
    prev_count: int = 0


class AuditEvent(SQLModel, table=True):
    """Who did what: sign-ins, token issuance and revocation, admin actions, data deletion. No secrets."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_actor_id", "actor_id"),
    )

    id: str = Field(primary_key=True, max_length=40)  # "aud_…"
    at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    action: str = Field(max_length=40)
    actor_id: str | None = Field(default=None, max_length=64)
    client_id: str | None = Field(default=None, max_length=2048)
    ip: str | None = Field(default=None, max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class PersonAlias(SQLModel, table=True):
    """A guest id folded into an account at sign-in. Erasing the account erases under this id too, so
    nothing a person made before signing in outlives their erasure (a write that raced the merge, say)."""

    __tablename__ = "person_aliases"
    __table_args__ = (Index("ix_person_aliases_person_id", "person_id"),)

    alias_id: str = Field(primary_key=True, max_length=64)  # "gst_…"
    person_id: str = Field(max_length=64)  # the account's "usr_…"
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class WidgetToken(SQLModel, table=True):
    """A signed-in person's token for the chat widget on a shop's own site (where Shine's cookie is a
    third-party cookie browsers drop). Like a web session: only the SHA-256 is kept, expiry slides; it is
    also bound to the one shop origin it was handed to (see `shine_mcp.auth.widget_tokens`)."""

    __tablename__ = "widget_tokens"
    __table_args__ = (
        UniqueConstraint("token_hash", name="uq_widget_tokens_token_hash"),
        Index("ix_widget_tokens_user_id", "user_id"),
    )

    id: str = Field(primary_key=True, max_length=40)  # "wtk_…"
    token_hash: str = Field(max_length=64)
    user_id: str = Field(max_length=64)  # "usr_…"
    origin: str = Field(max_length=300)  # the embedding page's origin, e.g. "https://shop.example"
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    last_seen_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = _when(nullable=True)


class WidgetCode(SQLModel, table=True):
    """The single-use code the sign-in popup hands to the widget, exchanged once (with the verifier whose
    SHA-256 is `challenge`) for a `WidgetToken`. `token_id` remembers what it was exchanged for, so a
    replayed code also ends that token."""

    __tablename__ = "widget_codes"

    code_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(max_length=64)
    origin: str = Field(max_length=300)
    challenge: str = Field(max_length=64)
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    used_at: datetime | None = _when(nullable=True)
    token_id: str | None = Field(default=None, max_length=40)
