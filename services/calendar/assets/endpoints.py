"""HTTP endpoints of the asset library. Reading needs any role on the asset's district or
above it (company-wide assets: any role anywhere); uploading, editing and deleting need a
contributor or manager role there (company-wide assets: the central team). Another district's
asset is 404.

The upload and the download manage their own sessions instead of the request's: a slow client
must not hold a database connection while its bytes trickle in or out. The upload commits
before it answers, so a 201 means the asset is there.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.database import SessionDep
from chassis.districts import DistrictNotFound, ScopeDep, is_central
from chassis.errors import PROBLEM_JSON, Forbidden, problem_responses
from chassis.guard import body_limit
from chassis.openapi import PublicLinksDep
from chassis.pagination import InvalidCursor, Page, PageDep
from chassis.principal import DISTRICT_ID_PATTERN, PrincipalDep
from chassis.query import CommaSeparated
from services.calendar.access import WRITER_ROLES, tree
from services.calendar.assets import sniff
from services.calendar.assets.schemas import (
    CONTENT_TYPE_PREFIX_PATTERN,
    MAX_TAGS,
    TAG_MAX_LENGTH,
    AssetCreate,
    AssetOut,
    AssetSearch,
    AssetUpdate,
    AssetUploaded,
    RightsFilter,
    normalise_tags,
)
from services.calendar.assets.service import (
    AssetContentMissing,
    AssetInUse,
    AssetNotFound,
    assets,
    out,
)
from services.calendar.assets.storage import LocalStorage, StorageDep, StorageUnavailable
from services.calendar.assets.upload import (
    FORM_ALLOWANCE_BYTES,
    InvalidUpload,
    MislabelledAsset,
    NotMultipart,
    SvgRefused,
    UnsupportedAssetType,
    UploadTooLarge,
    check_declared_length,
    receive,
)
from services.calendar.posts.publication import publication
from services.calendar.schemas import district_query
from services.calendar.settings import CalendarSettings

router = APIRouter(tags=["assets"])

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "title": {"type": "string", "maxLength": 300},
                        "district_id": {"type": "string", "pattern": DISTRICT_ID_PATTERN},
                        "tags": {
                            "type": "array",
                            "items": {"type": "string", "maxLength": TAG_MAX_LENGTH},
                            "maxItems": MAX_TAGS,
                        },
                        "alt_text": {"type": "string", "maxLength": 1500},
                        "usage_rights": {"type": "string", "maxLength": 2000},
                        "rights_expire_at": {"type": "string", "format": "date-time"},
                    },
                }
            }
        },
    }
}
_ASCII_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXTENSION_OF = {
    sniff.PNG: "png",
    sniff.JPEG: "jpg",
    sniff.GIF: "gif",
    sniff.WEBP: "webp",
    sniff.MP4: "mp4",
    sniff.QUICKTIME: "mov",
    sniff.PDF: "pdf",
}


@router.post(
    "/assets",
    status_code=status.HTTP_201_CREATED,
    response_model=AssetUploaded,
    responses={
        200: {
            "description": "The same bytes were already in the district's library: that asset, "
            "unchanged, with `duplicate` true",
            "model": AssetUploaded,
        },
        422: {
            "description": "A form field is invalid (`https://chorus.dev/problems/validation-error`"
            ", with `errors`)",
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        },
        **problem_responses(
            InvalidUpload,
            Forbidden,
            DistrictNotFound,
            UploadTooLarge,
            NotMultipart,
            UnsupportedAssetType,
            MislabelledAsset,
            SvgRefused,
            StorageUnavailable,
        ),
    },
    openapi_extra=UPLOAD_BODY,
)
@body_limit(lambda settings: settings.asset_max_bytes + FORM_ALLOWANCE_BYTES)
async def upload_asset(
    request: Request, principal: PrincipalDep, storage: StorageDep, links: PublicLinksDep
) -> JSONResponse:
    """Upload a file to the library, as multipart/form-data: one `file` part, and the fields
    `title` (the file name when left out), `district_id` (left out: company-wide, central team
    only), `tags` (repeated, or comma-separated; lower-cased), `alt_text`, `usage_rights` and
    `rights_expire_at` (with its UTC offset).

    The body is read as it arrives and refused with 413 as soon as the file passes the limit
    (or before reading, when Content-Length says it will). The type comes from the bytes: PNG,
    JPEG, GIF, WebP, MP4, QuickTime or PDF; SVG is refused (it can carry scripts), and a file
    whose Content-Type or extension says otherwise than its bytes is refused as mislabelled
    (415). The same bytes uploaded again to the same district return that asset with status
    200 and `duplicate` true; nothing is stored twice. Needs a contributor or manager role on
    the district."""
    settings: CalendarSettings = request.app.state.settings
    max_bytes = settings.asset_max_bytes
    content_type = request.headers.get("content-type")
    if not (content_type or "").lower().startswith("multipart/form-data"):
        raise NotMultipart("Send the file as multipart/form-data with a 'file' part.")
    check_declared_length(request.headers.get("content-length"), max_bytes)
    factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    # Not ScopeDep: that holds the request's session, and so a database connection, for the
    # whole upload; the scope is read in a short session of its own instead.
    async with factory() as session:
        scope = await tree.scope_of(session, principal)
    # Refused before a byte is read; the district's own check follows once the form is in.
    if not (is_central(scope) or scope.paths_with(WRITER_ROLES)):
        raise Forbidden("Uploading assets needs a contributor or manager role on a district.")
    spool_dir = storage.root / ".incoming" if isinstance(storage, LocalStorage) else None
    async with receive(
        content_type, request.stream(), max_bytes=max_bytes, spool_dir=spool_dir
    ) as received:
        data = _form_metadata(received.fields)
        async with factory() as session, session.begin():
            asset, duplicate = await assets.upload(session, scope, storage, received.file, data)
    body = AssetUploaded(**out(asset, links).model_dump(), duplicate=duplicate)
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=status.HTTP_200_OK if duplicate else status.HTTP_201_CREATED,
        headers={"Location": links.to(f"/assets/{asset.id}")},
    )


def _form_metadata(fields: dict[str, list[str]]) -> AssetCreate:
    """The form fields as AssetCreate; errors as a validation problem (422) on `body`."""
    values: dict[str, Any] = {}
    for name, given in fields.items():
        if name == "tags":
            values[name] = given
            continue
        # An empty form field is a field left out, as browsers send every input of a form.
        present = [value for value in given if value.strip()]
        if present:
            values[name] = present[0] if len(present) == 1 else present
    try:
        return AssetCreate.model_validate(values)
    except ValidationError as exc:
        errors = [
            {**error, "loc": ("body", *error["loc"])}
            for error in exc.errors(include_url=False, include_context=False)
        ]
        raise RequestValidationError(errors) from exc


@router.get(
    "/assets",
    responses=problem_responses(InvalidCursor, DistrictNotFound),
)
async def search_assets(
    session: SessionDep,
    scope: ScopeDep,
    page: PageDep,
    links: PublicLinksDep,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="In the title or file name, any case"),
    ] = None,
    tags: Annotated[
        CommaSeparated[str] | None,
        Query(max_length=MAX_TAGS, description="Assets carrying all of these tags"),
    ] = None,
    district_id: Annotated[
        str | None,
        district_query(
            "Assets of this district and the districts below it",
        ),
    ] = None,
    usable_by: Annotated[
        str | None,
        district_query(
            "Assets this district's posts may use: company-wide ones, its own and its ancestors'",
        ),
    ] = None,
    content_type: Annotated[
        str | None,
        Query(
            max_length=100,
            pattern=CONTENT_TYPE_PREFIX_PATTERN,
            description="A media type or its start: `image/`, `video/mp4`",
        ),
    ] = None,
    rights: Annotated[
        RightsFilter | None,
        Query(description="`expired`: usage rights have ended; `valid`: they have not"),
    ] = None,
) -> Page[AssetOut]:
    """Search the assets the caller can see (company-wide ones and those of their districts),
    newest first."""
    return await assets.search(
        session,
        scope,
        page,
        AssetSearch(
            q=q,
            tags=tuple(normalise_tags(tags or [])),
            district_id=district_id,
            usable_by=usable_by,
            content_type=content_type,
            rights=rights,
        ),
        links,
    )


@router.get(
    "/assets/{asset_id}",
    responses=problem_responses(AssetNotFound),
)
async def get_asset(
    asset_id: uuid.UUID, session: SessionDep, scope: ScopeDep, links: PublicLinksDep
) -> AssetOut:
    """One asset's metadata; `content_url` is where its bytes are downloaded."""
    return out(await assets.get(session, scope, asset_id), links)


@router.patch(
    "/assets/{asset_id}",
    responses=problem_responses(AssetNotFound, Forbidden),
)
async def update_asset(
    asset_id: uuid.UUID,
    data: AssetUpdate,
    session: SessionDep,
    scope: ScopeDep,
    links: PublicLinksDep,
) -> AssetOut:
    """Change an asset's title, tags (the list replaces the old one), alt text, usage rights
    or their expiry; a field left out is unchanged, null clears it (not the title or tags).
    The file itself never changes: upload the new one. Rights that now end before a
    scheduled post using the asset goes out put that post on hold (back to `approved` with
    the reason, `post.unscheduled`). Needs a contributor or manager role on the asset's
    district (the central team for a company-wide asset)."""
    return out(await publication.update_asset(session, scope, asset_id, data), links)


@router.get(
    "/assets/{asset_id}/content",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The file, as an attachment",
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        },
        304: {"description": "Unchanged: If-None-Match named the asset's ETag"},
        **problem_responses(AssetNotFound, AssetContentMissing, StorageUnavailable),
    },
)
async def download_asset(
    asset_id: uuid.UUID,
    request: Request,
    principal: PrincipalDep,
    storage: StorageDep,
    if_none_match: Annotated[str | None, Header(max_length=2000)] = None,
) -> Response:
    """The asset's bytes, streamed, as an attachment with its type and size. The ETag is the
    sha256 of the bytes, so `If-None-Match` with it answers 304 without a body."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    # Not ScopeDep: the request's session would hold a connection while the file streams.
    async with factory() as session:
        scope = await tree.scope_of(session, principal)
        asset = await assets.get(session, scope, asset_id)
    etag = f'"{asset.sha256}"'
    headers = {
        "ETag": etag,
        # Behind access control: a shared cache must not keep it; the browser revalidates.
        "Cache-Control": "private, no-cache",
    }
    if if_none_match is not None and _etag_matches(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    chunks = await assets.open_content(storage, asset)
    headers.update(
        {
            "Content-Length": str(asset.size_bytes),
            "Content-Disposition": _attachment(asset.filename, asset.id, asset.content_type),
            "X-Content-Type-Options": "nosniff",
        }
    )
    return StreamingResponse(chunks, media_type=asset.content_type, headers=headers)


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return "*" in candidates or etag in candidates


def _attachment(filename: str | None, asset_id: uuid.UUID, content_type: str) -> str:
    """Content-Disposition with an ASCII-only fallback name and the real name in RFC 6266's
    filename* (UTF-8), so neither quotes nor line breaks can escape the header."""
    name = filename or f"asset-{asset_id}.{_EXTENSION_OF.get(content_type, 'bin')}"
    fallback = _ASCII_SAFE.sub("_", name).strip("._") or f"asset-{asset_id}"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@router.delete(
    "/assets/{asset_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(AssetNotFound, Forbidden, AssetInUse, StorageUnavailable),
)
async def delete_asset(
    asset_id: uuid.UUID, session: SessionDep, scope: ScopeDep, storage: StorageDep
) -> Response:
    """Delete an asset (409 while posts use it). Its file leaves storage with the last asset
    holding the same bytes. Needs a contributor or manager role on the asset's district (the
    central team for a company-wide asset)."""
    await assets.delete(session, scope, storage, asset_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
