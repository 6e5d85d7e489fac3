"""Sign-in and authorization: users, web sessions, OAuth clients, codes and tokens, rate limits, audit log.

Revision ID: 0800_auth
Revises: 0001_products
Create Date: 2026-11-22
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0800_auth"
down_revision = "0001_products"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_verified", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("picture", sa.String(length=2000), nullable=True),
        sa.Column("google_sub", sa.String(length=255), nullable=True),
        sa.Column("roles", sa.String(), nullable=False),
        _when("created_at"),
        _when("updated_at"),
        _when("last_sign_in_at", nullable=True),
        sa.UniqueConstraint("email", name="uq_users_email"),
        sa.UniqueConstraint("google_sub", name="uq_users_google_sub"),
    )
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("guest", sa.Boolean(), nullable=False),
        _when("created_at"),
        _when("last_seen_at"),
        _when("expires_at"),
        _when("revoked_at", nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_web_sessions_token_hash"),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    op.create_table(
        "oauth_clients",
        sa.Column("client_id", sa.String(length=2048), primary_key=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("client_metadata", sa.JSON(), nullable=False),
        sa.Column("secret_encrypted", sa.String(), nullable=True),
        _when("created_at"),
        _when("refresh_after", nullable=True),
    )
    op.create_table(
        "oauth_requests",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("client_id", sa.String(length=2048), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        _when("created_at"),
        _when("expires_at"),
    )
    op.create_table(
        "oauth_codes",
        sa.Column("code_hash", sa.String(length=64), primary_key=True),
        sa.Column("client_id", sa.String(length=2048), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2048), nullable=False),
        sa.Column("redirect_uri_provided_explicitly", sa.Boolean(), nullable=False),
        sa.Column("resource", sa.String(length=2048), nullable=False),
        sa.Column("family_id", sa.String(length=40), nullable=False),
        _when("expires_at"),
        _when("used_at", nullable=True),
    )
    op.create_table(
        "oauth_tokens",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("family_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=2048), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("resource", sa.String(length=2048), nullable=False),
        _when("created_at"),
        _when("expires_at"),
        _when("used_at", nullable=True),
        _when("revoked_at", nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_oauth_tokens_token_hash"),
    )
    op.create_index("ix_oauth_tokens_family_id", "oauth_tokens", ["family_id"])
    op.create_index("ix_oauth_tokens_user_id", "oauth_tokens", ["user_id"])
    op.create_table(
        "rate_limit_buckets",
        sa.Column("key", sa.String(length=200), primary_key=True),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("prev_count", sa.Integer(), nullable=False),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(length=40), primary_key=True),
        _when("at"),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("client_id", sa.String(length=2048), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_actor_id", "audit_events", ["actor_id"])


def downgrade() -> None:
    for index, table in (
        ("ix_audit_events_actor_id", "audit_events"),
        ("ix_audit_events_at", "audit_events"),
        ("ix_oauth_tokens_user_id", "oauth_tokens"),
        ("ix_oauth_tokens_family_id", "oauth_tokens"),
        ("ix_web_sessions_user_id", "web_sessions"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "audit_events",
        "rate_limit_buckets",
        "oauth_tokens",
        "oauth_codes",
        "oauth_requests",
        "oauth_clients",
        "web_sessions",
        "users",
    ):
        op.drop_table(table)
