"""The one `Settings` object, read from the environment at start-up and passed down.

Nothing else in Shine reads `os.environ`. Every outside service is optional: without its keys
Shine runs on an embedded default that says what it is (see DESIGN.md, "Embedded defaults").
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, computed_field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")


def _default_data_dir() -> Path:
    # XDG-style so `make run` and Claude Desktop's `shine mcp` share one database.
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "shine"


class Settings(BaseSettings):
    """Shine's configuration. Field descriptions generate the README's configuration table."""

    model_config = SettingsConfigDict(
        validate_by_name=True, validate_by_alias=True, extra="ignore", frozen=True
    )

    # --- Shine itself -------------------------------------------------------------------
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        validation_alias="SHINE_DATA_DIR",
        description="Where the SQLite database and kept photos live.",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description=(
            "SQLAlchemy async URL. Default: SQLite in SHINE_DATA_DIR. "
            "PostgreSQL: `postgresql+asyncpg://user:pass@host/db`."
        ),
    )
    db_pool_size: int = Field(
        default=15,
        ge=1,
        validation_alias="SHINE_DB_POOL_SIZE",
        description="PostgreSQL: connections each process opens at most and keeps; a request beyond waits for one.",
    )
    db_statement_timeout_seconds: float = Field(
        default=30.0,
        ge=0,
        validation_alias="SHINE_DB_STATEMENT_TIMEOUT_SECONDS",
        description=(
            "PostgreSQL: longest a request's statement may run or wait for a lock; then the request ends with "
            "'busy, try again' (503 with Retry-After) instead of hanging. Migrations, imports and purges are "
            "exempt (0: Shine sets none)."
        ),
    )
    db_idle_in_transaction_timeout_seconds: float = Field(
        default=60.0,
        ge=0,
        validation_alias="SHINE_DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS",
        description=(
            "PostgreSQL: a connection left idle inside a transaction this long is closed by the server, "
            "releasing its locks (0: Shine sets none)."
        ),
    )
    host: str = Field(
        default="127.0.0.1", validation_alias="SHINE_HOST", description="`shine serve` bind address."
    )
    port: int = Field(default=8000, validation_alias="SHINE_PORT", description="`shine serve` port.")
    public_url: str | None = Field(
        default=None,
        validation_alias="SHINE_PUBLIC_URL",
        description="Public base URL behind a proxy (links, OAuth). Default: http://HOST:PORT.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        validation_alias="SHINE_ALLOWED_HOSTS",
        description=(
            "Extra Host headers Shine answers (JSON list, `name` or `name:port`), besides loopback and "
            "SHINE_PUBLIC_URL's host; any other Host gets `421` on every route (DNS-rebinding protection)."
        ),
    )
    local_user: str = Field(
        default="local",
        validation_alias="SHINE_LOCAL_USER",
        description=(
            "The user id for keyless local use: stdio (`shine mcp`), in-process scripts, and `/mcp` on a "
            "keyless loopback setup."
        ),
    )
    toolsets: list[Literal["shopper", "merchant", "admin"]] = Field(
        default=["shopper"],
        min_length=1,
        validation_alias="SHINE_TOOLSETS",
        description=(
            "Tools SHINE_LOCAL_USER is offered (JSON list; `shine mcp --toolsets shopper,merchant,admin`): "
            "`shopper` the advisor, cart and own data; `merchant` refunds, sales report, page import; `admin` "
            "the audit log. `merchant` or `admin` make the local user an admin. OAuth clients get them by role."
        ),
    )
    load_demo_catalog: bool = Field(
        default=True,
        validation_alias="SHINE_LOAD_DEMO_CATALOG",
        description="Load the bundled demo catalog when the catalog is empty on start-up.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias="SHINE_LOG_LEVEL", description="Log level."
    )
    log_format: Literal["plain", "json"] = Field(
        default="plain",
        validation_alias="SHINE_LOG_FORMAT",
        description=(
            "`plain` lines, or `json`: one object per line (time, level, logger, message, request_id) for a "
            "log collector. Every line carries the request id, which responses return as `X-Request-Id`."
        ),
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        validation_alias="SHINE_METRICS_TOKEN",
        description=(
            "Bearer token for Prometheus scrapes of `/metrics` from beyond loopback (`Authorization: Bearer …`). "
            "Unset: `/metrics` answers only direct loopback requests."
        ),
    )
    secret_key: SecretStr | None = Field(
        default=None,
        validation_alias="SHINE_SECRET_KEY",
        description=(
            "Signs in-process identities and encrypts secrets at rest (any long random string). Unset: "
            "generated once into `SHINE_DATA_DIR/secret.key` (mode 0600); set it when several machines share a database."
        ),
    )
    mcp_auth: Literal["auto", "required"] = Field(
        default="auto",
        validation_alias="SHINE_MCP_AUTH",
        description=(
            "When `/mcp` needs an OAuth access token. `auto`: when Shine is reachable beyond loopback (non-loopback "
            "SHINE_HOST, SHINE_PUBLIC_URL or SHINE_ALLOWED_HOSTS set) or Google sign-in is configured; otherwise "
            "loopback callers act as SHINE_LOCAL_USER. `required`: always (on loopback the dev sign-in logs you in)."
        ),
    )
    session_days: int = Field(
        default=14,
        ge=1,
        validation_alias="SHINE_SESSION_DAYS",
        description="Web sign-in sessions end after this many days without use (sliding expiry).",
    )
    max_sessions: int = Field(
        default=10,
        ge=1,
        validation_alias="SHINE_MAX_SESSIONS",
        description="Signed-in sessions one user may hold at once; the oldest ends when a new one starts.",
    )
    rate_limit_user: int = Field(
        default=120,
        ge=0,
        validation_alias="SHINE_RATE_LIMIT_USER",
        description="Requests per minute per user on `/mcp` and `/api/*` (0: no limit). Shared through the database.",
    )
    rate_limit_ip: int = Field(
        default=300,
        ge=0,
        validation_alias="SHINE_RATE_LIMIT_IP",
        description="Requests per minute per client IP on `/mcp`, `/api/*` and `/.well-known/*` (0: no limit).",
    )
    rate_limit_auth: int = Field(
        default=30,
        ge=0,
        validation_alias="SHINE_RATE_LIMIT_AUTH",
        description=(
            "Requests per minute per client IP on sign-in and OAuth endpoints, and separately on the "
            "checkout return pages `/checkout/*` (0: no limit)."
        ),
    )
    max_photo_bytes: int = Field(
        default=15 * 1024 * 1024,
        ge=1024,
        le=15 * 1024 * 1024,
        validation_alias="SHINE_MAX_PHOTO_BYTES",
        description=(
            "Largest photo `analyze_skin` accepts (base64, upload, https URL or file), in bytes; "
            "at most 15 MiB, the analysis's own limit."
        ),
    )
    photo_fetch_timeout: float = Field(
        default=15.0,
        gt=0,
        le=120,
        validation_alias="SHINE_PHOTO_FETCH_TIMEOUT",
        description="Seconds `analyze_skin` may spend downloading a photo from an https URL, redirects included.",
    )
    body_timeout: float = Field(
        default=120.0,
        gt=0,
        validation_alias="SHINE_BODY_TIMEOUT",
        description="Seconds a client may take to send a whole request body (a photo upload included); slower gets 408.",
    )
    body_idle_timeout: float = Field(
        default=15.0,
        gt=0,
        validation_alias="SHINE_BODY_IDLE_TIMEOUT",
        description="Seconds a request body may stall between two chunks before the request gets 408.",
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        validation_alias="SHINE_HEADER_TIMEOUT",
        description="`shine serve`: seconds a connection has to send a request's headers before it is closed.",
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        validation_alias="SHINE_MAX_CONNECTIONS",
        description="`shine serve`: open connections at most (chat streams included); requests beyond get 503.",
    )

    # --- Outside services (all optional) --------------------------------------------------
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias="ANTHROPIC_API_KEY",
        description="Anthropic key for the advisor. Unset: the offline advisor (a deterministic planner).",
    )
    anthropic_base_url: str | None = Field(
        default=None,
        validation_alias="ANTHROPIC_BASE_URL",
        description="Another Anthropic-compatible Messages API for the advisor (a proxy, a local fake).",
    )
    model: str = Field(
        default="claude-sonnet-5-5",
        validation_alias="SHINE_MODEL",
        description="The Anthropic model the advisor uses.",
    )
    advisor_max_steps: int = Field(
        default=8,
        ge=1,
        le=50,
        validation_alias="SHINE_ADVISOR_MAX_STEPS",
        description="Model calls the advisor may make for one reply before it stops and says so.",
    )
    advisor_token_budget: int = Field(
        default=150_000,
        ge=1_000,
        validation_alias="SHINE_ADVISOR_TOKEN_BUDGET",
        description="Tokens (read and written, cached included) one advisor reply may use before it stops.",
    )
    advisor_context_tokens: int = Field(
        default=60_000,
        ge=2_000,
        validation_alias="SHINE_ADVISOR_CONTEXT_TOKENS",
        description="Conversation size sent to the model; longer chats drop their oldest tool results, then turns.",
    )
    upload_ttl_minutes: int = Field(
        default=30,
        ge=1,
        validation_alias="SHINE_UPLOAD_TTL_MINUTES",
        description="How long a photo uploaded to the chat is kept (unless the shopper ticks 'keep my photo').",
    )
    purge_seconds: float = Field(
        default=3600,
        ge=0,
        validation_alias="SHINE_PURGE_SECONDS",
        description=(
            "How often `shine serve` deletes expired uploads, idle chats, web cache entries, OAuth codes and "
            "tokens, web sessions and rate-limit counters (0: never; run `shine purge` from cron instead)."
        ),
    )
    stripe_secret_key: SecretStr | None = Field(
        default=None,
        validation_alias="STRIPE_SECRET_KEY",
        description=(
            "Stripe secret key: checkout uses Stripe Checkout. Unset: a local simulated checkout that takes no "
            "money and says so."
        ),
    )
    stripe_webhook_secret: SecretStr | None = Field(
        default=None,
        validation_alias="STRIPE_WEBHOOK_SECRET",
        description=(
            "Verifies `Stripe-Signature` on `/stripe/webhook` (needed with STRIPE_SECRET_KEY). The simulated "
            "checkout signs with a local secret derived from SHINE_SECRET_KEY."
        ),
    )
    stripe_api_base: str | None = Field(
        default=None,
        validation_alias="STRIPE_API_BASE",
        description="Another Stripe-compatible API (a local fake, stripe-mock). Default: Stripe's.",
    )
    fulfilment_url: str | None = Field(
        default=None,
        validation_alias="SHINE_FULFILMENT_URL",
        description=(
            "Fulfilment partner endpoint: each paid order is POSTed there once as signed JSON (dropshipping). "
            "Unset: paid orders wait in a local queue (`shine orders pending-fulfilment`)."
        ),
    )
    fulfilment_secret: SecretStr | None = Field(
        default=None,
        validation_alias="SHINE_FULFILMENT_SECRET",
        description=(
            "Shared secret that signs requests to the fulfilment partner and verifies its callbacks on "
            "`/fulfilment/callback`."
        ),
    )
    fulfilment_fallback_url: str | None = Field(
        default=None,
        validation_alias="SHINE_FULFILMENT_FALLBACK_URL",
        description="A second fulfilment partner, tried when the first rejects an order or stays unreachable.",
    )
    fulfilment_fallback_secret: SecretStr | None = Field(
        default=None,
        validation_alias="SHINE_FULFILMENT_FALLBACK_SECRET",
        description="The second partner's shared secret. Unset: SHINE_FULFILMENT_SECRET.",
    )
    fulfilment_worker: bool = Field(
        default=True,
        validation_alias="SHINE_FULFILMENT_WORKER",
        description=(
            "Deliver paid orders to fulfilment from inside `shine serve`. Set false when a separate "
            "`shine orders work` process does it."
        ),
    )
    return_window_days: int = Field(
        default=30,
        ge=0,
        le=365,
        validation_alias="SHINE_RETURN_WINDOW_DAYS",
        description="Days after shipping (or payment, if not shipped yet) in which a shopper may request a refund.",
    )
    shipping_countries: list[str] = Field(
        default=["US", "CA", "GB", "IE", "AU", "NZ", "FR", "DE", "ES", "IT", "NL", "BE"],
        validation_alias="SHINE_SHIPPING_COUNTRIES",
        description="Countries (JSON list of ISO codes) Checkout collects a shipping address for; `[]`: none.",
    )
    subscription_discount_percent: int = Field(
        default=0,
        ge=0,
        le=90,
        validation_alias="SHINE_SUBSCRIPTION_DISCOUNT_PERCENT",
        description=(
            'Percent off every refill of a "subscribe and save" subscription (0: subscriptions cost the '
            "catalog price)."
        ),
    )
    premium_monthly_price_minor: int = Field(
        default=799,
        ge=0,
        validation_alias="SHINE_PREMIUM_MONTHLY_PRICE_MINOR",
        description="Price of the monthly premium membership, in minor units of SHINE_PREMIUM_CURRENCY (799: $7.99).",
    )
    premium_yearly_price_minor: int = Field(
        default=7900,
        ge=0,
        validation_alias="SHINE_PREMIUM_YEARLY_PRICE_MINOR",
        description="Price of the yearly premium membership, in minor units (7900: $79.00, about two months free).",
    )
    premium_currency: str = Field(
        default="USD",
        min_length=3,
        max_length=3,
        validation_alias="SHINE_PREMIUM_CURRENCY",
        description="ISO 4217 currency of the premium membership prices.",
    )
    premium_member_discount_percent: int = Field(
        default=10,
        ge=0,
        le=90,
        validation_alias="SHINE_PREMIUM_MEMBER_DISCOUNT_PERCENT",
        description="Member prices: percent off every one-off checkout for a premium member (0: none).",
    )
    affiliate_links: dict[str, dict[str, str]] = Field(
        default={},
        validation_alias="SHINE_AFFILIATE_LINKS",
        description=(
            "Merchant sites products may send shoppers to (a product's `buy_url`), each with the query "
            'parameters added to its links: JSON, e.g. `{"amazon.com": {"tag": "shop-20"}}` (subdomains '
            "included; `{}` for none). Links to any other site are not shown and `/out/…` never redirects there."
        ),
    )

    @field_validator("affiliate_links")
    @classmethod
    def _affiliate_sites_are_domains(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        """Plain lower-case ASCII domain names ("amazon.com"), so a site is matched exactly, never by look-alike."""
        for site in value:
            if not _DOMAIN.fullmatch(site):
                raise ValueError(
                    f"SHINE_AFFILIATE_LINKS: {site!r} is not a domain name such as 'amazon.com' "
                    "(lower-case, no scheme, no path; write an international name in its xn-- form)"
                )
        return value

    google_client_id: str | None = Field(
        default=None,
        validation_alias="GOOGLE_CLIENT_ID",
        description=(
            "Google OAuth client id for web sign-in (redirect URI: `<public URL>/auth/google/callback`). "
            "Unset: the dev sign-in on loopback."
        ),
    )
    google_client_secret: SecretStr | None = Field(
        default=None,
        validation_alias="GOOGLE_CLIENT_SECRET",
        description="Google OAuth client secret.",
    )
    google_discovery_url: str = Field(
        default="https://accounts.google.com/.well-known/openid-configuration",
        validation_alias="SHINE_GOOGLE_DISCOVERY_URL",
        description="OpenID discovery document for sign-in (Google's, or a self-hosted OpenID provider).",
    )
    firecrawl_api_key: SecretStr | None = Field(
        default=None,
        validation_alias="FIRECRAWL_API_KEY",
        description=(
            "Firecrawl key (`fc-…`): web image browsing runs `firecrawl-mcp` (SHINE_FIRECRAWL_COMMAND) with it. "
            "Unset (and no FIRECRAWL_API_URL or FIRECRAWL_MCP_URL): the browse tools say browsing is not configured."
        ),
    )
    firecrawl_api_url: str | None = Field(
        default=None,
        validation_alias="FIRECRAWL_API_URL",
        description="A self-hosted Firecrawl API for `firecrawl-mcp` (the key is then optional).",
    )
    firecrawl_mcp_url: str | None = Field(
        default=None,
        validation_alias="FIRECRAWL_MCP_URL",
        description=(
            "A remote Firecrawl MCP endpoint (Streamable HTTP, e.g. `https://mcp.firecrawl.dev/v2/mcp`) instead "
            "of a local process; FIRECRAWL_API_KEY is sent as its bearer token."
        ),
    )
    firecrawl_command: list[str] = Field(
        default=["npx", "-y", "firecrawl-mcp"],
        validation_alias="SHINE_FIRECRAWL_COMMAND",
        description="How to start the local Firecrawl MCP server (JSON list: program and arguments).",
    )
    firecrawl_timeout: float = Field(
        default=30.0,
        gt=0,
        le=300,
        validation_alias="SHINE_FIRECRAWL_TIMEOUT",
        description="Seconds one Firecrawl call may take before Shine gives up on it (not retried).",
    )
    firecrawl_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        validation_alias="SHINE_FIRECRAWL_CONCURRENCY",
        description="Firecrawl calls in flight at once; more wait their turn.",
    )
    firecrawl_rate_limit: int = Field(
        default=60,
        ge=0,
        validation_alias="SHINE_FIRECRAWL_RATE_LIMIT",
        description="Firecrawl calls per minute Shine makes at most, spaced evenly (0: no limit).",
    )
    firecrawl_retries: int = Field(
        default=2,
        ge=0,
        le=5,
        validation_alias="SHINE_FIRECRAWL_RETRIES",
        description="Retries (exponential backoff with jitter) after a transient Firecrawl failure: 5xx, 429, a lost connection.",
    )
    firecrawl_breaker_failures: int = Field(
        default=3,
        ge=1,
        validation_alias="SHINE_FIRECRAWL_BREAKER_FAILURES",
        description="Failed calls in a row after which Shine stops calling Firecrawl for a while and answers at once.",
    )
    firecrawl_breaker_seconds: float = Field(
        default=30.0,
        gt=0,
        validation_alias="SHINE_FIRECRAWL_BREAKER_SECONDS",
        description="How long Shine leaves Firecrawl alone after it failed repeatedly; then one call probes it.",
    )
    browse_sites: list[str] = Field(
        default_factory=list,
        validation_alias="SHINE_BROWSE_SITES",
        description='Domains (JSON list, e.g. `["glowlab.example"]`) web browsing is restricted to, subdomains included. Empty: any site.',
    )
    browse_blocked_domains: list[str] = Field(
        default=["pinterest.com", "pinimg.com"],
        validation_alias="SHINE_BROWSE_BLOCKED_DOMAINS",
        description="Domains (JSON list) whose pages and images browsing never returns, subdomains included.",
    )
    browse_cache_seconds: int = Field(
        default=24 * 3600,
        ge=0,
        validation_alias="SHINE_BROWSE_CACHE_SECONDS",
        description="How long web results are kept in the database and reused without Firecrawl credit (0: no cache).",
    )
    admin_emails: list[str] = Field(
        default_factory=list,
        validation_alias="SHINE_ADMIN_EMAILS",
        description="Emails (JSON list) that get the admin role (checked on every request, not only at sign-in).",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        validation_alias="SHINE_ALLOWED_ORIGINS",
        description='Shop origins (JSON list, e.g. `["https://shop.example"]`) allowed to embed the chat widget (CORS).',
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'shine.db'}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def integrations_summary(self) -> dict[str, str]:
        """What each outside service is running on, for `/healthz` and the CLI (never the keys)."""
        return {
            "database": "postgresql" if self.effective_database_url.startswith("postgresql") else "sqlite",
            "advisor": f"anthropic ({self.model})" if self.anthropic_api_key else "offline",
            "payments": "stripe" if self.stripe_secret_key else "simulated checkout (no real payments)",
            "fulfilment": "partner" if self.fulfilment_url else "local queue",
            "sign_in": "google"
            if self.google_client_id and self.google_client_secret
            else "not configured (dev sign-in on loopback)",
            "web_browsing": "firecrawl mcp (remote)"
            if self.firecrawl_mcp_url
            else "firecrawl mcp (local process)"
            if self.firecrawl_api_key or self.firecrawl_api_url
            else "not configured",
        }
