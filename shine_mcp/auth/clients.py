"""The MCP clients Shine knows: registered dynamically (RFC 7591, secret encrypted at rest) or described
by a Client ID Metadata Document at their https `client_id` (fetched by `cimd.py`, cached in the table)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from mcp.server.auth.provider import RegistrationError
from mcp.shared.auth import OAuthClientInformationFull

from shine_mcp.auth import audit
from shine_mcp.auth.cimd import ClientDocumentError, fetch_client_document, is_metadata_url
from shine_mcp.auth.keys import Keys
from shine_mcp.auth.policy import SCOPES, redirect_uri_problem, served_beyond_loopback
from shine_mcp.clock import aware
from shine_mcp.config import Settings
from shine_mcp.store.db import Database
from shine_mcp.store.users import OAuthClient

log = logging.getLogger("shine.auth")


class Clients:
    def __init__(self, settings: Settings, db: Database, keys: Keys, clock: Callable[[], datetime]) -> None:
        self.settings, self._db, self.keys, self.clock = settings, db, keys, clock

    async def get(self, client_id: str) -> OAuthClientInformationFull | None:
        if is_metadata_url(client_id):
            return await self._document_client(client_id)
        async with self._db.reading() as session:
            row = await session.get(OAuthClient, client_id)
        if row is None or row.kind != "dcr":
            return None
        secret = self.keys.decrypt(row.secret_encrypted, self.clock()) if row.secret_encrypted else None
        return OAuthClientInformationFull.model_validate(
            {**row.client_metadata, "client_id": row.client_id, "client_secret": secret}
        )

    async def _document_client(self, url: str) -> OAuthClientInformationFull | None:
        now = self.clock()
        async with self._db.reading() as session:
            row = await session.get(OAuthClient, url)
        if row is not None and row.refresh_after is not None and aware(row.refresh_after) > now:
            return OAuthClientInformationFull.model_validate({**row.client_metadata, "client_id": url})
        try:
            client, lifetime = await fetch_client_document(
                url, allow_private=not served_beyond_loopback(self.settings)
            )
        except ClientDocumentError as exc:
            log.info("client metadata document %s refused: %s", url, exc)
            return None
        bad = [p for p in (redirect_uri_problem(str(u)) for u in client.redirect_uris or []) if p]
        if bad:
            log.info("client metadata document %s refused: %s", url, bad[0])
            return None
        if client.scope is None:
            client.scope = " ".join(SCOPES)
        metadata = client.model_dump(mode="json", exclude_none=True, exclude={"client_id"})
        async with self._db.session() as session:
            stored = await session.get(OAuthClient, url)
            if stored is None:
                session.add(
                    OAuthClient(
                        client_id=url, kind="cimd", client_metadata=metadata, refresh_after=now + lifetime
                    )
                )
            else:
                stored.client_metadata, stored.refresh_after = metadata, now + lifetime
            await session.commit()
        return client

    async def register(self, client_info: OAuthClientInformationFull) -> None:
        for uri in client_info.redirect_uris or []:
            problem = redirect_uri_problem(str(uri))
            if problem:
                raise RegistrationError("invalid_redirect_uri", f"{uri}: {problem}")
        # Registered for every scope, whatever it asked (RFC 7591 lets the server substitute): a client may
        # step up later, and what it actually gets is decided at consent by the person and their roles.
        client_info.scope = " ".join(SCOPES)
        now = self.clock()
        metadata = client_info.model_dump(
            mode="json", exclude_none=True, exclude={"client_id", "client_secret"}
        )
        secret = self.keys.encrypt(client_info.client_secret, now) if client_info.client_secret else None
        async with self._db.session() as session:
            session.add(
                OAuthClient(
                    client_id=client_info.client_id,
                    kind="dcr",
                    client_metadata=metadata,
                    secret_encrypted=secret,
                    created_at=now,
                )
            )
            await session.commit()
        await audit.record(
            self._db,
            "client_registered",
            client_id=client_info.client_id,
            at=now,
            client_name=client_info.client_name,
            redirect_uris=[str(u) for u in client_info.redirect_uris or []],
        )
