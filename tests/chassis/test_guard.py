"""Refusals at the edge (chassis.guard): a repeated Content-Type or Content-Length (400), and a
limit on every body, of any type, refused with 413 while it streams in and before the caller's
principal is looked at; routes that take uploads declare a larger limit."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.calendar.factories import FR_WRITER
from tests.calendar.factories import seed_districts as seed_calendar_districts
from tests.conftest import Infrastructure, migrated_database
from tests.gateway.kit import raw_exchange, serve
from tests.inventory.factories import seed_districts as seed_inventory_districts
from tests.kit import as_user, build_app, running_service

pytestmark = pytest.mark.asyncio

MIB = 1024 * 1024
HQ_ADMIN = as_user("regina", hq="regional_manager")
REGION = b'{"id": "hq", "name": "Headquarters", "kind": "region"}'
CSV_HEADER = "platform,handle,display_name,district_id,status,owner_primary,owner_backup,tags"
NUL_DISTRICT = b'{"id": "nul", "name": "a\\u0000b", "kind": "region"}'


class Feed:
    """A request body sent chunk by chunk, counting what the server pulled."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total = total
        self.chunk = chunk
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            self.sent += self.chunk
            yield b"x" * self.chunk


def assert_problem(response: httpx.Response, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == f"https://chorus.dev/problems/{slug}"


class TestRepeatedHeaders:
    async def test_two_content_types_are_refused(self, infrastructure: Infrastructure) -> None:
        # The guard used to read the last one (text/plain: not scanned), FastAPI the first
        # (JSON: parsed), so the NUL reached PostgreSQL.
        async with running_service(infrastructure, "inventory") as inventory:
            headers = [
                *HQ_ADMIN.items(),
                ("content-type", "application/json"),
                ("content-type", "text/plain"),
            ]
            response = await inventory.client.post(
                "/districts", content=NUL_DISTRICT, headers=headers
            )
            assert_problem(response, 400, "repeated-header")
            assert await inventory.scalar("SELECT count(*) FROM districts") == 0
            swapped = [*HQ_ADMIN.items(), headers[-1], headers[-2]]
            response = await inventory.client.post("/districts", content=REGION, headers=swapped)
            assert_problem(response, 400, "repeated-header")
            single = await inventory.client.post(
                "/districts",
                content=REGION,
                headers={**HQ_ADMIN, "content-type": "application/json"},
            )
            assert single.status_code == 201, single.text

    async def test_two_content_lengths_are_refused(self, infrastructure: Infrastructure) -> None:
        async with running_service(infrastructure, "inventory") as inventory:
            length = str(len(REGION))
            headers = [
                *HQ_ADMIN.items(),
                ("content-type", "application/json"),
                ("content-length", length),
                ("content-length", length),
            ]
            response = await inventory.client.post("/districts", content=REGION, headers=headers)
            assert_problem(response, 400, "repeated-header")
            assert await inventory.scalar("SELECT count(*) FROM districts") == 0

    async def test_over_the_wire(self, infrastructure: Infrastructure) -> None:
        database_url = await migrated_database(infrastructure, "inventory")
        app = build_app("inventory", database_url, infrastructure, "web")
        principal = "".join(f"{k}: {v}\r\n" for k, v in HQ_ADMIN.items())

        def request(framing: str, body: bytes) -> bytes:
            head = f"POST /districts HTTP/1.1\r\nhost: inventory\r\n{principal}{framing}\r\n"
            return head.encode() + body

        async with serve(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
            types = (
                f"content-type: application/json\r\ncontent-type: text/plain\r\n"
                f"content-length: {len(NUL_DISTRICT)}\r\n"
            )
            status, headers, body = await raw_exchange(base_url, request(types, NUL_DISTRICT))
            assert status == 400, body
            assert headers["content-type"] == "application/problem+json"
            assert json.loads(body)["type"].endswith("/repeated-header")
            # uvicorn's parser refuses this one itself, before the app; a 400 either way.
            length = f"content-length: {len(REGION)}\r\n"
            lengths = "content-type: application/json\r\n" + length + length
            status, _headers, body = await raw_exchange(base_url, request(lengths, REGION))
            assert status == 400, body
            listed = await client.get("/districts", headers=HQ_ADMIN)
            assert listed.status_code == 200, listed.text
            assert listed.json()["items"] == []


class TestBodyLimits:
    async def test_an_anonymous_body_of_any_type_is_cut_off_as_it_streams(
        self, infrastructure: Infrastructure
    ) -> None:
        # The public review route: no principal at all. A text/plain body used to be read whole.
        async with running_service(infrastructure, "approvals") as approvals:
            feed = Feed(30 * MIB)
            response = await approvals.client.post(
                "/public/reviews/some-token/decision",
                content=feed,
                headers={"content-type": "text/plain"},
            )
            assert_problem(response, 413, "payload-too-large")
            assert feed.sent <= MIB + 2 * feed.chunk

    async def test_a_declared_length_over_the_limit_is_refused_before_reading(
        self, infrastructure: Infrastructure
    ) -> None:
        async with running_service(infrastructure, "approvals") as approvals:
            feed = Feed(30 * MIB)
            response = await approvals.client.post(
                "/public/reviews/some-token/decision",
                content=feed,
                headers={
                    "content-type": "application/octet-stream",
                    "content-length": str(30 * MIB),
                },
            )
            assert_problem(response, 413, "payload-too-large")
            assert feed.sent == 0

    async def test_the_limit_comes_before_the_principal(
        self, infrastructure: Infrastructure
    ) -> None:
        async with running_service(infrastructure, "inventory") as inventory:
            feed = Feed(30 * MIB)
            response = await inventory.client.post(
                "/districts", content=feed, headers={"content-type": "text/plain"}
            )
            assert_problem(response, 413, "payload-too-large")
            assert feed.sent <= MIB + 2 * feed.chunk

    async def test_a_body_within_the_limit_passes(self, infrastructure: Infrastructure) -> None:
        async with running_service(infrastructure, "inventory") as inventory:
            # Not JSON, so not a district: the handler's own answer, not the guard's.
            response = await inventory.client.post(
                "/districts",
                content=b"x" * (MIB - 10),
                headers={**HQ_ADMIN, "content-type": "text/plain"},
            )
            assert response.status_code == 422, response.text
            assert response.json()["type"].endswith("/validation-error")

    async def test_an_upload_route_declares_a_larger_limit(
        self, infrastructure: Infrastructure, tmp_path: Path
    ) -> None:
        async with running_service(
            infrastructure, "calendar", asset_dir=tmp_path / "assets", asset_max_bytes=4 * MIB
        ) as calendar:
            await seed_calendar_districts(calendar)
            image = b"\x89PNG\r\n\x1a\n" + os.urandom(2 * MIB)
            uploaded = await calendar.client.post(
                "/assets",
                files={"file": ("big.png", image, "image/png")},
                data={"district_id": "fr"},
                headers=FR_WRITER,
            )
            assert uploaded.status_code == 201, uploaded.text
            assert uploaded.json()["size_bytes"] == len(image)
            # The same bytes on a route that declares nothing: the service's 1 MiB.
            elsewhere = await calendar.client.post(
                "/campaigns", content=image, headers={**FR_WRITER, "content-type": "image/png"}
            )
            assert_problem(elsewhere, 413, "payload-too-large")

    async def test_the_csv_import_declares_a_larger_limit(
        self, infrastructure: Infrastructure
    ) -> None:
        async with running_service(infrastructure, "inventory") as inventory:
            await seed_inventory_districts(inventory)
            name = "n" * 100
            rows = [f"x,handle{i},{name},fr,,,," for i in range(10_000)]
            csv = "\r\n".join([CSV_HEADER, *rows, ""]).encode()
            assert len(csv) > MIB
            response = await inventory.client.post(
                "/accounts/import",
                params={"dry_run": "true"},
                content=csv,
                headers={**HQ_ADMIN, "content-type": "text/csv"},
            )
            assert response.status_code == 200, response.text[:500]
            assert response.json()["rows"] == 10_000
