"""HTTP endpoints of the calendar service. Every route of `router` requires the principal;
`public_router` (served under /public) holds the iCalendar feeds, authenticated by their token.
"""

from __future__ import annotations

from fastapi import APIRouter

from services.calendar.accounts.endpoints import router as accounts_router
from services.calendar.assets.endpoints import router as assets_router
from services.calendar.blackouts.endpoints import router as blackouts_router
from services.calendar.calendars.endpoints import router as calendars_router
from services.calendar.feeds.endpoints import public_router as feeds_public_router
from services.calendar.feeds.endpoints import router as feeds_router
from services.calendar.posts.endpoints import router as posts_router
from services.calendar.styleguide.endpoints import router as styleguide_router
from services.calendar.views.endpoints import router as views_router

router = APIRouter()
router.include_router(calendars_router)
router.include_router(feeds_router)
# The range view (GET /posts) before the post routes (GET /posts/{post_id}).
router.include_router(views_router)
router.include_router(posts_router)
router.include_router(styleguide_router)
router.include_router(blackouts_router)
router.include_router(assets_router)
router.include_router(accounts_router)

public_router = APIRouter()
public_router.include_router(feeds_public_router)
