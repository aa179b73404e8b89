"""Blackout periods: times when nothing publishes, company-wide (``district_id`` NULL) or for
a district and every district below it.

A period is half-open, ``[starts_at, ends_at)``: a post at ``ends_at`` is clear, so two
blackouts can follow each other without a gap or an overlap. Posts ask ``clashes`` (in
``repository``) whether a publish time falls in one; lint reports each clash as an error.

Declaring a blackout also reaches back: every post already *scheduled* inside it, in the
blackout's district and below (every district for a company-wide one), is put on hold in the
same transaction (``publication.unschedule_in_blackout``): back to ``approved`` with the blackout as
its ``status_reason``, one ``post.unscheduled`` event each. Blackouts are never edited, only
declared and lifted, so "widened" is a new declaration and goes the same way. Lifting one
does not reschedule anything by itself: the held posts wait for someone to retry
(``POST /posts/{id}/status`` with ``scheduled``) or to move them, as posts refused at approval
time do.

Who sees a blackout: whoever reads a district it applies to, so a team sees the blackouts of
the districts above it (they bind the team) but not those of a sibling (404). Creating and
deleting one needs a manager on its district, or the central team for a company-wide one.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope, can_read
from chassis.errors import NotFound, Unprocessable
from chassis.pagination import Page, PageRequest, keyset_page
from services.calendar.access import (
    delete_managed,
    optional_district_path,
    require_manage_district,
    tree,
)
from services.calendar.blackouts import repository
from services.calendar.blackouts.schemas import BlackoutCreate, BlackoutCreated, BlackoutOut
from services.calendar.models import Blackout
from services.calendar.posts.publication import publication
from services.calendar.repository import insert_row


class BlackoutNotFound(NotFound):
    type_slug = "blackout-not-found"
    title = "Blackout not found"


class InvalidWindow(Unprocessable):
    type_slug = "invalid-window"
    title = "The window ends before it starts"


class BlackoutService:
    async def create(
        self, session: AsyncSession, scope: Scope, data: BlackoutCreate
    ) -> BlackoutCreated:
        """Declare the blackout and put on hold the posts already scheduled inside it."""
        path = await require_manage_district(
            session, scope, data.district_id, "Declaring a blackout"
        )
        blackout = await insert_row(
            session, Blackout(id=uuid.uuid4(), **data.model_dump(), created_by=scope.principal.sub)
        )
        held = await publication.unschedule_in_blackout(
            session, blackout, path, scope.principal.sub
        )
        return BlackoutCreated(
            **BlackoutOut.model_validate(blackout).model_dump(), posts_put_on_hold=held
        )

    async def list_applying(
        self,
        session: AsyncSession,
        scope: Scope,
        page: PageRequest,
        *,
        district_id: str | None,
        start: datetime | None,
        end: datetime | None,
    ) -> Page[BlackoutOut]:
        """The blackouts that apply to the district (company-wide ones only without it) and
        overlap ``[start, end)``, by start."""
        if start is not None and end is not None and end <= start:
            raise InvalidWindow("`to` must be after `from`.")
        path = await optional_district_path(session, scope, district_id)
        if path is None and not can_read(scope, None):
            return Page[BlackoutOut](items=[])
        after = page.after_key(datetime, uuid.UUID)
        rows = await repository.list_applying(
            session, path, start=start, end=end, after=after, fetch=page.fetch
        )
        return keyset_page(
            rows, page, key=lambda b: (b.starts_at, b.id), item=BlackoutOut.model_validate
        )

    async def get(self, session: AsyncSession, scope: Scope, blackout_id: uuid.UUID) -> Blackout:
        blackout, _ = await tree.load_scoped(
            session, scope, Blackout, blackout_id, BlackoutNotFound
        )
        return blackout

    async def delete(self, session: AsyncSession, scope: Scope, blackout_id: uuid.UUID) -> None:
        await delete_managed(
            session, scope, Blackout, blackout_id, BlackoutNotFound, "Lifting a blackout"
        )


blackouts = BlackoutService()
