"""The asset library: streamed upload with a size limit, the type read from the bytes, sha256
de-duplication, search, download, editing, deletion, district-scoped access, the functions
posts call, and both storages (a local folder, and S3 against a local S3-compatible server)."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiobotocore.session import get_session
from pydantic import ValidationError
from sqlalchemy import select, text

from chassis.errors import TYPE_BASE
from chassis.principal import Principal
from services.calendar.access import tree
from services.calendar.assets import service as asset_service
from services.calendar.assets.service import AssetsNotAttachable
from services.calendar.assets.storage import S3Storage, StoredObjectMissing, content_key
from services.calendar.models import Calendar, Post, PostAsset
from services.calendar.settings import CalendarSettings
from tests.calendar.factories import (
    CENTRAL,
    DE_MANAGER,
    FR_MANAGER,
    FR_VIEWER,
    FR_WRITER,
    PARIS_WRITER,
    PNG_MAGIC,
    PUBLIC_BASE,
    mp4,
    on_service,
    pdf,
    png,
    seed_districts,
    upload,
    uploaded,
)
from tests.conftest import INTERNAL_KEY, Infrastructure
from tests.kit import RunningService, running_service

pytestmark = pytest.mark.asyncio

MAX_BYTES = 64 * 1024
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest_asyncio.fixture
async def library(infrastructure: Infrastructure, tmp_path: Path) -> AsyncIterator[RunningService]:
    """The calendar service with its assets in a folder of the test and a 64 KiB limit."""
    async with running_service(
        infrastructure, "calendar", asset_dir=tmp_path / "assets", asset_max_bytes=MAX_BYTES
    ) as service:
        await seed_districts(service)
        yield service


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "sha256").rglob("*") if p.is_file())


def storage_root(service: RunningService) -> Path:
    root: Path = service.app.state.settings.asset_dir
    return root


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == TYPE_BASE + slug, body
    return body


BOUNDARY = "chorus-test-boundary"


def multipart_head(filename: str = "big.png", content_type: str = "image/png") -> bytes:
    return (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="district_id"\r\n\r\nfr\r\n'
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()


class Feed:
    """A request body sent chunk by chunk, counting what the server pulled."""

    def __init__(
        self,
        total: int,
        *,
        chunk: int = 16 * 1024,
        filename: str = "big.png",
        content_type: str = "image/png",
    ) -> None:
        self.total = total
        self.chunk = chunk
        self.head = multipart_head(filename, content_type)
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.sent += len(self.head)
        yield self.head + PNG_MAGIC
        while self.sent < self.total:
            self.sent += self.chunk
            yield os.urandom(self.chunk)
        yield f"\r\n--{BOUNDARY}--\r\n".encode()


MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


class TestUploadAndDownload:
    async def test_round_trip(self, library: RunningService) -> None:
        content = png(5000)
        rights_end = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
        response = await upload(
            library,
            content,
            title="Summer logo",
            tags=["Logo, Summer", "logo"],
            alt_text="The summer logo on white",
            usage_rights="Ours, all channels",
            rights_expire_at=rights_end.isoformat(),
        )
        assert response.status_code == 201, response.text
        asset = response.json()
        sha = hashlib.sha256(content).hexdigest()
        assert asset["district_id"] == "fr"
        assert asset["title"] == "Summer logo"
        assert asset["filename"] == "logo.png"
        assert asset["content_type"] == "image/png"
        assert asset["size_bytes"] == 5000
        assert asset["sha256"] == sha
        assert asset["tags"] == ["logo", "summer"]
        assert asset["alt_text"] == "The summer logo on white"
        assert datetime.fromisoformat(asset["rights_expire_at"]) == rights_end
        assert asset["rights_expired"] is False
        assert asset["duplicate"] is False
        assert asset["created_by"] == "fanny"
        assert asset["content_url"] == f"{PUBLIC_BASE}/assets/{asset['id']}/content"
        assert response.headers["location"] == f"{PUBLIC_BASE}/assets/{asset['id']}"
        assert stored_files(storage_root(library)) == [storage_root(library) / content_key(sha)]
        assert (storage_root(library) / content_key(sha)).read_bytes() == content
        # Nothing is left behind in the spool.
        assert list((storage_root(library) / ".incoming").iterdir()) == []

        shown = await library.client.get(f"/assets/{asset['id']}", headers=FR_VIEWER)
        assert shown.status_code == 200
        assert shown.json() == {k: v for k, v in asset.items() if k != "duplicate"}

        download = await library.client.get(on_service(asset["content_url"]), headers=FR_VIEWER)
        assert download.status_code == 200
        assert download.content == content
        assert download.headers["content-type"] == "image/png"
        assert download.headers["content-length"] == "5000"
        assert download.headers["etag"] == f'"{sha}"'
        assert download.headers["content-disposition"] == (
            "attachment; filename=\"logo.png\"; filename*=UTF-8''logo.png"
        )
        assert download.headers["x-content-type-options"] == "nosniff"

        again = await library.client.get(
            on_service(asset["content_url"]),
            headers={**FR_VIEWER, "If-None-Match": f'W/"x", "{sha}"'},
        )
        assert again.status_code == 304
        assert again.content == b""
        changed = await library.client.get(
            on_service(asset["content_url"]), headers={**FR_VIEWER, "If-None-Match": '"other"'}
        )
        assert changed.status_code == 200
        assert changed.content == content

    async def test_other_formats_and_defaults(self, library: RunningService) -> None:
        video = await uploaded(library, mp4(), filename="clip.mp4", content_type="video/mp4")
        assert video["content_type"] == "video/mp4"
        # No title: the file name; a browser's "no idea" type is no claim.
        doc = await uploaded(
            library, pdf(), filename="brief.pdf", content_type="application/octet-stream"
        )
        assert doc["content_type"] == "application/pdf"
        assert doc["title"] == "brief.pdf"
        assert doc["tags"] == []
        assert doc["rights_expire_at"] is None
        assert doc["rights_expired"] is False

    async def test_download_name_is_made_safe(self, library: RunningService) -> None:
        asset = await uploaded(library, png(), filename='C:\\Users\\me\\Été "final"\r\n.png')
        assert asset["filename"] == 'Été "final".png'
        download = await library.client.get(on_service(asset["content_url"]), headers=FR_WRITER)
        disposition = download.headers["content-disposition"]
        assert disposition == (
            'attachment; filename="t_final_.png"; '
            "filename*=UTF-8''%C3%89t%C3%A9%20%22final%22.png"
        )

    async def test_missing_content_is_a_problem_and_reupload_heals(
        self, library: RunningService
    ) -> None:
        content = png()
        asset = await uploaded(library, content)
        (storage_root(library) / content_key(asset["sha256"])).unlink()
        missing = await library.client.get(on_service(asset["content_url"]), headers=FR_WRITER)
        assert_problem(missing, 404, "asset-content-missing")
        again = await upload(library, content)
        assert again.status_code == 200
        assert again.json()["id"] == asset["id"]
        healed = await library.client.get(on_service(asset["content_url"]), headers=FR_WRITER)
        assert healed.content == content


class TestDeduplication:
    async def test_same_bytes_same_district_is_the_same_asset(
        self, library: RunningService
    ) -> None:
        content = png()
        first = await uploaded(library, content, title="First")
        second = await upload(library, content, title="Second", filename="copy.png")
        assert second.status_code == 200
        body = second.json()
        assert body["duplicate"] is True
        assert body["id"] == first["id"]
        assert body["title"] == "First"
        assert await library.scalar("SELECT count(*) FROM assets") == 1
        # The central team's company-wide library is a library of its own.
        central = await upload(library, content, headers=CENTRAL, district_id=None)
        assert central.status_code == 201
        assert central.json()["district_id"] is None
        again = await upload(library, content, headers=CENTRAL, district_id=None)
        assert again.status_code == 200
        assert again.json()["id"] == central.json()["id"]

    async def test_same_bytes_in_two_districts_are_stored_once(
        self, library: RunningService
    ) -> None:
        content = png()
        fr = await uploaded(library, content)
        de = await uploaded(library, content, headers=DE_MANAGER, district_id="de")
        assert de["id"] != fr["id"]
        assert de["district_id"] == "de"
        assert de["duplicate"] is False
        assert await library.scalar("SELECT count(*) FROM assets") == 2
        assert await library.scalar("SELECT count(DISTINCT storage_key) FROM assets") == 1
        assert len(stored_files(storage_root(library))) == 1


class TestLimits:
    async def test_declared_length_over_the_limit_is_refused_before_reading(
        self, library: RunningService
    ) -> None:
        feed = Feed(total=10 * MAX_BYTES)
        response = await library.client.post(
            "/assets",
            content=feed,
            headers={**FR_WRITER, **MULTIPART, "Content-Length": str(20 * MAX_BYTES)},
        )
        body = assert_problem(response, 413, "asset-too-large")
        assert body["max_bytes"] == MAX_BYTES
        assert feed.sent == 0

    async def test_chunked_body_is_cut_off_at_the_limit(self, library: RunningService) -> None:
        feed = Feed(total=100 * MAX_BYTES)
        response = await library.client.post(
            "/assets", content=feed, headers={**FR_WRITER, **MULTIPART}
        )
        assert_problem(response, 413, "asset-too-large")
        # Refused as the limit passed, not after the 6.4 MB.
        assert feed.sent < MAX_BYTES + 4 * feed.chunk
        assert await library.scalar("SELECT count(*) FROM assets") == 0
        assert not (storage_root(library) / "sha256").exists()
        assert list((storage_root(library) / ".incoming").iterdir()) == []

    async def test_a_file_at_the_limit_is_taken(self, library: RunningService) -> None:
        asset = await uploaded(library, png(MAX_BYTES))
        assert asset["size_bytes"] == MAX_BYTES
        over = await upload(library, png(MAX_BYTES + 1))
        assert_problem(over, 413, "asset-too-large")

    async def test_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("CHORUS_STATE_DIR", raising=False)
        settings = CalendarSettings(internal_key=INTERNAL_KEY)
        assert settings.asset_max_bytes == 25 * 1024 * 1024
        assert settings.asset_storage == "local"
        assert settings.asset_dir == Path(".chorus") / "calendar" / "assets"
        monkeypatch.setenv("CHORUS_STATE_DIR", "/var/lib/chorus")
        settings = CalendarSettings(internal_key=INTERNAL_KEY)
        assert settings.asset_dir == Path("/var/lib/chorus/calendar/assets")


class TestContentType:
    @pytest.mark.parametrize(
        ("content", "filename", "declared"),
        [
            (pdf(), "logo.png", "image/png"),  # a PDF named and labelled as PNG
            (b"just some text, not an image\n" * 10, "logo.png", "image/png"),
            (png(), "logo.png", "image/jpeg"),  # a PNG labelled JPEG
            (png(), "report.pdf", "application/octet-stream"),  # the name lies
        ],
    )
    async def test_mislabelled_files_are_refused(
        self, library: RunningService, content: bytes, filename: str, declared: str
    ) -> None:
        response = await upload(library, content, filename=filename, content_type=declared)
        assert_problem(response, 415, "mislabelled-asset")
        assert await library.scalar("SELECT count(*) FROM assets") == 0

    @pytest.mark.parametrize(
        ("content", "filename", "declared"),
        [
            (b"hello\n", "notes.txt", "text/plain"),
            (b"MZ\x90\x00" + os.urandom(100), "setup.exe", "application/octet-stream"),
            (b"PK\x03\x04" + os.urandom(100), "archive.zip", "application/zip"),
        ],
    )
    async def test_unknown_types_are_refused(
        self, library: RunningService, content: bytes, filename: str, declared: str
    ) -> None:
        response = await upload(library, content, filename=filename, content_type=declared)
        body = assert_problem(response, 415, "unsupported-asset-type")
        assert "image/png" in body["accepted"]

    @pytest.mark.parametrize(
        ("filename", "declared"),
        [("logo.svg", "image/svg+xml"), ("logo.png", "image/png"), ("logo", "")],
    )
    async def test_svg_is_refused(
        self, library: RunningService, filename: str, declared: str
    ) -> None:
        response = await upload(library, SVG, filename=filename, content_type=declared)
        assert_problem(response, 415, "svg-refused")

    async def test_svg_by_name_or_label_is_refused_whatever_the_bytes(
        self, library: RunningService
    ) -> None:
        response = await upload(library, png(), filename="logo.svg", content_type="image/png")
        assert_problem(response, 415, "svg-refused")

    async def test_a_large_mislabelled_file_is_refused_from_its_first_bytes(
        self, infrastructure: Infrastructure, tmp_path: Path
    ) -> None:
        async with running_service(
            infrastructure, "calendar", asset_dir=tmp_path, asset_max_bytes=1024 * 1024
        ) as service:
            await seed_districts(service)
            feed = Feed(total=900 * 1024, filename="doc.pdf", content_type="application/pdf")
            response = await service.client.post(
                "/assets", content=feed, headers={**FR_WRITER, **MULTIPART}
            )
            assert_problem(response, 415, "mislabelled-asset")
            assert feed.sent < 64 * 1024


class TestMalformedUploads:
    async def test_not_multipart(self, library: RunningService) -> None:
        response = await library.client.post("/assets", json={"title": "x"}, headers=FR_WRITER)
        assert_problem(response, 415, "upload-not-multipart")

    async def test_no_file(self, library: RunningService) -> None:
        response = await library.client.post(
            "/assets",
            files={"other": ("x.png", png(), "image/png")},
            headers=FR_WRITER,
        )
        assert_problem(response, 400, "invalid-upload")
        fields_only = (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="title"\r\n\r\nNo file\r\n'
            f"--{BOUNDARY}--\r\n"
        ).encode()
        response = await library.client.post(
            "/assets", content=fields_only, headers={**FR_WRITER, **MULTIPART}
        )
        body = assert_problem(response, 400, "invalid-upload")
        assert "no 'file' part" in body["detail"]

    async def test_two_files(self, library: RunningService) -> None:
        response = await library.client.post(
            "/assets",
            files=[
                ("file", ("a.png", png(), "image/png")),
                ("file", ("b.png", png(), "image/png")),
            ],
            data={"district_id": "fr"},
            headers=FR_WRITER,
        )
        body = assert_problem(response, 400, "invalid-upload")
        assert "one file" in body["detail"]

    async def test_empty_file(self, library: RunningService) -> None:
        response = await upload(library, b"")
        body = assert_problem(response, 400, "invalid-upload")
        assert "empty" in body["detail"]

    async def test_truncated_body(self, library: RunningService) -> None:
        body = multipart_head() + png()
        response = await library.client.post(
            "/assets", content=body, headers={**FR_WRITER, **MULTIPART}
        )
        assert_problem(response, 400, "invalid-upload")

    async def test_invalid_metadata_is_a_validation_problem(self, library: RunningService) -> None:
        response = await upload(
            library,
            png(),
            rights_expire_at="2030-01-01T00:00:00",
            tags=[f"t{i}" for i in range(21)],
            colour="red",
        )
        body = assert_problem(response, 422, "validation-error")
        locations = {tuple(error["loc"]) for error in body["errors"]}
        assert locations == {
            ("body", "rights_expire_at"),
            ("body", "tags"),
            ("body", "colour"),
        }
        assert await library.scalar("SELECT count(*) FROM assets") == 0
        assert not (storage_root(library) / "sha256").exists()

    async def test_oversized_form_field(self, library: RunningService) -> None:
        response = await upload(library, png(), alt_text="x" * 10_000)
        assert_problem(response, 413, "asset-too-large")


async def seed_library(service: RunningService) -> dict[str, dict[str, Any]]:
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    future = (datetime.now(UTC) + timedelta(days=100)).isoformat()
    made = {
        "summer": await uploaded(
            service, png(), title="Summer Logo", tags="logo,summer", rights_expire_at=future
        ),
        "poster": await uploaded(
            service,
            pdf(),
            headers=PARIS_WRITER,
            district_id="fr-paris",
            filename="affiche_paris.pdf",
            content_type="application/pdf",
            title="Poster",
            tags="poster",
        ),
        "de": await uploaded(
            service, png(), headers=DE_MANAGER, district_id="de", title="Logo DE", tags="logo"
        ),
        "brand": await uploaded(
            service,
            png(),
            headers=CENTRAL,
            district_id=None,
            title="Brand LOGO 100%",
            tags="logo",
            rights_expire_at=past,
        ),
        "clip": await uploaded(
            service, mp4(), filename="teaser.mp4", content_type="video/mp4", title="Teaser"
        ),
    }
    return made


class TestSearch:
    async def search(self, service: RunningService, headers: dict[str, str], **params: Any) -> Any:
        response = await service.client.get("/assets", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    async def titles(
        self, service: RunningService, headers: dict[str, str] = FR_MANAGER, **params: Any
    ) -> set[str]:
        body = await self.search(service, headers, **params)
        assert body["next_cursor"] is None
        return {item["title"] for item in body["items"]}

    async def test_filters(self, library: RunningService) -> None:
        await seed_library(library)
        everything = {"Summer Logo", "Poster", "Brand LOGO 100%", "Teaser"}
        assert await self.titles(library) == everything
        assert await self.titles(library, DE_MANAGER) == {"Logo DE", "Brand LOGO 100%"}
        assert await self.titles(library, q="LOGO") == {"Summer Logo", "Brand LOGO 100%"}
        assert await self.titles(library, q="affiche") == {"Poster"}  # the file name
        assert await self.titles(library, q="100%") == {"Brand LOGO 100%"}
        assert await self.titles(library, q="0%") == {"Brand LOGO 100%"}
        assert await self.titles(library, q="_") == {"Poster"}
        assert await self.titles(library, tags=["logo"]) == {"Summer Logo", "Brand LOGO 100%"}
        assert await self.titles(library, tags=["logo", "Summer"]) == {"Summer Logo"}
        assert await self.titles(library, tags="summer,logo") == {"Summer Logo"}
        assert await self.titles(library, tags=["logo", "poster"]) == set()
        assert await self.titles(library, district_id="fr") == {"Summer Logo", "Poster", "Teaser"}
        assert await self.titles(library, district_id="fr-paris") == {"Poster"}
        assert await self.titles(library, usable_by="fr") == {
            "Summer Logo",
            "Brand LOGO 100%",
            "Teaser",
        }
        assert await self.titles(library, usable_by="fr-paris") == everything
        assert await self.titles(library, content_type="image/") == {
            "Summer Logo",
            "Brand LOGO 100%",
        }
        assert await self.titles(library, content_type="video") == {"Teaser"}
        assert await self.titles(library, content_type="application/pdf") == {"Poster"}
        assert await self.titles(library, rights="expired") == {"Brand LOGO 100%"}
        assert await self.titles(library, rights="valid") == everything - {"Brand LOGO 100%"}
        assert await self.titles(library, q="logo", rights="valid", tags="summer") == {
            "Summer Logo"
        }
        body = await self.search(library, FR_MANAGER, rights="expired")
        assert body["items"][0]["rights_expired"] is True

    async def test_another_districts_filter_is_404(self, library: RunningService) -> None:
        response = await library.client.get(
            "/assets", params={"district_id": "de"}, headers=FR_MANAGER
        )
        assert_problem(response, 404, "district-not-found")

    async def test_invalid_parameters(self, library: RunningService) -> None:
        for params in (
            {"rights": "forever"},
            {"content_type": "image/png; charset=x"},
            {"district_id": "FR!"},
        ):
            response = await library.client.get("/assets", params=params, headers=FR_MANAGER)
            assert_problem(response, 422, "validation-error")
        bad_cursor = await library.client.get(
            "/assets", params={"cursor": "bm90IGEgY3Vyc29y"}, headers=FR_MANAGER
        )
        assert_problem(bad_cursor, 400, "invalid-cursor")

    async def test_pagination(self, library: RunningService) -> None:
        made = [await uploaded(library, png(), title=f"Asset {i}") for i in range(5)]
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            body = await self.search(library, FR_WRITER, **params)
            pages += 1
            assert len(body["items"]) <= 2
            seen.extend(item["id"] for item in body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert pages == 3
        # Newest first, each once.
        assert seen == [asset["id"] for asset in reversed(made)]


class TestAccess:
    async def test_another_districts_asset_is_404(self, library: RunningService) -> None:
        de = await uploaded(library, png(), headers=DE_MANAGER, district_id="de")
        for method, url in (
            ("GET", f"/assets/{de['id']}"),
            ("GET", f"/assets/{de['id']}/content"),
            ("PATCH", f"/assets/{de['id']}"),
            ("DELETE", f"/assets/{de['id']}"),
        ):
            kwargs: dict[str, Any] = {"json": {"title": "Mine"}} if method == "PATCH" else {}
            response = await library.client.request(method, url, headers=FR_MANAGER, **kwargs)
            assert_problem(response, 404, "asset-not-found")
        # A team below a district uses the district's library, but cannot change it.
        fr = await uploaded(library, png())
        response = await library.client.get(f"/assets/{fr['id']}", headers=PARIS_WRITER)
        assert response.status_code == 200, response.text
        response = await library.client.patch(
            f"/assets/{fr['id']}", json={"title": "Mine"}, headers=PARIS_WRITER
        )
        assert response.status_code == 403, response.text
        unknown = await library.client.get(f"/assets/{uuid.uuid4()}", headers=FR_MANAGER)
        assert_problem(unknown, 404, "asset-not-found")
        still = await library.client.get(f"/assets/{de['id']}", headers=DE_MANAGER)
        assert still.status_code == 200

    async def test_uploading_to_another_district_is_404(self, library: RunningService) -> None:
        response = await upload(library, png(), district_id="de")
        assert_problem(response, 404, "district-not-found")
        response = await upload(library, png(), headers=PARIS_WRITER, district_id="fr")
        assert_problem(response, 404, "district-not-found")
        assert await library.scalar("SELECT count(*) FROM assets") == 0

    async def test_viewer_reads_but_does_not_write(self, library: RunningService) -> None:
        asset = await uploaded(library, png())
        assert (await library.client.get(f"/assets/{asset['id']}", headers=FR_VIEWER)).is_success
        download = await library.client.get(on_service(asset["content_url"]), headers=FR_VIEWER)
        assert download.status_code == 200
        patch = await library.client.patch(
            f"/assets/{asset['id']}", json={"title": "Mine"}, headers=FR_VIEWER
        )
        assert_problem(patch, 403, "forbidden")
        delete = await library.client.delete(f"/assets/{asset['id']}", headers=FR_VIEWER)
        assert_problem(delete, 403, "forbidden")
        # Refused before the body is read: the viewer has no writing role anywhere.
        feed = Feed(total=4 * MAX_BYTES)
        response = await library.client.post(
            "/assets", content=feed, headers={**FR_VIEWER, **MULTIPART}
        )
        assert_problem(response, 403, "forbidden")
        assert feed.sent == 0
        assert await library.scalar("SELECT title FROM assets") == asset["title"]

    async def test_contributor_and_manager_write_in_their_district(
        self, library: RunningService
    ) -> None:
        paris = await uploaded(library, png(), headers=PARIS_WRITER, district_id="fr-paris")
        # The district's manager and contributors cover the teams below it.
        for headers in (FR_MANAGER, FR_WRITER):
            response = await library.client.patch(
                f"/assets/{paris['id']}", json={"title": "Paris logo"}, headers=headers
            )
            assert response.status_code == 200, response.text
        manager = await uploaded(library, png(), headers=FR_MANAGER)
        assert manager["created_by"] == "francois"

    async def test_company_wide_assets_are_the_central_teams(self, library: RunningService) -> None:
        response = await upload(library, png(), headers=FR_MANAGER, district_id=None)
        assert_problem(response, 403, "forbidden")
        response = await upload(library, png(), headers=FR_MANAGER, district_id="")
        assert_problem(response, 403, "forbidden")
        company = await uploaded(library, png(), headers=CENTRAL, district_id=None)
        assert company["district_id"] is None
        # Everyone reads it; only the central team changes it.
        for headers in (FR_VIEWER, DE_MANAGER, PARIS_WRITER):
            shown = await library.client.get(f"/assets/{company['id']}", headers=headers)
            assert shown.status_code == 200
        patch = await library.client.patch(
            f"/assets/{company['id']}", json={"title": "Mine"}, headers=FR_MANAGER
        )
        assert_problem(patch, 403, "forbidden")
        patch = await library.client.patch(
            f"/assets/{company['id']}", json={"title": "Brand"}, headers=CENTRAL
        )
        assert patch.status_code == 200


class TestUpdate:
    async def test_patch(self, library: RunningService) -> None:
        asset = await uploaded(library, png(), alt_text="Old", usage_rights="Ours", tags="a,b")
        past = datetime.now(UTC) - timedelta(hours=1)
        response = await library.client.patch(
            f"/assets/{asset['id']}",
            json={
                "title": " New title ",
                "tags": ["C", "d", "c"],
                "alt_text": None,
                "rights_expire_at": past.isoformat(),
            },
            headers=FR_WRITER,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["title"] == "New title"
        assert body["tags"] == ["c", "d"]
        assert body["alt_text"] is None
        assert body["usage_rights"] == "Ours"
        assert body["rights_expired"] is True
        assert body["updated_at"] > asset["updated_at"]
        assert body["sha256"] == asset["sha256"]
        stored = await library.scalar(
            "SELECT alt_text IS NULL AND tags = '{c,d}' FROM assets WHERE id = :id",
            id=uuid.UUID(asset["id"]),
        )
        assert stored is True

    @pytest.mark.parametrize(
        "payload",
        [
            {"title": None},
            {"title": ""},
            {"tags": None},
            {"rights_expire_at": "2030-01-01T00:00:00"},
            {"tags": ["has space"]},
            {"district_id": "de"},
            {"title": "bell\x07"},
        ],
    )
    async def test_invalid_patches(self, library: RunningService, payload: dict[str, Any]) -> None:
        asset = await uploaded(library, png())
        response = await library.client.patch(
            f"/assets/{asset['id']}", json=payload, headers=FR_WRITER
        )
        assert_problem(response, 422, "validation-error")


async def make_post(service: RunningService, district_id: str, asset_ids: list[str]) -> uuid.UUID:
    post_id = uuid.uuid4()
    async with service.sessions.begin() as session:
        calendar_id = await session.scalar(
            select(Calendar.id).where(Calendar.district_id == district_id)
        )
        if calendar_id is None:
            calendar_id = uuid.uuid4()
            session.add(Calendar(id=calendar_id, district_id=district_id, name=district_id))
            await session.flush()
        session.add(
            Post(
                id=post_id,
                calendar_id=calendar_id,
                district_id=district_id,
                title="A post",
                author="fanny",
                content_hash="0" * 64,
            )
        )
        await session.flush()
        for asset_id in asset_ids:
            session.add(PostAsset(post_id=post_id, asset_id=uuid.UUID(asset_id)))
    return post_id


class TestDelete:
    async def test_delete_removes_row_and_file(self, library: RunningService) -> None:
        asset = await uploaded(library, png())
        response = await library.client.delete(f"/assets/{asset['id']}", headers=FR_WRITER)
        assert response.status_code == 204
        assert await library.scalar("SELECT count(*) FROM assets") == 0
        assert stored_files(storage_root(library)) == []
        gone = await library.client.get(f"/assets/{asset['id']}", headers=FR_WRITER)
        assert_problem(gone, 404, "asset-not-found")

    async def test_shared_bytes_stay_until_the_last_asset_goes(
        self, library: RunningService
    ) -> None:
        content = png()
        fr = await uploaded(library, content)
        de = await uploaded(library, content, headers=DE_MANAGER, district_id="de")
        assert (
            await library.client.delete(f"/assets/{fr['id']}", headers=FR_WRITER)
        ).status_code == 204
        assert len(stored_files(storage_root(library))) == 1
        download = await library.client.get(on_service(de["content_url"]), headers=DE_MANAGER)
        assert download.content == content
        assert (
            await library.client.delete(f"/assets/{de['id']}", headers=DE_MANAGER)
        ).status_code == 204
        assert stored_files(storage_root(library)) == []

    async def test_an_asset_in_use_is_kept(self, library: RunningService) -> None:
        asset = await uploaded(library, png())
        await make_post(library, "fr", [asset["id"]])
        response = await library.client.delete(f"/assets/{asset['id']}", headers=FR_MANAGER)
        body = assert_problem(response, 409, "asset-in-use")
        assert body["posts"] == 1
        assert await library.scalar("SELECT count(*) FROM assets") == 1
        assert len(stored_files(storage_root(library))) == 1


def principal(user: str, **grants: str) -> Principal:
    return Principal(
        sub=user,
        grants={district: frozenset({role}) for district, role in grants.items()},
        exp=int(time.time()) + 3600,
    )


class TestFunctionsForPosts:
    async def test_attachable(self, library: RunningService) -> None:
        made = await seed_library(library)
        summer, poster, de, brand = (
            uuid.UUID(made[name]["id"]) for name in ("summer", "poster", "de", "brand")
        )
        stranger = uuid.uuid4()
        async with library.sessions() as session:
            scope = await tree.scope_of(session, principal("fanny", fr="contributor"))
            found = await asset_service.attachable(
                session, scope, "hq.fr.fr-paris", [poster, summer, brand, summer]
            )
            assert list(found) == [poster, summer, brand]
            assert found[poster].title == "Poster"
            assert await asset_service.attachable(session, scope, "hq.fr", []) == {}
            # The company-wide calendar uses company-wide assets only.
            assert list(await asset_service.attachable(session, scope, None, [brand])) == [brand]

            with pytest.raises(AssetsNotAttachable) as refused:
                await asset_service.attachable(
                    session, scope, "hq.fr", [summer, poster, de, stranger]
                )
            assert refused.value.status == 422
            assert refused.value.extensions["refused"] == [
                {"asset_id": str(poster), "reason": "other_district"},
                {"asset_id": str(de), "reason": "unknown"},
                {"asset_id": str(stranger), "reason": "unknown"},
            ]
            with pytest.raises(AssetsNotAttachable) as refused:
                await asset_service.attachable(session, scope, None, [summer])
            assert refused.value.extensions["refused"] == [
                {"asset_id": str(summer), "reason": "other_district"}
            ]

    async def test_expired_assets(self, library: RunningService) -> None:
        made = await seed_library(library)
        expired, valid, clip = (made[name]["id"] for name in ("brand", "summer", "clip"))
        both = await make_post(library, "fr", [expired, valid])
        fresh = await make_post(library, "fr", [valid, clip])
        bare = await make_post(library, "fr", [])
        async with library.sessions() as session:
            result = await asset_service.expired_assets(session, [both, fresh, bare])
            assert result == {both: [uuid.UUID(expired)], fresh: [], bare: []}
            assert await asset_service.expired_assets(session, []) == {}
        # Rights that run out later flag the post from then on.
        async with library.sessions.begin() as session:
            await session.execute(
                text(
                    "UPDATE assets SET rights_expire_at = now() - interval '1 second' "
                    "WHERE id = :id"
                ),
                {"id": uuid.UUID(clip)},
            )
        async with library.sessions() as session:
            result = await asset_service.expired_assets(session, [fresh])
        assert result == {fresh: [uuid.UUID(clip)]}

    async def test_content_path(self) -> None:
        asset_id = uuid.uuid4()
        assert asset_service.content_path(asset_id) == f"/assets/{asset_id}/content"


class TestSettings:
    async def test_s3_needs_a_bucket_and_both_keys(self) -> None:
        with pytest.raises(ValidationError, match="asset_s3_bucket"):
            CalendarSettings(internal_key=INTERNAL_KEY, asset_storage="s3")
        with pytest.raises(ValidationError, match="both"):
            CalendarSettings(
                internal_key=INTERNAL_KEY,
                asset_storage="s3",
                asset_s3_bucket="chorus-assets",
                asset_s3_access_key_id="key",
            )
        with pytest.raises(ValidationError):
            CalendarSettings(internal_key=INTERNAL_KEY, asset_max_bytes=0)
        settings = CalendarSettings(
            internal_key=INTERNAL_KEY,
            asset_storage="s3",
            asset_s3_bucket="chorus-assets",
            asset_s3_access_key_id="AKIAEXAMPLE",
            asset_s3_secret_access_key="wJalrXUtnFEMI",
        )
        assert "AKIAEXAMPLE" not in repr(settings)
        assert "wJalrXUtnFEMI" not in repr(settings)


# S3: a real S3-compatible HTTP server on loopback (moto's), on a free port.

S3_KEYS = {"access_key_id": "testing", "secret_access_key": "testing"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


async def make_bucket(endpoint: str) -> str:
    bucket = f"chorus-{uuid.uuid4().hex[:12]}"
    async with get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEYS["access_key_id"],
        aws_secret_access_key=S3_KEYS["secret_access_key"],
    ) as s3:
        await s3.create_bucket(Bucket=bucket)
    return bucket


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


class TestS3Storage:
    async def test_round_trip(self, s3_endpoint: str, tmp_path: Path) -> None:
        storage = S3Storage(
            bucket=await make_bucket(s3_endpoint),
            prefix="assets/",
            endpoint_url=s3_endpoint,
            **S3_KEYS,
        )
        small = png(3000)
        key = content_key(hashlib.sha256(small).hexdigest())
        assert await storage.exists(key) is False
        source = tmp_path / "upload"
        source.write_bytes(small)
        await storage.put(key, source, content_type="image/png")
        assert source.exists()  # the caller's file is left alone
        assert await storage.exists(key) is True
        assert await collect(await storage.open(key)) == small

        # Past one part: a multipart upload from a stream.
        large = os.urandom(9 * 1024 * 1024 + 17)
        large_key = content_key(hashlib.sha256(large).hexdigest())

        async def stream() -> AsyncIterator[bytes]:
            for start in range(0, len(large), 1024 * 1024):
                yield large[start : start + 1024 * 1024]

        await storage.put(large_key, stream(), content_type="video/mp4")
        assert await collect(await storage.open(large_key)) == large

        await storage.delete(key)
        assert await storage.exists(key) is False
        await storage.delete(key)  # again: nothing to do
        with pytest.raises(StoredObjectMissing):
            await storage.open(key)
        with pytest.raises(ValueError, match="not an asset storage key"):
            await storage.exists("../etc/passwd")

    async def test_unreachable_server_is_503(self, library: RunningService) -> None:
        storage = S3Storage(bucket="chorus-none", endpoint_url="http://127.0.0.1:9", **S3_KEYS)
        library.app.state.asset_storage = storage
        response = await upload(library, png())
        assert_problem(response, 503, "asset-storage-unavailable")
        assert await library.scalar("SELECT count(*) FROM assets") == 0

    async def test_service_on_s3(self, infrastructure: Infrastructure, s3_endpoint: str) -> None:
        bucket = await make_bucket(s3_endpoint)
        async with running_service(
            infrastructure,
            "calendar",
            asset_storage="s3",
            asset_s3_endpoint_url=s3_endpoint,
            asset_s3_bucket=bucket,
            asset_s3_access_key_id="testing",
            asset_s3_secret_access_key="testing",
        ) as service:
            await seed_districts(service)
            content = png(50_000)
            asset = await uploaded(service, content)
            again = await upload(service, content)
            assert again.status_code == 200
            download = await service.client.get(on_service(asset["content_url"]), headers=FR_WRITER)
            assert download.status_code == 200
            assert download.content == content
            assert download.headers["etag"] == f'"{asset["sha256"]}"'
            storage = S3Storage(
                bucket=bucket, prefix="assets/", endpoint_url=s3_endpoint, **S3_KEYS
            )
            assert await storage.exists(content_key(asset["sha256"]))
            deleted = await service.client.delete(f"/assets/{asset['id']}", headers=FR_WRITER)
            assert deleted.status_code == 204
            assert not await storage.exists(content_key(asset["sha256"]))


@pytest.mark.parametrize(
    "instant", ["0001-01-01T00:00:00Z", "0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59.999999Z"]
)
async def test_rights_expiring_outside_the_years_planned_are_422(
    library: RunningService, instant: str
) -> None:
    response = await upload(library, png(), rights_expire_at=instant)
    assert_problem(response, 422, "validation-error")
    asset = await uploaded(library, png())
    response = await library.client.patch(
        f"/assets/{asset['id']}", json={"rights_expire_at": instant}, headers=FR_WRITER
    )
    assert_problem(response, 422, "validation-error")
    response = await library.client.get(f"/assets/{asset['id']}", headers=FR_WRITER)
    assert response.status_code == 200, response.text
    assert response.json()["rights_expire_at"] is None
