"""`Authority`: everything sign-in and authorization need in a running web shell, built once in
`create_app` and passed to the server factory, the front door and the auth routes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from mcp.server.auth.routes import build_metadata, build_resource_metadata_url
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthMetadata, ProtectedResourceMetadata
from pydantic import AnyHttpUrl

from shine_mcp.auth.keys import Keys
from shine_mcp.auth.policy import (
    READ,
    SCOPES,
    dev_sign_in_available,
    google_configured,
    is_loopback_host,
    issuer,
    mcp_auth_required,
    resource_url,
    same_resource,
)
from shine_mcp.auth.provider import ShineAuthProvider
from shine_mcp.auth.ratelimit import RateLimiter
from shine_mcp.auth.sessions import cookie_name, cookie_secure
from shine_mcp.auth.tool_guard import ToolCatalog
from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.integrations.google import GoogleSignIn
from shine_mcp.services import Services

Clock = Callable[[], datetime]


class Authority:
    def __init__(self, settings: Settings, services: Services, *, clock: Clock = utcnow) -> None:
        self.settings, self.services, self.clock = settings, services, clock
        self.protects_mcp = mcp_auth_required(settings)
        base = urlsplit(settings.base_url)
        if self.protects_mcp and base.scheme != "https" and not is_loopback_host(base.hostname):
            raise ValueError(
                f"Shine is reachable beyond this machine, so /mcp needs OAuth, and OAuth needs https: set "
                f"SHINE_PUBLIC_URL to the https address clients use (now {settings.base_url})"
            )
        self.keys = Keys.load(settings)
        self.provider = ShineAuthProvider(settings, services.db, self.keys, clock)
        self.limiter = RateLimiter(services.db, clock)
        self.catalog = ToolCatalog()
        self.google = (
            GoogleSignIn(
                settings.google_client_id or "",
                settings.google_client_secret.get_secret_value() if settings.google_client_secret else "",
                settings.google_discovery_url,
            )
            if google_configured(settings)
            else None
        )
        self.dev_sign_in = dev_sign_in_available(settings)
        self.issuer, self.resource = issuer(settings), resource_url(settings)

    def attach(self, server: MCPServer) -> None:
        self.catalog.attach(server)

    @property
    def resource_metadata_url(self) -> str:
        return str(build_resource_metadata_url(AnyHttpUrl(self.resource)))

    def is_our_resource(self, resource: str) -> bool:
        return same_resource(resource, self.resource)

    def auth_settings(self) -> AuthSettings:
        # Strings, not AnyHttpUrl objects: the settings model keeps a path-less issuer without a trailing
        # slash, and RFC 8414/9207 compare issuers as exact strings.
        return AuthSettings.model_validate(
            {
                "issuer_url": self.issuer,
                "resource_server_url": self.resource,
                "validate_token_resource": True,
                "required_scopes": [READ],
                "client_registration_options": ClientRegistrationOptions(
                    enabled=True, valid_scopes=list(SCOPES), default_scopes=list(SCOPES)
                ),
                "revocation_options": RevocationOptions(enabled=True),
            }
        )

    def authorization_server_metadata(self) -> OAuthMetadata:
        """The SDK's RFC 8414 document plus what it leaves out: client ID metadata documents, `iss` in
        authorization responses (RFC 9207) and public clients (`none`)."""
        options = self.auth_settings()
        metadata = build_metadata(
            options.issuer_url,
            None,
            options.client_registration_options or ClientRegistrationOptions(),
            options.revocation_options or RevocationOptions(),
        )
        metadata.client_id_metadata_document_supported = True
        metadata.authorization_response_iss_parameter_supported = True
        metadata.token_endpoint_auth_methods_supported = ["none", "client_secret_post", "client_secret_basic"]
        metadata.revocation_endpoint_auth_methods_supported = [
            "none",
            "client_secret_post",
            "client_secret_basic",
        ]
        return metadata

    def protected_resource_metadata(self) -> ProtectedResourceMetadata:
        return ProtectedResourceMetadata.model_validate(
            {
                "resource": self.resource,
                "authorization_servers": [self.issuer],
                "scopes_supported": list(SCOPES),
                "resource_name": "Shine skincare advisor",
            }
        )

    # --- the session cookie ------------------------------------------------------------------------
    def session_cookie(self, token: str, *, max_age: int | None = None) -> str:
        """A `Set-Cookie` value: HttpOnly, SameSite=Lax, Secure (and `__Host-`) behind https."""
        name = cookie_name(self.settings)
        cookie: SimpleCookie = SimpleCookie()
        cookie[name] = token
        morsel = cookie[name]
        morsel["path"] = "/"
        morsel["httponly"] = True
        morsel["samesite"] = "Lax"
        morsel["max-age"] = str(max_age if max_age is not None else self.settings.session_days * 86400)
        if cookie_secure(self.settings):
            morsel["secure"] = True
        return morsel.OutputString()
