"""The server key (generated once, private, replaceable by SHINE_SECRET_KEY) and the small rules of the
authorization policy: redirect URIs, scopes per tool, what a person can grant."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mcp.types import ToolAnnotations
from pydantic import SecretStr

from shine_mcp.auth.keys import KEY_FILE, Keys, master_key
from shine_mcp.auth.policy import grantable_scopes, redirect_uri_problem, roles_for, scope_for_tool
from shine_mcp.config import Settings

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def test_a_key_is_generated_once_with_owner_only_permissions(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "fresh", database_url=None)
    first = master_key(settings)
    path = tmp_path / "fresh" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert master_key(Settings(data_dir=tmp_path / "fresh", database_url=None)) == first


def test_the_configured_secret_key_wins_and_writes_no_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=None, secret_key=SecretStr("x" * 40))
    assert master_key(settings) == b"x" * 40
    assert not (tmp_path / KEY_FILE).exists()


def test_what_one_key_encrypts_another_cannot_read() -> None:
    mine, theirs = Keys.from_master(b"a" * 40), Keys.from_master(b"b" * 40)
    sealed = mine.encrypt("client-secret", NOW)
    assert "client-secret" not in sealed
    assert mine.decrypt(sealed, NOW) == "client-secret"
    assert theirs.decrypt(sealed, NOW) is None
    assert mine.decrypt(sealed, NOW.replace(hour=1), ttl=60) is None  # too old for a 60 s lifetime


@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        ("https://claude.ai/api/mcp/auth_callback", True),
        ("http://127.0.0.1:33418/callback", True),
        ("http://localhost:6274/oauth/callback", True),
        ("http://[::1]:8080/cb", True),
        ("cursor://anysphere.cursor-mcp/oauth/callback", True),
        ("http://192.168.1.5/callback", False),
        ("http://evil.example/callback", False),
        ("https://app.example/cb#frag", False),
        ("javascript:alert(1)", False),
        ("data:text/html,hi", False),
    ],
)
def test_redirect_uris(uri: str, allowed: bool) -> None:
    assert (redirect_uri_problem(uri) is None) is allowed


@pytest.mark.parametrize(
    ("name", "annotations", "meta", "scope"),
    [
        ("search_products", ToolAnnotations(read_only_hint=True), None, "shine:read"),
        ("get_order", ToolAnnotations(read_only_hint=True), None, "shine:read"),
        ("add_to_cart", None, None, "shine:shop"),
        ("checkout", ToolAnnotations(read_only_hint=False), None, "shine:shop"),
        ("analyze_skin", None, None, "shine:read"),
        ("admin_list_audit_events", ToolAnnotations(read_only_hint=True), None, "shine:admin"),
        ("sales_report", None, {"shine/scope": "shine:admin"}, "shine:admin"),
    ],
)
def test_the_scope_a_tool_needs(
    name: str, annotations: object, meta: dict[str, str] | None, scope: str
) -> None:
    assert scope_for_tool(name, annotations, meta) == scope


def test_only_admins_can_grant_the_admin_scope(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=None, admin_emails=["Root@Example.com"])
    admin = roles_for(["premium"], "root@example.com", settings)
    user = roles_for(["admin", "premium"], "ana@example.com", settings)  # a stored "admin" means nothing
    assert admin == {"user", "premium", "admin"} and user == {"user", "premium"}
    everything = ["shine:read", "shine:shop", "shine:admin"]
    assert grantable_scopes(everything, admin) == everything
    assert grantable_scopes(everything, user) == ["shine:read", "shine:shop"]
    assert grantable_scopes(None, admin) == ["shine:read", "shine:shop"]
