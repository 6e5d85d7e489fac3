"""The fulfilment worker: delivers the outbox rows written when orders were paid, exactly once per order.

Each job goes to the configured partner (`SHINE_FULFILMENT_URL`) as a signed JSON POST with the job id as
idempotency key; "not now" answers (timeouts, 5xx, 429) are retried with exponential back-off; a "no"
(another 4xx), or a partner still unreachable after the last retry, moves the job to the fallback partner
(`SHINE_FULFILMENT_FALLBACK_URL`) and then to `failed`, flagged for the merchant. With no partner configured
the job goes to the local queue the merchant works through (`shine orders pending-fulfilment`).

Jobs are claimed with a lease, so several Shine processes on one database never deliver the same job at
once. Time is injected (`clock`, `sleep`): tests move it instead of waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import anyio
from sqlalchemy import func, or_, update
from sqlmodel import col, select

from shine_mcp.clock import aware, utcnow
from shine_mcp.config import Settings
from shine_mcp.integrations.fulfilment import Delivery, Partner, PartnerClient
from shine_mcp.orders import machine
from shine_mcp.orders.ledger import Ledger, note
from shine_mcp.store.db import Database
from shine_mcp.store.orders import FulfilmentJob, get_order, lock_order

log = logging.getLogger("shine.fulfilment")

Sleep = Callable[[float], Awaitable[None]]


def partners(settings: Settings) -> list[Partner]:
    """The configured partners in the order they are tried. A partner without a secret is left out
    (an unsigned order would be refused, or worse, trusted) and said so in the log."""
    found: list[Partner] = []
    primary_secret = settings.fulfilment_secret.get_secret_value() if settings.fulfilment_secret else ""
    fallback = settings.fulfilment_fallback_secret
    fallback_secret = fallback.get_secret_value() if fallback else primary_secret
    for name, url, secret in (
        ("primary", settings.fulfilment_url, primary_secret),
        ("fallback", settings.fulfilment_fallback_url, fallback_secret),
    ):
        if not url:
            continue
        if not secret:
            log.error(
                "the %s fulfilment partner has no shared secret (SHINE_FULFILMENT_SECRET): not used", name
            )
            continue
        found.append(Partner(name, url, secret))  # type: ignore[arg-type]
    return found


def partner_secrets(settings: Settings) -> list[str]:
    return [p.secret for p in partners(settings)]


class FulfilmentWorker:
    def __init__(
        self,
        db: Database,
        ledger: Ledger,
        settings: Settings,
        *,
        client: PartnerClient | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Sleep = anyio.sleep,
        base_delay: timedelta = timedelta(seconds=30),
        max_delay: timedelta = timedelta(hours=1),
        max_attempts: int = 8,
        lease: timedelta = timedelta(minutes=5),
        poll_interval: float = 30.0,
        batch: int = 20,
        housekeeping: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._db, self._ledger, self._settings = db, ledger, settings
        self._client = client or PartnerClient()
        self._owns_client = client is None
        self._clock, self._sleep = clock, sleep
        self._base_delay, self._max_delay = base_delay, max_delay
        self._max_attempts, self._lease, self._poll, self._batch = max_attempts, lease, poll_interval, batch
        self._housekeeping = housekeeping
        self._wakeup = anyio.Event()
        self._passed = anyio.Event()
        self.passes = 0

    def backoff(self, attempts: int) -> timedelta:
        """Delay before retry number `attempts` (1, 2, …): base · 2^(attempts-1), capped."""
        return min(self._base_delay * (1 << max(0, attempts - 1)), self._max_delay)

    def wake(self, _order_id: str | None = None) -> None:
        """Deliver now rather than at the next poll (called when an order was just paid)."""
        self._wakeup.set()

    async def pass_after(self, count: int) -> None:
        """Wait until the running loop has finished more than `count` passes (read `passes` first)."""
        while self.passes <= count:
            await self._passed.wait()

    # --- one pass ----------------------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Deliver every job that is due now; returns how many were handled."""
        now = self._clock()
        async with self._db.reading() as session:
            due = list(
                (
                    await session.execute(
                        select(FulfilmentJob.id)
                        .where(
                            col(FulfilmentJob.status) == "pending",
                            col(FulfilmentJob.next_attempt_at) <= now,
                            or_(
                                col(FulfilmentJob.lease_until).is_(None),
                                col(FulfilmentJob.lease_until) <= now,
                            ),
                        )
                        .order_by(col(FulfilmentJob.next_attempt_at))
                        .limit(self._batch)
                    )
                ).scalars()
            )
        handled = 0
        for job_id in due:
            if await self._claim(job_id, now):
                await self._deliver(job_id)
                handled += 1
        return handled

    async def _claim(self, job_id: str, now: datetime) -> bool:
        async with self._db.session() as session:
            claimed = await session.execute(
                update(FulfilmentJob)
                .where(
                    col(FulfilmentJob.id) == job_id,
                    col(FulfilmentJob.status) == "pending",
                    or_(col(FulfilmentJob.lease_until).is_(None), col(FulfilmentJob.lease_until) <= now),
                )
                .values(lease_until=now + self._lease)
            )
            await session.commit()
        return bool(getattr(claimed, "rowcount", 0))

    async def _save(self, job_id: str, **values: object) -> None:
        async with self._db.session() as session:
            await session.execute(
                update(FulfilmentJob)
                .where(col(FulfilmentJob.id) == job_id)
                .values(lease_until=None, updated_at=self._clock(), **values)
            )
            await session.commit()

    async def _deliver(self, job_id: str) -> None:
        async with self._db.reading() as session:
            job = await session.get(FulfilmentJob, job_id)
        if job is None:
            return
        order = await get_order(self._db, job.order_id)
        if order is None or machine.Status(order.status) in machine.DO_NOT_SHIP:
            await self._save(
                job_id, status="cancelled", last_error=f"order is {order.status if order else 'gone'}"
            )
            return
        available = partners(self._settings)
        now = self._clock()
        if not available:
            await self._save(job_id, status="local", partner="local", delivered_at=now)
            await self._ledger.apply(job.order_id, machine.FulfilmentStarted(at=now, partner="local"))
            log.info(
                "order %s is in the local fulfilment queue (shine orders pending-fulfilment)", job.order_id
            )
            return
        if job.partner_index >= len(available):
            await self._give_up(job, "no partner left to try")
            return
        partner = available[job.partner_index]
        try:
            result = await self._client.deliver(partner, job.payload, job.id)
        except Exception as exc:  # a bug must not lose the job: retry it like an outage
            log.exception("delivering %s to the %s partner failed", job.id, partner.name)
            result = Delivery("retry", f"{type(exc).__name__} while delivering")
        await self._record(job, partner, result, available)

    async def _record(
        self, job: FulfilmentJob, partner: Partner, result: Delivery, available: list[Partner]
    ) -> None:
        now = self._clock()
        if result.outcome == "accepted":
            await self._save(
                job.id,
                status="delivered",
                partner=partner.name,
                partner_reference=result.reference,
                delivered_at=now,
                last_error=None,
            )
            await self._ledger.apply(job.order_id, machine.FulfilmentStarted(at=now, partner=partner.name))
            return
        attempts = job.attempts + 1
        detail = f"{partner.name}: {result.detail}"[:500]
        exhausted = result.outcome == "rejected" or attempts >= self._max_attempts
        if not exhausted:
            await self._save(
                job.id, attempts=attempts, last_error=detail, next_attempt_at=now + self.backoff(attempts)
            )
            return
        if job.partner_index + 1 < len(available):
            log.warning(
                "order %s: %s; trying the %s partner",
                job.order_id,
                detail,
                available[job.partner_index + 1].name,
            )
            await self._save(
                job.id,
                partner_index=job.partner_index + 1,
                attempts=0,
                last_error=detail,
                next_attempt_at=now,
            )
            return
        job.last_error = detail
        await self._give_up(job, detail)

    async def _give_up(self, job: FulfilmentJob, detail: str) -> None:
        await self._save(job.id, status="failed", last_error=detail[:500])
        log.error("order %s could not be sent to fulfilment: %s", job.order_id, detail)
        async with self._db.session() as session:
            order = await lock_order(session, job.order_id)
            if order is not None:
                note(order, f"fulfilment failed ({detail}): ship it yourself or retry it")
                await session.commit()

    async def next_due(self) -> datetime | None:
        async with self._db.reading() as session:
            value = (
                await session.execute(
                    select(func.min(FulfilmentJob.next_attempt_at)).where(
                        col(FulfilmentJob.status) == "pending"
                    )
                )
            ).scalar_one_or_none()
        return aware(value) if value is not None else None

    # --- the loop ----------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Deliver due jobs until cancelled, sleeping until the next job is due, a poll interval passes, or
        `wake()` is called."""
        try:
            while True:
                try:
                    await self.run_once()
                    if self._housekeeping is not None:
                        await self._housekeeping()
                    due = await self.next_due()
                except Exception:  # the database may be briefly unavailable: keep the worker alive
                    log.exception("fulfilment pass failed; trying again later")
                    due = None
                self.passes += 1
                self._passed.set()
                self._passed = anyio.Event()
                wait = self._poll
                if due is not None:
                    wait = max(0.0, min(wait, (due - self._clock()).total_seconds()))
                await self._pause(wait)
        finally:
            if self._owns_client:
                with anyio.CancelScope(shield=True):
                    await self._client.close()

    async def _pause(self, seconds: float) -> None:
        if self._wakeup.is_set():
            self._wakeup = anyio.Event()
            return
        async with anyio.create_task_group() as group:

            async def timer() -> None:
                await self._sleep(seconds)
                group.cancel_scope.cancel()

            async def woken() -> None:
                await self._wakeup.wait()
                group.cancel_scope.cancel()

            group.start_soon(timer)
            group.start_soon(woken)
        self._wakeup = anyio.Event()
