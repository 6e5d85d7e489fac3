"""The container setup matches the code: compose's services are all there, every Shine setting it sets is a
real setting, the workers run on PostgreSQL behind the proxy, and the image runs as a non-root user with a
health check. (Docker is not needed: these read the files.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from shine_mcp.config import Settings

ROOT = Path(__file__).resolve().parent.parent
WORKERS = ("shine-a", "shine-b")


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def setting_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else name.upper())
    return names


def test_compose_runs_two_workers_a_database_and_a_proxy() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", *WORKERS, "proxy"}
    for worker in WORKERS:
        assert services[worker]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert set(services["proxy"]["depends_on"]) == set(WORKERS)
    assert "ports" not in services["shine-a"] and "ports" not in services["shine-b"]  # only via the proxy


def test_every_setting_compose_gives_the_workers_is_a_real_setting() -> None:
    known = setting_names()
    for name, service in compose()["services"].items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: write environment as a mapping"
        unknown = {var for var in environment if var.startswith("SHINE_") and var not in known}
        assert not unknown, f"{name} sets {unknown}, which Settings does not read"


def test_workers_share_postgresql_and_a_secret_and_trust_only_the_proxy() -> None:
    services = compose()["services"]
    proxy_ip = services["proxy"]["networks"]["shine"]["ipv4_address"]
    for worker in WORKERS:
        env = services[worker]["environment"]
        assert (
            env["DATABASE_URL"].startswith("postgresql+asyncpg://")
            and "@postgres:5432/" in env["DATABASE_URL"]
        )
        assert env["SHINE_SECRET_KEY"].startswith("${SHINE_SECRET_KEY:?")  # required, never a default
        assert env["SHINE_PUBLIC_URL"] and env["SHINE_HOST"] == "0.0.0.0"
        assert env["FORWARDED_ALLOW_IPS"] == proxy_ip
        assert Settings(**{"SHINE_LOG_FORMAT": env["SHINE_LOG_FORMAT"]}).log_format == "json"  # type: ignore[arg-type]


def test_the_proxy_config_reaches_both_workers_and_keeps_mcp_sessions_on_one() -> None:
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    mounted = compose()["services"]["proxy"]["volumes"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in mounted
    upstreams = re.findall(r"reverse_proxy ([^{]+)\{", caddyfile)
    assert upstreams and all(set(u.split()) == {f"{w}:8000" for w in WORKERS} for u in upstreams)
    assert "lb_policy header Mcp-Session-Id" in caddyfile
    assert "flush_interval -1" in caddyfile  # event streams pass through unbuffered


def test_the_image_runs_shine_as_a_non_root_user_with_a_health_check() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", dockerfile, re.M)
    assert 'CMD ["shine", "serve"]' in dockerfile
    for var in re.findall(r"\b(SHINE_[A-Z_]+)=", dockerfile):
        assert var in setting_names(), var
