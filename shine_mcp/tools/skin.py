"""Skin tools: analyse a face photo into a stored report, read, list, compare and delete the caller's reports.

The analysis itself is `shine_mcp.models`; reading the `image` argument is `integrations.photo_source`;
comparing two reports is `models.compare`. Reports hold metrics only; a photo is kept only when asked, and
only as a metadata-free re-encode. The tools are methods of `SkinTools`; `register` only registers them.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from shine_mcp.auth.identity import current_user
from shine_mcp.integrations.image_fetch import ImageFetcher
from shine_mcp.integrations.photo_source import UploadLookup, read_photo
from shine_mcp.models import (
    NOTICE,
    Analysis,
    Answers,
    ImageRejected,
    clean_jpeg_bytes,
    locate_face,
    open_photo,
    report_on_face,
)
from shine_mcp.models.compare import MetricChange, compare
from shine_mcp.models.report import GateName, MetricName
from shine_mcp.services import Services
from shine_mcp.store import chat as chat_store
from shine_mcp.store import skin_reports as store
from shine_mcp.store.photos import PhotoStore
from shine_mcp.store.skin_reports import SkinReportRecord
from shine_mcp.tools._confirm import Confirm, needs_confirmation

T = TypeVar("T")

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
ANALYSE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)
DELETE = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)
# A base64 photo of 15 MiB with line breaks and a data-URL header; larger is refused unread.
MAX_IMAGE_CHARS = 22_000_000
ReportId = Annotated[
    str,
    Field(
        min_length=1, max_length=64, description="A report id (rep_…) from analyze_skin or list_skin_reports."
    ),
]


class SkinReport(Analysis):
    """A stored cosmetic skin analysis of one photo: what it can support, how sure, and what it withheld."""

    report_id: str = Field(
        description="rep_…: pass to get_skin_report, compare_skin_reports, delete_skin_report"
    )
    created_at: datetime
    photo_kept: bool = Field(
        description="whether a metadata-free copy of the photo is stored with the report"
    )


class SkinReportSummary(BaseModel):
    report_id: str
    created_at: datetime
    photo_kept: bool
    values: dict[MetricName, float | None] = Field(
        description="each metric's value; null where it was withheld"
    )
    failed_gates: list[GateName] = Field(
        description="photo-quality checks that failed (their metrics are null)"
    )
    skin_type: str | None


class SkinReportPage(BaseModel):
    reports: list[SkinReportSummary] = Field(description="Newest first.")
    total: int = Field(description="How many reports the caller has in all.")
    next_cursor: str | None = Field(description="Pass as `cursor` for older reports; null on the last page.")


class SkinComparison(BaseModel):
    before_id: str
    after_id: str
    before_created_at: datetime
    after_created_at: datetime
    days_apart: float = Field(
        description="after minus before, in days (negative if 'before' is the newer one)"
    )
    changes: list[MetricChange]
    weak: bool = Field(
        description="true when the photos were not taken alike: read the notes before the changes"
    )
    notes: list[str]
    notice: str


class DeletedSkinReport(BaseModel):
    report_id: str
    photo_deleted: bool = Field(description="whether a kept photo was deleted with it")


def _encode_cursor(record: SkinReportRecord) -> str:
    raw = json.dumps({"t": record.created.isoformat(), "i": record.id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        at, report_id = datetime.fromisoformat(str(raw["t"])), str(raw["i"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ToolError("the cursor is not one list_skin_reports returned; list again without it") from exc
    if at.tzinfo is None:
        raise ToolError("the cursor is not one list_skin_reports returned; list again without it")
    return at, report_id


def _report(record: SkinReportRecord) -> SkinReport:
    try:
        return SkinReport.model_validate(
            {
                **record.analysis,
                "report_id": record.id,
                "created_at": record.created,
                "photo_kept": record.photo_path is not None,
            }
        )
    except ValidationError as exc:  # stored by a Shine whose report format has since changed
        raise ToolError(
            f"skin report {record.id!r} was made by an older version of Shine and cannot be read; "
            "delete_skin_report removes it"
        ) from exc


def _not_found(report_id: str) -> ToolError:
    return ToolError(f"you have no skin report with id {report_id!r}; list_skin_reports lists yours")


class SkinTools:
    """The skin tools of one server: how they reach photos (a fetcher for URLs, the caller's chat uploads),
    where kept photos go, and the decode limit they share with chat uploads."""

    def __init__(
        self, services: Services, *, fetcher: ImageFetcher | None = None, uploads: UploadLookup | None = None
    ) -> None:
        settings = self.settings = services.settings
        self.services = services
        self.fetcher = fetcher or ImageFetcher(
            max_bytes=settings.max_photo_bytes, timeout=settings.photo_fetch_timeout
        )
        self.find_upload = uploads or chat_store.upload_lookup(services.db)
        self.photos = PhotoStore(settings.data_dir)
        # Analyses hold decoded photos: they share the process's decode limit with chat uploads.
        self.limiter = services.analysis_limiter

    async def _in_thread(self, fn: Callable[..., T], *args: object) -> T:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    async def _load(self, user_id: str, report_id: str) -> SkinReportRecord:
        record = await store.get_report(self.services.db, user_id, report_id)
        if record is None:
            raise _not_found(report_id)
        return record

    async def analyze_skin(
        self,
        ctx: Context,
        image: Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_IMAGE_CHARS,
                description=(
                    "The photo: base64 or a data URL (data:image/jpeg;base64,…), an upload id (upl_…), an "
                    "https URL, or a file path when Shine runs on this computer (stdio). JPEG, PNG or WebP, "
                    "one front-facing face, at most 15 MB."
                ),
            ),
        ],
        answers: Annotated[
            Answers | None,
            Field(description="The skin-type questionnaire; any answers given sharpen skin_type."),
        ] = None,
        keep_photo: Annotated[
            bool,
            Field(
                description="Store a copy of the photo (metadata removed) with the report, e.g. to look at "
                "later; deleted with the report. Default: only the metrics are stored."
            ),
        ] = False,
    ) -> SkinReport:
        """Analyse a face photo: apparent skin colour (L*a*b*, ITA), redness, shine, tone evenness, texture
        and candidate dark spots, each with a confidence, plus photo-quality checks with retake advice and
        skin type from the optional questionnaire. Cosmetic, not medical. Stores the report for the
        caller and returns it with its report_id; a photo it cannot use is refused with what to change.

        Use it when the person shares a face photo and wants to know about their skin;
        recommend_products and build_routine take its report_id."""
        caller = current_user(ctx, self.settings)
        await ctx.report_progress(0, 4, "reading the photo")
        _, data = await read_photo(
            image,
            user_id=caller.user_id,
            transport=caller.transport,
            limit=self.settings.max_photo_bytes,
            fetcher=self.fetcher,
            uploads=self.find_upload,
        )
        try:
            intake = await self._in_thread(open_photo, data)
            await ctx.report_progress(1, 4, "finding the face")
            located = await self._in_thread(locate_face, data, intake)
            await ctx.report_progress(2, 4, "measuring the skin")
            analysis = await self._in_thread(report_on_face, located, answers)
            kept = await self._in_thread(clean_jpeg_bytes, data) if keep_photo else None
        except ImageRejected as rejected:
            self.services.observers.rejected(rejected.code)
            raise ToolError(rejected.message) from rejected
        self.services.observers.analysed(g.name for g in analysis.gates if not g.passed)
        await ctx.report_progress(3, 4, "saving the report")
        record = await self._save(caller.user_id, analysis, kept)
        await ctx.report_progress(4, 4, "done")
        return _report(record)

    async def _save(self, user_id: str, analysis: Analysis, kept: bytes | None) -> SkinReportRecord:
        """The report, and the photo when kept. Once the work is done, save all or nothing: a cancellation
        here must not leave a photo file without its report (nor a report that claims a photo it lacks)."""
        record = SkinReportRecord(
            id=store.new_report_id(),
            user_id=user_id,
            analysis=analysis.model_dump(mode="json"),
            model_hashes={m.name: m.sha256 for m in analysis.models},
        )
        with anyio.CancelScope(shield=True):
            if kept is not None:
                record.photo_path = await self._in_thread(self.photos.save, user_id, record.id, kept)
            try:
                await store.add_report(self.services.db, record)
            except BaseException:
                if record.photo_path is not None:
                    await self._in_thread(self.photos.delete, record.photo_path)
                raise
        return record

    async def get_skin_report(self, ctx: Context, report_id: ReportId) -> SkinReport:
        """One of the caller's stored skin reports, in full (as analyze_skin returned it).

        Use it to revisit an earlier analysis; list_skin_reports gives the ids."""
        caller = current_user(ctx, self.settings)
        return _report(await self._load(caller.user_id, report_id))

    async def list_skin_reports(
        self,
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=100, description="How many reports, newest first.")] = 20,
        cursor: Annotated[
            str | None,
            Field(max_length=200, description="next_cursor of the previous page, for older reports."),
        ] = None,
    ) -> SkinReportPage:
        """The caller's stored skin reports, newest first: id, date, whether a photo was kept, each metric's
        value and the failed photo checks. Use it to find report ids for get_skin_report or
        compare_skin_reports; pass next_cursor to go further back."""
        caller = current_user(ctx, self.settings)
        before = _decode_cursor(cursor) if cursor else None
        records = await store.list_reports(self.services.db, caller.user_id, limit + 1, before)
        page, more = records[:limit], len(records) > limit
        summaries = []
        for record in page:
            report = _report(record)
            summaries.append(
                SkinReportSummary(
                    report_id=record.id,
                    created_at=record.created,
                    photo_kept=report.photo_kept,
                    values={m.name: m.value for m in report.metrics},
                    failed_gates=[g.name for g in report.gates if not g.passed],
                    skin_type=report.skin_type.value,
                )
            )
        return SkinReportPage(
            reports=summaries,
            total=await store.count_reports(self.services.db, caller.user_id),
            next_cursor=_encode_cursor(page[-1]) if more else None,
        )

    async def compare_skin_reports(
        self, ctx: Context, before_id: ReportId, after_id: ReportId
    ) -> SkinComparison:
        """What changed between two of the caller's skin reports: each metric's change with its uncertainty,
        "no_meaningful_change" when the change is within what a retake would show, and notes (weak=true)
        when the photos differ in light, quality checks, camera or distance so the comparison is weak.

        Use it when the person asks whether their skin changed between two analyses; list_skin_reports
        gives the ids."""
        caller = current_user(ctx, self.settings)
        if before_id == after_id:
            raise ToolError("before_id and after_id are the same report; pick two different reports")
        before, after = (
            await self._load(caller.user_id, before_id),
            await self._load(caller.user_id, after_id),
        )
        result = compare(_report(before), _report(after))
        notes = list(result.notes)
        if before.created > after.created:
            notes.append("the 'before' report is the newer one; each change is still after minus before")
        return SkinComparison(
            before_id=before.id,
            after_id=after.id,
            before_created_at=before.created,
            after_created_at=after.created,
            days_apart=round((after.created - before.created).total_seconds() / 86400, 2),
            changes=result.changes,
            weak=result.weak,
            notes=notes,
            notice=NOTICE,
        )

    async def delete_skin_report(
        self, ctx: Context, report_id: ReportId, confirm: Confirm = False
    ) -> DeletedSkinReport:
        """Permanently delete one of the caller's skin reports and its kept photo, if any.

        Use it when the person asks to remove an analysis; it cannot be undone. Call it without confirm
        first: that deletes nothing and says what would go; after the person says yes, call with confirm=true."""
        caller = current_user(ctx, self.settings)
        if confirm is not True:
            found = await self._load(caller.user_id, report_id)
            photo = " and the photo kept with it" if found.photo_path is not None else ""
            raise needs_confirmation(
                "delete_skin_report",
                f"This permanently deletes your skin report {found.id} of "
                f"{found.created.strftime('%d %b %Y, %H:%M')} UTC{photo}; it cannot be undone.",
            )
        photo_deleted = False

        async def remove_photo(record: SkinReportRecord) -> None:
            nonlocal photo_deleted
            if record.photo_path is not None:
                photo_deleted = await self._in_thread(self.photos.delete, record.photo_path)

        with anyio.CancelScope(shield=True):
            record = await store.delete_report(self.services.db, caller.user_id, report_id, remove_photo)
        if record is None:
            raise _not_found(report_id)
        return DeletedSkinReport(report_id=record.id, photo_deleted=photo_deleted)


def register(
    server: MCPServer,
    services: Services,
    *,
    fetcher: ImageFetcher | None = None,
    uploads: UploadLookup | None = None,
) -> None:
    """`fetcher` and `uploads` are seams: tests pass a fetcher that may reach a local fake server. Upload
    ids are looked up among the caller's chat uploads (`shine_mcp.store.chat`) unless `uploads` is given."""
    tools = SkinTools(services, fetcher=fetcher, uploads=uploads)
    server.tool(annotations=ANALYSE)(tools.analyze_skin)
    server.tool(annotations=READ_ONLY)(tools.get_skin_report)
    server.tool(annotations=READ_ONLY)(tools.list_skin_reports)
    server.tool(annotations=READ_ONLY)(tools.compare_skin_reports)
    server.tool(annotations=DELETE)(tools.delete_skin_report)
