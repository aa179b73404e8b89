"""Where asset bytes live: one interface, a local folder by default, an S3-compatible bucket by
settings (``CALENDAR_ASSET_STORAGE=s3``).

Objects are content addressed: the key is derived from the sha256 of the bytes
(``sha256/ab/cd/abcd...``), so the same file uploaded by two districts is stored once and a
put of a key that exists changes nothing. The database decides which keys are still in use;
storage never lists or scans.

Failures of the store itself (a full disk, an unreachable bucket) are 503 problems: the request
was fine, the store was not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import Depends, FastAPI, Request

from chassis.errors import Problem
from services.calendar.settings import CalendarSettings

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

log = logging.getLogger("services.calendar.assets.storage")

READ_CHUNK_BYTES = 256 * 1024
# S3 multipart parts (5 MiB is S3's minimum for all parts but the last): an upload is held in
# memory one part at a time.
S3_PART_BYTES = 8 * 1024 * 1024
_KEY = re.compile(r"^sha256/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}$")


class StorageUnavailable(Problem):
    status = 503
    type_slug = "asset-storage-unavailable"
    title = "The asset storage is unavailable"


class StoredObjectMissing(Exception):
    """The key has no object (deleted, or never written)."""


def content_key(sha256: str) -> str:
    """The storage key of the bytes with this sha256 (lower-case hex)."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError("not a sha256 in lower-case hex")
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


class AssetStorage(Protocol):
    """A content-addressed object store."""

    async def put(
        self, key: str, source: Path | AsyncIterable[bytes], *, content_type: str
    ) -> None:
        """Store the bytes of a file (left in place for the caller to remove) or of a stream
        under `key`, replacing what is there; readers never see a partial object."""

    async def open(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks. The object is opened when this is awaited (so a
        missing one raises StoredObjectMissing before anything is streamed) and closed when
        the iteration ends."""

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Remove the object; a missing one is not an error."""


def _check_key(key: str) -> str:
    # Keys come from content_key; anything else (a path with "..") never reaches the store.
    if not _KEY.fullmatch(key):
        raise ValueError(f"not an asset storage key: {key!r}")
    return key


class LocalStorage:
    """Objects as files under a folder: ``<root>/sha256/ab/cd/<sha256>``. Writes go to
    ``<root>/.incoming`` first and are renamed into place, so a reader never sees half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._incoming = root / ".incoming"
        self._incoming.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    async def put(
        self, key: str, source: Path | AsyncIterable[bytes], *, content_type: str
    ) -> None:
        target = self._path(key)
        staged = self._incoming / uuid.uuid4().hex
        try:
            if isinstance(source, Path):
                await asyncio.to_thread(_link_or_copy, source, staged)
            else:
                await _write_stream(staged, source)
            await asyncio.to_thread(_commit_file, staged, target)
        except OSError as exc:
            log.exception("local asset storage failed to write %s", key)
            raise StorageUnavailable("The asset could not be written to storage.") from exc
        finally:
            await asyncio.to_thread(staged.unlink, missing_ok=True)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as exc:
            raise StoredObjectMissing(key) from exc
        except OSError as exc:
            log.exception("local asset storage failed to open %s", key)
            raise StorageUnavailable("The asset could not be read from storage.") from exc
        return _read_file(handle)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete(self, key: str) -> None:
        try:
            await asyncio.to_thread(self._path(key).unlink, missing_ok=True)
        except OSError as exc:
            log.exception("local asset storage failed to delete %s", key)
            raise StorageUnavailable("The asset could not be removed from storage.") from exc


def _link_or_copy(source: Path, staged: Path) -> None:
    # A hard link costs nothing when the upload was spooled on the same file system.
    try:
        os.link(source, staged)
    except OSError:
        shutil.copyfile(source, staged)


def _commit_file(staged: Path, target: Path) -> None:
    with staged.open("rb") as handle:
        os.fsync(handle.fileno())
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, target)


async def _write_stream(staged: Path, chunks: AsyncIterable[bytes]) -> None:
    handle = await asyncio.to_thread(staged.open, "wb")
    try:
        async for chunk in chunks:
            await asyncio.to_thread(handle.write, chunk)
    finally:
        await asyncio.to_thread(handle.close)


async def _read_file(handle: Any) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(handle.read, READ_CHUNK_BYTES):
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


class S3Storage:
    """Objects in a bucket of an S3-compatible server (AWS S3, MinIO, Ceph, R2...), under
    ``<prefix>sha256/...``. A client is opened per operation: the library keeps no connection
    that the service's shutdown would have to close, at the price of a few milliseconds."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        path_style: bool = True,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._endpoint_url = endpoint_url
        self._region = region
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._session = get_session()
        self._config = AioConfig(
            s3={"addressing_style": "path" if path_style else "auto"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            # Checksums only where S3 requires them: many S3-compatible servers reject the
            # trailing checksums botocore sends by default.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )

    def _client(self) -> Any:
        return self._session.create_client(
            "s3",
            region_name=self._region,
            endpoint_url=self._endpoint_url,
            aws_access_key_id=self._access_key_id,
            aws_secret_access_key=self._secret_access_key,
            config=self._config,
        )

    def _key(self, key: str) -> str:
        return self.prefix + _check_key(key)

    async def put(
        self, key: str, source: Path | AsyncIterable[bytes], *, content_type: str
    ) -> None:
        parts = _file_parts(source) if isinstance(source, Path) else _stream_parts(source)
        try:
            async with self._client() as s3:
                first = await anext(parts, b"")
                second = await anext(parts, None)
                if second is None:
                    await s3.put_object(
                        Bucket=self.bucket, Key=self._key(key), Body=first, ContentType=content_type
                    )
                    return
                await self._put_multipart(s3, key, content_type, _chain(first, second, parts))
        except (BotoCoreError, ClientError) as exc:
            log.exception("S3 asset storage failed to write %s", key)
            raise StorageUnavailable("The asset could not be written to storage.") from exc
        finally:
            await parts.aclose()

    async def _put_multipart(
        self, s3: S3Client, key: str, content_type: str, parts: AsyncIterator[bytes]
    ) -> None:
        upload = await s3.create_multipart_upload(
            Bucket=self.bucket, Key=self._key(key), ContentType=content_type
        )
        upload_id = upload["UploadId"]
        try:
            done: list[dict[str, Any]] = []
            number = 0
            async for body in parts:
                number += 1
                part = await s3.upload_part(
                    Bucket=self.bucket,
                    Key=self._key(key),
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                )
                done.append({"ETag": part["ETag"], "PartNumber": number})
            await s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self._key(key),
                UploadId=upload_id,
                MultipartUpload={"Parts": done},  # type: ignore[typeddict-item]
            )
        except BaseException:
            # Parts of an abandoned upload are billed until aborted.
            with contextlib.suppress(BotoCoreError, ClientError):
                await s3.abort_multipart_upload(
                    Bucket=self.bucket, Key=self._key(key), UploadId=upload_id
                )
            raise

    async def open(self, key: str) -> AsyncIterator[bytes]:
        stack = contextlib.AsyncExitStack()
        try:
            s3 = await stack.enter_async_context(self._client())
            response = await s3.get_object(Bucket=self.bucket, Key=self._key(key))
            body = await stack.enter_async_context(response["Body"])
        except ClientError as exc:
            await stack.aclose()
            if _not_found(exc):
                raise StoredObjectMissing(key) from exc
            log.exception("S3 asset storage failed to open %s", key)
            raise StorageUnavailable("The asset could not be read from storage.") from exc
        except BotoCoreError as exc:
            await stack.aclose()
            log.exception("S3 asset storage failed to open %s", key)
            raise StorageUnavailable("The asset could not be read from storage.") from exc
        except BaseException:
            await stack.aclose()
            raise
        return _read_body(stack, body)

    async def exists(self, key: str) -> bool:
        try:
            async with self._client() as s3:
                await s3.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _not_found(exc):
                return False
            log.exception("S3 asset storage failed to look up %s", key)
            raise StorageUnavailable("The asset storage could not be reached.") from exc
        except BotoCoreError as exc:
            log.exception("S3 asset storage failed to look up %s", key)
            raise StorageUnavailable("The asset storage could not be reached.") from exc
        return True

    async def delete(self, key: str) -> None:
        try:
            async with self._client() as s3:
                await s3.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            log.exception("S3 asset storage failed to delete %s", key)
            raise StorageUnavailable("The asset could not be removed from storage.") from exc


def _not_found(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound"}


async def _read_body(stack: contextlib.AsyncExitStack, body: Any) -> AsyncIterator[bytes]:
    async with stack:
        async for chunk in body.iter_chunks(READ_CHUNK_BYTES):
            yield chunk


async def _file_parts(path: Path) -> AsyncGenerator[bytes, None]:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while part := await asyncio.to_thread(handle.read, S3_PART_BYTES):
            yield part
    finally:
        await asyncio.to_thread(handle.close)


async def _stream_parts(chunks: AsyncIterable[bytes]) -> AsyncGenerator[bytes, None]:
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= S3_PART_BYTES:
            yield bytes(buffer[:S3_PART_BYTES])
            del buffer[:S3_PART_BYTES]
    if buffer:
        yield bytes(buffer)


async def _chain(first: bytes, second: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    yield second
    async for part in rest:
        yield part


def build_storage(settings: CalendarSettings) -> AssetStorage:
    """The storage the settings name; local storage creates its folder here."""
    if settings.asset_storage == "s3":
        assert settings.asset_s3_bucket is not None  # the settings validate this
        return S3Storage(
            bucket=settings.asset_s3_bucket,
            prefix=settings.asset_s3_prefix,
            endpoint_url=settings.asset_s3_endpoint_url,
            region=settings.asset_s3_region,
            access_key_id=_secret(settings.asset_s3_access_key_id),
            secret_access_key=_secret(settings.asset_s3_secret_access_key),
            path_style=settings.asset_s3_path_style,
        )
    return LocalStorage(settings.asset_dir)


def _secret(value: Any) -> str | None:
    return None if value is None else str(value.get_secret_value())


def install(app: FastAPI) -> None:
    """Build the app's storage when the app is made (so local storage's folder exists from
    the start); without it, the first request that needs storage builds it."""
    app.state.asset_storage = build_storage(app.state.settings)


def get_storage(request: Request) -> AssetStorage:
    """The app's asset storage, built from its settings on first use and kept on app.state."""
    storage: AssetStorage | None = getattr(request.app.state, "asset_storage", None)
    if storage is None:
        storage = build_storage(request.app.state.settings)
        request.app.state.asset_storage = storage
    return storage


StorageDep = Annotated[AssetStorage, Depends(get_storage)]
