"""Import and export of accounts: `POST /accounts/import` (CSV) and `GET /accounts/export`.

The import manages its own session instead of the request's: with progress streamed, the
transaction must commit before the last line says it did, and roll back when the writing fails
after the response has started, neither of which a dependency that commits after the response
can do.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.districts import DistrictNotFound
from chassis.errors import Problem, problem_body, problem_responses
from chassis.guard import body_limit
from chassis.principal import PrincipalDep
from services.inventory.accounts.schemas import AccountFilters
from services.inventory.settings import InventorySettings
from services.inventory.transfer import csv_format
from services.inventory.transfer.csv_format import (
    ImportTooLarge,
    InvalidCsv,
    InvalidCsvHeader,
    NotCsv,
)
from services.inventory.transfer.schemas import ImportProgress, ImportResult
from services.inventory.transfer.service import (
    ImportConflict,
    ImportForbidden,
    ImportPlan,
    ImportRejected,
    transfer,
)

log = logging.getLogger("services.inventory.transfer")

router = APIRouter(tags=["import and export"])

NDJSON = "application/x-ndjson"
IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "description": "The CSV file: a header row, then one account per row (UTF-8).",
        "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post(
    "/accounts/import",
    response_model=ImportResult,
    responses={
        200: {
            "description": "The counts; with `Accept: application/x-ndjson`, progress lines "
            '({"phase": "validating"|"writing", "done", "total"}) then '
            '{"phase": "done", "result": ...} or {"phase": "failed", "problem": ...}.',
            "content": {NDJSON: {"schema": {"type": "string"}}},
        },
        **problem_responses(
            ImportForbidden,
            ImportRejected,
            InvalidCsv,
            InvalidCsvHeader,
            ImportTooLarge,
            NotCsv,
            ImportConflict,
        ),
    },
    openapi_extra=IMPORT_BODY,
)
@body_limit(lambda settings: settings.import_max_bytes)
async def import_accounts(
    request: Request,
    principal: PrincipalDep,
    dry_run: Annotated[bool, Query(description="Check every row, write nothing")] = False,
) -> Response:
    """Import accounts from CSV (columns: platform, handle, profile_url, display_name,
    district_id, status, owner_primary, owner_backup, purpose, language, country, tags, notes;
    lists separated by "|" or ";"). Rows are matched to existing accounts on platform and
    handle: new ones are registered, changed ones updated, the rest left alone, so the same file
    imported twice changes nothing. If any row is wrong, the 422 lists every error with its
    line and nothing is written. A caller without a manager role on any district is refused
    (403) before the file is read."""
    transfer.require_writer(principal)
    settings: InventorySettings = request.app.state.settings
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in csv_format.CSV_MEDIA_TYPES:
        raise NotCsv(f"Send the file as text/csv, not {media_type or 'no content type'}.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.import_max_bytes:
        raise csv_format.too_large_bytes(settings.import_max_bytes)
    with await csv_format.spool(request.stream(), max_bytes=settings.import_max_bytes) as upload:
        factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
        session = factory()
        try:
            plan = await transfer.plan(
                session, principal, upload, max_rows=settings.import_max_rows, lock=not dry_run
            )
        except BaseException:
            await session.close()
            raise
    if NDJSON in request.headers.get("accept", ""):
        return StreamingResponse(_progress(session, plan, dry_run), media_type=NDJSON)
    try:
        if not dry_run:
            async for _ in transfer.write(session, plan):
                pass
            await session.commit()
    finally:
        await session.close()  # rolls back what is not committed
    return JSONResponse(plan.result(dry_run=dry_run).model_dump())


async def _progress(session: AsyncSession, plan: ImportPlan, dry_run: bool) -> AsyncIterator[bytes]:
    """The import's progress as NDJSON; the last line says whether it committed."""
    try:
        yield _line(ImportProgress(phase="validating", done=plan.rows, total=plan.rows))
        try:
            if not dry_run:
                async for done in transfer.write(session, plan):
                    yield _line(ImportProgress(phase="writing", done=done, total=plan.to_write))
                await session.commit()
        except Problem as exc:
            await session.rollback()
            yield _line({"phase": "failed", "problem": exc.to_dict()})
            return
        except Exception:
            # The status line is long gone: the client learns of the failure from this line.
            log.exception("account import failed while writing; rolled back")
            await session.rollback()
            problem = problem_body(
                500,
                "internal-error",
                "Internal error",
                "The import failed while writing and was rolled back; nothing was imported.",
            )
            yield _line({"phase": "failed", "problem": problem})
            return
        yield _line({"phase": "done", "result": plan.result(dry_run=dry_run).model_dump()})
    finally:
        await session.close()


def _line(data: ImportProgress | dict[str, Any]) -> bytes:
    if isinstance(data, ImportProgress):
        data = data.model_dump()
    return json.dumps(data, separators=(",", ":")).encode() + b"\n"


@router.get(
    "/accounts/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "CSV in the import's columns, or a JSON array of accounts",
            "content": {"text/csv": {}, "application/json": {}},
        },
        **problem_responses(DistrictNotFound),
    },
)
async def export_accounts(
    request: Request,
    principal: PrincipalDep,
    *,
    format_: Annotated[Literal["csv", "json"], Query(alias="format")] = "csv",
    filters: Annotated[AccountFilters, Query()],
    escape_formulas: Annotated[
        bool,
        Query(
            description="CSV: write a cell that a spreadsheet would run as a formula (it starts"
            " with =, +, -, @, a tab or a carriage return) with a single quote in front. The"
            " import drops that quote, so the file reads back unchanged either way."
        ),
    ] = True,
) -> StreamingResponse:
    """Every account the caller can see that matches the filters (those of `GET /accounts`),
    streamed: CSV that the import reads back, or JSON (the accounts as `GET /accounts` shows
    them). Read a page at a time, each in its own short transaction: a slow download holds no
    database connection, and the file is not one snapshot (an account changed meanwhile
    appears as its page found it)."""
    body, media_type = await transfer.export(
        request.app.state.session_factory,
        principal,
        filters,
        format_=format_,
        escape_formulas=escape_formulas,
    )
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={"content-disposition": f'attachment; filename="accounts.{format_}"'},
    )
