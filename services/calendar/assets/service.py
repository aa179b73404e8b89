"""The asset library: logos, images, videos and documents that posts use.

An asset belongs to a district (its writers manage it, the district and those below it use
it) or is company-wide (managed by the central team, usable everywhere). Who reads, writes and
uses it follows services/calendar/access.py; another district's asset does not exist for the
caller (404).

The bytes are content addressed (storage.content_key of the sha256): the same file uploaded
again to the same district is that district's asset (200, unchanged, nothing stored), and the
same file in two districts is two assets sharing one stored object. Storing, de-duplicating and
deleting the bytes of one sha256 take an advisory lock on it for the rest of the transaction,
so a delete never removes an object a concurrent upload has just decided to reuse. The object
is removed before the row's deletion commits: should that commit fail, the row points at
nothing (its download is a 404 problem) until the same bytes are uploaded again, which stores
them anew; the other order could leave an object that no row names, which nothing would
ever clean up.

Posts call `attachable` (which assets a post may use), `expired_assets` (which of a post's
assets have run out of rights), `rights_ending` (which run out by its publish time: such a
post is not scheduled) and `content_path` (where an asset is downloaded).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope
from chassis.errors import Conflict, NotFound, Unprocessable
from chassis.openapi import PublicLinks
from chassis.pagination import Page, PageRequest, keyset_page
from services.calendar.access import optional_district_path, require_write, tree
from services.calendar.assets import repository
from services.calendar.assets.schemas import AssetCreate, AssetOut, AssetSearch, AssetUpdate
from services.calendar.assets.storage import AssetStorage, StoredObjectMissing, content_key
from services.calendar.assets.upload import ReceivedFile
from services.calendar.models import Asset
from services.calendar.repository import insert_row, save_row
from services.calendar.schemas import response_of

__all__ = [
    "AssetContentMissing",
    "AssetInUse",
    "AssetNotFound",
    "AssetsNotAttachable",
    "assets",
    "attachable",
    "content_path",
    "expired_assets",
    "rights_ending",
]

UNTITLED = "Untitled asset"


class AssetNotFound(NotFound):
    type_slug = "asset-not-found"
    title = "Asset not found"


class AssetContentMissing(NotFound):
    type_slug = "asset-content-missing"
    title = "The asset's file is missing from storage"


class AssetInUse(Conflict):
    type_slug = "asset-in-use"
    title = "Posts use the asset"


class AssetsNotAttachable(Unprocessable):
    type_slug = "assets-not-attachable"
    title = "Some assets cannot be used by this post"


def content_path(asset_id: uuid.UUID) -> str:
    """Where the asset's bytes are downloaded (what events and post payloads point to)."""
    return f"/assets/{asset_id}/content"


def rights_expired(asset: Asset, now: datetime | None = None) -> bool:
    expires = asset.rights_expire_at
    return expires is not None and expires <= (now or datetime.now(UTC))


def out(asset: Asset, links: PublicLinks, now: datetime | None = None) -> AssetOut:
    """The asset as the API shows it; its `content_url` is absolute, as clients reach it."""
    return response_of(
        AssetOut,
        asset,
        rights_expired=rights_expired(asset, now),
        content_url=links.to(content_path(asset.id)),
    )


class AssetService:
    async def upload(
        self,
        session: AsyncSession,
        scope: Scope,
        storage: AssetStorage,
        received: ReceivedFile,
        data: AssetCreate,
    ) -> tuple[Asset, bool]:
        """The stored asset and whether it was already there (a duplicate, left unchanged)."""
        await self.require_upload(session, scope, data.district_id)
        key = content_key(received.sha256)
        await repository.lock_content(session, received.sha256)
        existing = await repository.find_by_content(session, data.district_id, received.sha256)
        if existing is not None:
            # Heals an asset whose object went missing (see the module docstring).
            if not await storage.exists(existing.storage_key):
                await storage.put(
                    existing.storage_key, received.path, content_type=existing.content_type
                )
            return existing, True
        if not await storage.exists(key):
            await storage.put(key, received.path, content_type=received.content_type)
        asset = Asset(
            id=uuid.uuid4(),
            district_id=data.district_id,
            sha256=received.sha256,
            storage_key=key,
            content_type=received.content_type,
            size_bytes=received.size,
            filename=received.filename,
            title=data.title or received.filename or UNTITLED,
            tags=list(data.tags or ()),
            alt_text=data.alt_text,
            usage_rights=data.usage_rights,
            rights_expire_at=data.rights_expire_at,
            created_by=scope.principal.sub,
        )
        return await insert_row(session, asset), False

    async def require_upload(
        self, session: AsyncSession, scope: Scope, district_id: str | None
    ) -> None:
        """Uploading to the district (None: company-wide) is allowed, or 404/403."""
        if district_id is None:
            require_write(scope, None, "Uploading a company-wide asset")
            return
        path = await tree.district_path(session, scope, district_id)
        require_write(scope, path, f"Uploading assets to district {district_id!r}")

    async def get(self, session: AsyncSession, scope: Scope, asset_id: uuid.UUID) -> Asset:
        asset, _ = await self._get_visible(session, scope, asset_id)
        return asset

    async def update(
        self, session: AsyncSession, scope: Scope, asset_id: uuid.UUID, data: AssetUpdate
    ) -> Asset:
        asset, path = await self._get_visible(session, scope, asset_id, for_update=True)
        require_write(scope, path, "Changing this asset")
        changes = data.model_dump(exclude_unset=True)
        if not changes:
            return asset
        for name, value in changes.items():
            setattr(asset, name, list(value) if name == "tags" else value)
        asset.updated_at = func.now()
        return await save_row(session, asset)

    async def delete(
        self, session: AsyncSession, scope: Scope, storage: AssetStorage, asset_id: uuid.UUID
    ) -> None:
        asset, path = await self._get_visible(session, scope, asset_id, for_update=True)
        require_write(scope, path, "Deleting this asset")
        await repository.lock_content(session, asset.sha256)
        used = await repository.posts_using(session, asset.id)
        if used:
            raise AssetInUse(
                f"{used} post(s) use the asset; remove it from them first.", posts=used
            )
        await session.delete(asset)
        await session.flush()
        if not await repository.content_still_used(session, asset.sha256):
            await storage.delete(asset.storage_key)

    async def open_content(self, storage: AssetStorage, asset: Asset) -> Any:
        """The asset's bytes as an async iterator, or AssetContentMissing."""
        try:
            return await storage.open(asset.storage_key)
        except StoredObjectMissing as exc:
            raise AssetContentMissing(
                "The asset's file is missing from storage; upload the file again to restore it."
            ) from exc

    async def search(
        self,
        session: AsyncSession,
        scope: Scope,
        page: PageRequest,
        search: AssetSearch,
        links: PublicLinks,
    ) -> Page[AssetOut]:
        """Visible assets matching the search, newest first; a district it names that the
        caller cannot read is 404."""
        under_path = await optional_district_path(session, scope, search.district_id)
        usable_by_path = await optional_district_path(session, scope, search.usable_by)
        if not scope.read_paths:
            return Page[AssetOut](items=[])
        rows = await repository.search(
            session,
            scope,
            search,
            under_path=under_path,
            usable_by_path=usable_by_path,
            after=page.after_key(datetime, uuid.UUID),
            fetch=page.fetch,
        )
        now = datetime.now(UTC)
        return keyset_page(
            rows, page, key=lambda a: (a.created_at, a.id), item=lambda a: out(a, links, now)
        )

    async def attachable(
        self,
        session: AsyncSession,
        scope: Scope,
        post_path: str | None,
        asset_ids: Sequence[uuid.UUID],
    ) -> dict[uuid.UUID, Asset]:
        wanted = list(dict.fromkeys(asset_ids))
        if not wanted:
            return {}
        found, seen = await repository.usable(session, scope, post_path, wanted)
        refused = [
            {
                "asset_id": str(asset_id),
                # An asset the caller cannot see is unknown, as if it did not exist.
                "reason": "other_district" if asset_id in seen else "unknown",
            }
            for asset_id in wanted
            if asset_id not in found
        ]
        if refused:
            raise AssetsNotAttachable(
                "A post may use company-wide assets and those of its own district or the "
                "districts above it.",
                refused=refused,
            )
        return {asset_id: found[asset_id] for asset_id in wanted}

    async def expired_assets(
        self, session: AsyncSession, post_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        result: dict[uuid.UUID, list[uuid.UUID]] = {post_id: [] for post_id in post_ids}
        if not result:
            return result
        for post_id, asset_id in await repository.expired_by_post(session, list(result)):
            result[post_id].append(asset_id)
        return result

    async def _get_visible(
        self,
        session: AsyncSession,
        scope: Scope,
        asset_id: uuid.UUID,
        *,
        for_update: bool = False,
    ) -> tuple[Asset, str | None]:
        # A region's assets are its districts' library too (shared down).
        return await tree.load_scoped(
            session, scope, Asset, asset_id, AssetNotFound, for_update=for_update
        )


assets = AssetService()


async def attachable(
    session: AsyncSession, scope: Scope, post_path: str | None, asset_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Asset]:
    """The assets `asset_ids` by id, each visible to the caller and usable by a post of the
    district at `post_path` (None: the company-wide calendar): a company-wide asset, or one of
    that district or a district above it. Otherwise 422 (AssetsNotAttachable) listing every
    refused id with its reason: "other_district", or "unknown" for an asset the caller
    cannot see (so ids of other districts cannot be probed)."""
    return await assets.attachable(session, scope, post_path, asset_ids)


async def expired_assets(
    session: AsyncSession, post_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Per post (every id given is a key), the assets it uses (post_assets) whose
    rights_expire_at <= now(), ordered by id."""
    return await assets.expired_assets(session, post_ids)


async def rights_ending(session: AsyncSession, post_id: uuid.UUID, at: datetime) -> list[Asset]:
    """The assets the post uses (post_assets) whose usage rights end at or before `at` (its
    publish time), ordered by id."""
    return await repository.rights_ending_for_post(session, post_id, at)
