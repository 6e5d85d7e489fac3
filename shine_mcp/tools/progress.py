"""`track_skin_progress`: a premium member's progress across their whole skin-report history. Non-members are
told plainly that it is part of premium (`compare_skin_reports` compares two reports for everyone)."""

from __future__ import annotations

from datetime import datetime

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from shine_mcp.advice.progress import Series, progress
from shine_mcp.auth.identity import current_user
from shine_mcp.auth.policy import READ, TOOL_SCOPE_META
from shine_mcp.money import format_money
from shine_mcp.orders.service import Commerce
from shine_mcp.services import Services
from shine_mcp.store.skin_reports import list_reports

MAX_REPORTS = 500


class ProgressPoint(BaseModel):
    report_id: str
    at: datetime
    value: float
    confidence: float = Field(description="0-1: how far to trust the value from that photo.")


class MetricProgress(BaseModel):
    metric: str
    unit: str
    points: list[ProgressPoint] = Field(
        description="Oldest first; reports that withheld the metric are left out."
    )
    change: float | None = Field(description="Latest minus first value; none with fewer than two.")


class SkinProgress(BaseModel):
    reports: int = Field(description="How many of the shopper's reports this covers (all of them).")
    metrics: list[MetricProgress]
    notice: str


LIKE_WITH_LIKE = (
    "Changes between photos taken in different light or at different angles are weak: compare like with like "
    "(same place, same time of day, no make-up)."
)


def _metric_progress(series: Series) -> MetricProgress:
    return MetricProgress(
        metric=series.metric,
        unit=series.unit,
        points=[
            ProgressPoint(report_id=p.report_id, at=p.at, value=p.value, confidence=p.confidence)
            for p in series.points
        ],
        change=series.change,
    )


class ProgressTools:
    """The progress tool of one server and the shop whose membership says who is premium now."""

    def __init__(self, services: Services, commerce: Commerce | None = None) -> None:
        self.services = services
        self.shop = commerce or Commerce(services)

    async def track_skin_progress(self, ctx: Context) -> SkinProgress:
        """For premium members: how each skin measurement moved across all their skin reports, oldest first,
        with the change from the first to the latest.

        Use it when a member asks how their skin has changed over time. For anyone else it says it is part of
        premium; compare_skin_reports compares two reports for everyone."""
        caller = current_user(ctx, self.services.settings)
        if caller.is_guest or not await self.shop.membership.premium(caller.user_id):
            raise self._premium_only()
        records = await list_reports(self.services.db, caller.user_id, MAX_REPORTS)
        return SkinProgress(
            reports=len(records),
            metrics=[_metric_progress(s) for s in progress(records)],
            notice=LIKE_WITH_LIKE,
        )

    def _premium_only(self) -> ToolError:
        settings = self.services.settings
        currency = settings.premium_currency.upper()
        return ToolError(
            "Tracking your progress across all your skin reports is part of premium "
            f"({format_money(settings.premium_monthly_price_minor, currency)} a month or "
            f"{format_money(settings.premium_yearly_price_minor, currency)} a year; premium_membership "
            "says what else it gives). compare_skin_reports compares any two of your reports without it."
        )


def register(server: MCPServer, services: Services, *, commerce: Commerce | None = None) -> None:
    tools = ProgressTools(services, commerce)
    server.tool(
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False), meta={TOOL_SCOPE_META: READ}
    )(tools.track_skin_progress)
