"""Deliveries: an event becomes one message per matching endpoint, and each message is
attempted by the job queue until a 2xx, a 410, or the end of the retry schedule.

The consumer only stores and defers (no HTTP in it, so no receiver can hold it up): for every
enabled endpoint whose patterns and district filter match (``matching``) it stores the message
(the CloudEvent) and defers its first attempt, in the consumer's transaction. The inbox makes a
redelivered event harmless, and (endpoint, event id) is unique besides.

A delivery job (``run``) holds one of the endpoint's slots in this process
(``WEBHOOKS_ENDPOINT_CONCURRENCY``); when they are all taken it defers itself a second later
and frees its worker slot, so a slow endpoint occupies at most its own slots and never delays
another endpoint's messages. It then claims the message in a short transaction: the message's
``job_token`` moves on and a rescue job is deferred at the end of a lease (the timeout and a
margin), so a process killed mid-attempt loses nothing: the rescue attempts again (at least
once; receivers de-duplicate on ``webhook-id``). The HTTP attempt runs outside any transaction.
Its outcome is recorded in a second one, with the next attempt's job (``schedule``), or the
message's end:

- 2xx: succeeded; the endpoint's failure window closes.
- 410 Gone: the endpoint is disabled (``webhook.endpoint_disabled``), its pending messages fail.
- 429 / 503: retried after ``Retry-After`` when given, else by the schedule.
- anything else, a redirect, a timeout, a refused address: retried by the schedule.
- retries run out: the message fails (``webhook.delivery_exhausted``); replay starts it again.
- an endpoint whose attempts all failed for ``WEBHOOKS_FAILING_DISABLE_DAYS`` (5) is disabled.

Headers follow Standard Webhooks: ``webhook-id`` is the event's id (the same for every attempt
and replay, so receivers de-duplicate on it), ``webhook-timestamp`` the attempt's time, and
``webhook-signature`` one signature per secret in use (two during a rotation's overlap).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.districts import Scope
from chassis.errors import Conflict, NotFound
from chassis.events import CloudEvent
from chassis.pagination import Page, PageRequest, keyset_page
from services.webhooks.deliveries import repository
from services.webhooks.deliveries.matching import event_district, matching
from services.webhooks.deliveries.schedule import delay_after, retry_after
from services.webhooks.deliveries.schemas import AttemptOut, MessageOut
from services.webhooks.deliveries.sender import Outcome, Sender
from services.webhooks.events import DeliveryExhausted, EndpointDisabled, EndpointEvent
from services.webhooks.models import Attempt, Endpoint, Message, messaging
from services.webhooks.runtime import WebhooksRuntime
from services.webhooks.signing import signature_header
from services.webhooks.subscriptions.repository import add_audit
from services.webhooks.subscriptions.service import EndpointNotFound, endpoints
from services.webhooks.vocabulary import AttemptOutcome, AuditAction, DisabledReason, MessageStatus

log = logging.getLogger("webhooks.deliveries")

LEASE_MARGIN = timedelta(seconds=30)
BUSY_DELAY = timedelta(seconds=1)
HONOURED_RETRY_AFTER = frozenset({429, 503})
# Who the audit trail names for what the service does by itself.
SERVICE_ACTOR = "webhooks"


async def route(session: AsyncSession, event: CloudEvent) -> int:
    """Store a message for every endpoint the event goes to and defer its first attempt;
    how many were stored (a redelivered event stores none)."""
    district_id, path = event_district(event.data)
    if path is None and district_id is not None:
        path = await repository.district_path(session, district_id)
    endpoints = await repository.list_live_endpoints(session)
    stored = 0
    payload = json.loads(event.to_json())
    for endpoint in matching(endpoints, event.type, path, event.data):
        message_id = await repository.store_message(
            session, endpoint.id, event.id, event.type, payload
        )
        if message_id is not None:
            await repository.defer_delivery(session, message_id, endpoint.id, 0, None)
            stored += 1
    return stored


@dataclass
class EndpointSlots:
    """Per-endpoint concurrency in this process."""

    limit: int
    _held: dict[uuid.UUID, int] = field(default_factory=dict)

    @contextmanager
    def take(self, endpoint_id: uuid.UUID) -> Iterator[bool]:
        """Yields whether a slot was free (and holds it until the block ends)."""
        held = self._held.get(endpoint_id, 0)
        if held >= self.limit:
            yield False
            return
        self._held[endpoint_id] = held + 1
        try:
            yield True
        finally:
            left = self._held[endpoint_id] - 1
            if left:
                self._held[endpoint_id] = left
            else:
                del self._held[endpoint_id]


@dataclass(frozen=True)
class Claim:
    """A message claimed for one attempt: what to send, and the token of the lease."""

    message_id: uuid.UUID
    endpoint_id: uuid.UUID
    token: int
    number: int
    url: str
    body: str
    headers: dict[str, str]
    at: datetime


@dataclass
class Deliverer:
    """Runs delivery jobs: the process's sender, endpoint slots and sessions."""

    runtime: WebhooksRuntime
    sessions: async_sessionmaker[AsyncSession]
    sender: Sender
    slots: EndpointSlots

    async def run(self, message_id: uuid.UUID, endpoint_id: uuid.UUID, token: int) -> None:
        with self.slots.take(endpoint_id) as free:
            if not free:
                async with self.sessions.begin() as session:
                    at = self.runtime.clock() + BUSY_DELAY
                    await repository.defer_delivery(session, message_id, endpoint_id, token, at)
                return
            async with self.sessions.begin() as session:
                claim = await self.claim(session, message_id, token)
            if claim is None:
                return
            outcome = await self.sender.send(claim.url, claim.body, claim.headers)
            async with self.sessions.begin() as session:
                await self.record(session, claim, outcome)

    async def claim(self, session: AsyncSession, message_id: uuid.UUID, token: int) -> Claim | None:
        """The message's next attempt, with a lease; None when the job is stale (another job
        holds the message, or it is over) or the endpoint no longer receives."""
        message = await repository.lock_message(session, message_id)
        if message is None or message.status != MessageStatus.PENDING or message.job_token != token:
            return None
        endpoint = await repository.lock_endpoint(session, message.endpoint_id)
        now = self.runtime.clock()
        if endpoint is None or not endpoint.enabled or endpoint.deleted_at is not None:
            _finish(message, MessageStatus.FAILED)
            return None
        lease = (
            now + timedelta(seconds=self.runtime.settings.delivery_timeout_seconds) + LEASE_MARGIN
        )
        await _schedule(session, message, lease)
        body = json.dumps(message.payload, separators=(",", ":"), ensure_ascii=False)
        msg_id = str(message.payload.get("id") or message.event_id)
        return Claim(
            message_id=message.id,
            endpoint_id=endpoint.id,
            token=message.job_token,
            number=message.attempts + 1,
            url=endpoint.url,
            body=body,
            headers={
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": signature_header(
                    self.secrets_of(endpoint, now), msg_id, now, body
                ),
            },
            at=now,
        )

    def secrets_of(self, endpoint: Endpoint, now: datetime) -> list[str]:
        """The secrets that sign now: the current one, and the previous one in its overlap."""
        box = self.runtime.box
        secrets = [box.open(endpoint.secret)]
        expires = endpoint.previous_secret_expires_at
        if endpoint.previous_secret is not None and expires is not None and now < expires:
            secrets.append(box.open(endpoint.previous_secret))
        return secrets

    async def record(self, session: AsyncSession, claim: Claim, outcome: Outcome) -> None:
        """The attempt in the log, and what follows from it."""
        repository.add_attempt(
            session,
            Attempt(
                message_id=claim.message_id,
                endpoint_id=claim.endpoint_id,
                number=claim.number,
                outcome=outcome.outcome.value,
                status_code=outcome.status_code,
                latency_ms=outcome.latency_ms,
                response_excerpt=outcome.excerpt,
                error=outcome.error,
                address=outcome.address,
                at=claim.at,
            ),
        )
        message = await repository.lock_message(session, claim.message_id)
        endpoint = await repository.lock_endpoint(session, claim.endpoint_id)
        assert message is not None
        assert endpoint is not None
        message.attempts += 1
        message.last_attempt_at = claim.at
        if message.job_token != claim.token or message.status != MessageStatus.PENDING:
            return  # replayed or ended meanwhile: the attempt is logged, the rest is not ours
        now = self.runtime.clock()
        if outcome.outcome == AttemptOutcome.SUCCEEDED:
            _finish(message, MessageStatus.SUCCEEDED)
            endpoint.failing_since = None
            return
        if outcome.status_code == 410:
            _finish(message, MessageStatus.FAILED)
            await self.disable(session, endpoint, DisabledReason.GONE)
            return
        endpoint.failing_since = endpoint.failing_since or claim.at
        window = timedelta(days=self.runtime.settings.failing_disable_days)
        if now - endpoint.failing_since >= window:
            _finish(message, MessageStatus.FAILED)
            await self.disable(session, endpoint, DisabledReason.FAILING)
            return
        delay = delay_after(message.attempts, self.runtime.jitter)
        if delay is None:
            _finish(message, MessageStatus.FAILED)
            await _publish_about(
                session,
                endpoint,
                DeliveryExhausted,
                message_id=message.id,
                event_id=message.event_id,
                event_type=message.event_type,
                attempts=message.attempts,
                last_status_code=outcome.status_code,
                last_error=outcome.error,
            )
            return
        if outcome.status_code in HONOURED_RETRY_AFTER:
            delay = retry_after(outcome.retry_after, now) or delay
        await _schedule(session, message, now + delay)

    async def disable(
        self, session: AsyncSession, endpoint: Endpoint, reason: DisabledReason
    ) -> None:
        endpoint.enabled = False
        endpoint.disabled_reason = reason.value
        endpoint.updated_at = self.runtime.clock()
        await repository.fail_pending_messages(session, endpoint.id)
        add_audit(
            session, endpoint.id, AuditAction.DISABLED, SERVICE_ACTOR, {"reason": reason.value}
        )
        await _publish_about(
            session,
            endpoint,
            EndpointDisabled,
            url=endpoint.url,
            reason=reason.value,
            failing_since=endpoint.failing_since,
        )
        log.warning("endpoint %s disabled: %s", endpoint.id, reason.value)


async def _publish_about(
    session: AsyncSession, endpoint: Endpoint, event: type[EndpointEvent], **data: Any
) -> None:
    """An event about `endpoint`: it names the endpoint and its district, and the endpoint's id
    is its subject (and Kafka key)."""
    await messaging.publisher.publish(
        session,
        event(endpoint_id=endpoint.id, district_id=endpoint.district_id, **data),
        subject=str(endpoint.id),
    )


async def _schedule(session: AsyncSession, message: Message, at: datetime) -> None:
    """Make a new job the message's one job in force, due at `at`."""
    message.job_token += 1
    message.next_attempt_at = at
    await session.flush()
    await repository.defer_delivery(session, message.id, message.endpoint_id, message.job_token, at)


def _finish(message: Message, status: MessageStatus) -> None:
    message.status = status.value
    message.next_attempt_at = None
    message.job_token += 1


async def replay(session: AsyncSession, message: Message, now: datetime) -> None:
    """Attempt the message again from the start of the schedule, now."""
    message.status = MessageStatus.PENDING.value
    message.attempts = 0
    await _schedule(session, message, now)


class MessageNotFound(NotFound):
    type_slug = "message-not-found"
    title = "Message not found"


class EndpointDisabledProblem(Conflict):
    type_slug = "endpoint-disabled"
    title = "The endpoint is disabled"


# One replay request re-attempts at most this many messages; repeat it for more.
REPLAY_LIMIT = 10_000


class DeliveryLog:
    """The messages and attempts of the endpoints the caller manages, and replays."""

    async def message(self, session: AsyncSession, scope: Scope, message_id: uuid.UUID) -> Message:
        message = await repository.get_message(session, message_id)
        if message is not None:
            try:
                await endpoints.get(session, scope, message.endpoint_id)
            except EndpointNotFound:
                pass
            else:
                return message
        raise MessageNotFound(f"No message {message_id}.")

    async def messages_of_endpoint(
        self,
        session: AsyncSession,
        scope: Scope,
        endpoint_id: uuid.UUID,
        page: PageRequest,
        status: MessageStatus | None,
    ) -> Page[MessageOut]:
        await endpoints.get(session, scope, endpoint_id)
        rows = await repository.list_messages_of_endpoint(session, endpoint_id, page, status)
        return keyset_page(rows, page, lambda m: (m.created_at, m.id), MessageOut.model_validate)

    async def attempts_of_endpoint(
        self, session: AsyncSession, scope: Scope, endpoint_id: uuid.UUID, page: PageRequest
    ) -> Page[AttemptOut]:
        await endpoints.get(session, scope, endpoint_id)
        rows = await repository.list_attempts_of_endpoint(session, endpoint_id, page)
        return keyset_page(rows, page, lambda a: (a.id,), AttemptOut.model_validate)

    async def attempts_of_message(
        self, session: AsyncSession, scope: Scope, message_id: uuid.UUID, page: PageRequest
    ) -> Page[AttemptOut]:
        await self.message(session, scope, message_id)
        rows = await repository.list_attempts_of_message(session, message_id, page)
        return keyset_page(rows, page, lambda a: (a.id,), AttemptOut.model_validate)

    async def replay_message(
        self, session: AsyncSession, scope: Scope, message_id: uuid.UUID, now: datetime
    ) -> Message:
        """The message attempted again now, from the start of the schedule (whatever its
        status: a delivered one is sent again, with the same ``webhook-id``)."""
        found = await self.message(session, scope, message_id)
        endpoint = await endpoints.get(session, scope, found.endpoint_id)
        _require_enabled(endpoint)
        message = await repository.lock_message(session, found.id)
        assert message is not None
        await replay(session, message, now)
        add_audit(
            session,
            endpoint.id,
            AuditAction.REPLAYED,
            scope.principal.sub,
            {"message_id": str(message.id)},
        )
        return message

    async def replay_failed(
        self,
        session: AsyncSession,
        scope: Scope,
        endpoint_id: uuid.UUID,
        since: datetime,
        now: datetime,
    ) -> int:
        """Every failed message of the endpoint stored since `since`, attempted again now."""
        endpoint = await endpoints.get(session, scope, endpoint_id)
        _require_enabled(endpoint)
        failed = await repository.lock_failed_messages_since(
            session, endpoint_id, since, REPLAY_LIMIT
        )
        for message in failed:
            await replay(session, message, now)
        add_audit(
            session,
            endpoint.id,
            AuditAction.REPLAYED,
            scope.principal.sub,
            {"since": since.isoformat(), "messages": len(failed)},
        )
        return len(failed)


def _require_enabled(endpoint: Endpoint) -> None:
    if not endpoint.enabled:
        raise EndpointDisabledProblem(
            "The endpoint is disabled; enable it (PATCH enabled=true) before replaying."
        )


delivery_log = DeliveryLog()
