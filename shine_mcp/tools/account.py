"""Account tools: who the caller is, and the audit log for the shop's admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from shine_mcp.auth import audit
from shine_mcp.auth.accounts import get_user
from shine_mcp.auth.identity import Caller, current_user, require_admin
from shine_mcp.auth.policy import ADMIN, TOOL_SCOPE_META
from shine_mcp.clock import aware
from shine_mcp.orders.service import Commerce
from shine_mcp.services import Services

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


class Account(BaseModel):
    user_id: str = Field(description="Shine's id for the caller; personal data is stored under it.")
    signed_in: bool = Field(description="False for a guest or the keyless local user.")
    email: str | None = None
    name: str | None = None
    roles: list[str] = Field(description="user, premium, admin.")
    scopes: list[str] = Field(description="What this connection may do: shine:read, shine:shop, shine:admin.")
    via: Literal["local", "oauth", "web", "loopback"] = Field(
        description="local: stdio or a script on this machine; oauth: a remote MCP client; web: the chat widget."
    )


class AuditEntry(BaseModel):
    at: datetime
    action: str
    user_id: str | None
    client_id: str | None
    ip: str | None
    detail: dict[str, object]


class AuditPage(BaseModel):
    events: list[AuditEntry] = Field(description="Newest first.")


class AccountTools:
    """The account tools of one server and the membership service that says who is premium now."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.members = Commerce(services).membership

    async def get_account(self, ctx: Context) -> Account:
        """Who Shine thinks is calling: user id, email and name when signed in, roles and what this
        connection may do. Use it to greet the person by name or to explain why a tool was refused."""
        caller = current_user(ctx, self.services.settings)
        user = None if caller.is_guest else await get_user(self.services.db, caller.user_id)
        return Account(
            user_id=caller.user_id,
            signed_in=user is not None,
            email=user.email if user else None,
            name=user.name if user else None,
            roles=await self._roles(caller),
            scopes=sorted(caller.scopes),
            via=caller.source,
        )

    async def _roles(self, caller: Caller) -> list[str]:
        """premium: while a premium membership runs, asked now (never a grant kept from an earlier sign-in)."""
        premium = not caller.is_guest and await self.members.premium(caller.user_id)
        return sorted((set(caller.roles) - {"premium"}) | ({"premium"} if premium else set()))

    async def admin_list_audit_events(
        self,
        ctx: Context,
        action: Annotated[
            audit.Action | None,
            Field(description="Only this kind of event, e.g. sign_in_failed or refresh_token_reused."),
        ] = None,
        user_id: Annotated[
            str | None, Field(description="Only events of this user id.", max_length=64)
        ] = None,
        limit: Annotated[int, Field(ge=1, le=500, description="How many events, newest first.")] = 50,
    ) -> AuditPage:
        """For the shop's admins: the audit log of sign-ins (and failed ones with the reason), MCP client
        approvals, token issuance, refresh and revocation, admin actions and data deletions, newest first.
        It never holds secrets. Refused for anyone who is not an admin.

        Use it when an admin asks who signed in, which apps were approved or what happened to an
        account."""
        require_admin(current_user(ctx, self.services.settings))
        rows = await audit.events(self.services.db, actor_id=user_id, action=action, limit=limit)
        return AuditPage(
            events=[
                AuditEntry(
                    at=aware(r.at),
                    action=r.action,
                    user_id=r.actor_id,
                    client_id=r.client_id,
                    ip=r.ip,
                    detail=r.detail,
                )
                for r in rows
            ]
        )


def register(server: MCPServer, services: Services) -> None:
    tools = AccountTools(services)
    server.tool(annotations=READ_ONLY)(tools.get_account)
    server.tool(annotations=READ_ONLY, meta={TOOL_SCOPE_META: ADMIN})(tools.admin_list_audit_events)
