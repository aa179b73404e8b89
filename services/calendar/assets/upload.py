"""Receiving an upload: a multipart/form-data body read as it streams in.

The body is fed chunk by chunk to python-multipart's streaming parser. The file part goes
straight to a temporary file while its sha256 is computed; the other parts are small form
fields kept in memory. Nothing waits for the whole body before checking it:

- a Content-Length above the limit is refused before a byte is read, and a body without one
  (chunked) is refused as soon as the file passes the limit;
- the file's type is read from its first bytes as soon as they are in, so a mislabelled or
  unsupported file is refused without reading the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from chassis.errors import BadRequest, Problem
from chassis.guard import PayloadTooLarge
from services.calendar.assets import sniff

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FILE_FIELD = "file"
# Room for the form fields and the multipart framing beside the file, in a Content-Length.
FORM_ALLOWANCE_BYTES = 64 * 1024
FIELD_MAX_BYTES = 8 * 1024
MAX_FIELDS = 64
FILENAME_MAX_LENGTH = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UploadTooLarge(PayloadTooLarge):
    type_slug = "asset-too-large"
    title = "The upload is too large"


class UnsupportedMediaType(Problem):
    """415: the body, or the file in it, is of a type the library does not take."""

    status = 415
    type_slug = "unsupported-media-type"
    title = "Unsupported media type"


class NotMultipart(UnsupportedMediaType):
    type_slug = "upload-not-multipart"
    title = "An upload is sent as multipart/form-data"


class InvalidUpload(BadRequest):
    type_slug = "invalid-upload"
    title = "The upload is not a form Chorus can read"


class UnsupportedAssetType(UnsupportedMediaType):
    type_slug = "unsupported-asset-type"
    title = "The library does not take this kind of file"


class MislabelledAsset(UnsupportedMediaType):
    type_slug = "mislabelled-asset"
    title = "The file is not what its type or name says"


class SvgRefused(UnsupportedMediaType):
    type_slug = "svg-refused"
    title = "SVG files are not accepted"


@dataclass
class ReceivedFile:
    path: Path
    filename: str | None
    declared_type: str
    content_type: str
    size: int
    sha256: str


@dataclass
class ReceivedUpload:
    file: ReceivedFile
    # Form fields by name, each with its values in order.
    fields: dict[str, list[str]]


def too_large(max_bytes: int) -> UploadTooLarge:
    return UploadTooLarge(f"An asset is at most {max_bytes} bytes.", max_bytes=max_bytes)


def check_declared_length(content_length: str | None, max_bytes: int) -> None:
    """Refuse a body whose declared length cannot hold a file within the limit."""
    declared = int(content_length) if content_length and content_length.isdigit() else 0
    if declared > max_bytes + FORM_ALLOWANCE_BYTES:
        raise too_large(max_bytes)


def boundary_of(content_type: str | None) -> bytes:
    media_type, options = parse_options_header(content_type or "")
    if media_type != b"multipart/form-data":
        raise NotMultipart(
            "Send the file as multipart/form-data with a 'file' part and the metadata as "
            "form fields."
        )
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidUpload("The multipart Content-Type has no boundary.")
    return boundary


def clean_filename(raw: str | None) -> str | None:
    """The file's own name: no folders (some browsers send a full path), no control
    characters, at most FILENAME_MAX_LENGTH characters."""
    if raw is None:
        return None
    # Browsers escape these three in a form's file names (WHATWG multipart/form-data).
    raw = raw.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")
    name = _CONTROL.sub("", re.split(r"[\\/]", raw)[-1]).strip()
    if name in {"", ".", ".."}:
        return None
    if len(name) > FILENAME_MAX_LENGTH:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:16] if dot else ""
        name = (stem if dot else name)[: FILENAME_MAX_LENGTH - len(ext) - 1] + (
            "." + ext if ext else ""
        )
    return name


def check_type(head: bytes, declared: str, filename: str | None) -> str:
    """The accepted media type of a file starting with `head`, or the 415 that refuses it."""
    sniffed = sniff.sniff(head)
    claimed = sniff.canonical(declared)
    by_name = sniff.extension_type(filename)
    if sniff.SVG in {sniffed, claimed, by_name}:
        raise SvgRefused(
            "SVG can carry scripts and is not accepted; upload a PNG or WebP rendering."
        )
    if sniffed is None:
        if claimed in sniff.ACCEPTED or by_name in sniff.ACCEPTED:
            raise MislabelledAsset(
                f"The file is labelled {claimed if claimed in sniff.ACCEPTED else by_name}, "
                "but its bytes are not of that type.",
                declared=claimed or None,
                filename=filename,
            )
        raise UnsupportedAssetType(
            f"The library takes {', '.join(sorted(sniff.ACCEPTED))}; this file is none of them.",
            accepted=sorted(sniff.ACCEPTED),
        )
    if claimed not in sniff.NO_CLAIM and claimed != sniffed:
        raise MislabelledAsset(
            f"The file is labelled {claimed}, but its bytes are {sniffed}.",
            declared=claimed,
            detected=sniffed,
        )
    if by_name is not None and by_name != sniffed:
        raise MislabelledAsset(
            f"The file is named {filename!r}, but its bytes are {sniffed}.",
            filename=filename,
            detected=sniffed,
        )
    return sniffed


@dataclass
class _Part:
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    name: str = ""
    is_file: bool = False
    data: bytearray = field(default_factory=bytearray)


class _Reader:
    """The parser's callbacks: they run synchronously inside `parser.write`, so file bytes
    are queued there and written by the async loop after each chunk."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.part = _Part()
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.fields: dict[str, list[str]] = {}
        self.field_count = 0
        self.file_seen = False
        self.file_ended = False
        self.filename: str | None = None
        self.declared_type = ""
        self.size = 0
        self.digest = hashlib.sha256()
        self.head = bytearray()
        self.pending: list[bytes] = []
        self.ended = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers.append((bytes(self.header_name).lower(), bytes(self.header_value)))
        self.header_name.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        headers = dict(self.part.headers)
        disposition, options = parse_options_header(headers.get(b"content-disposition"))
        if disposition != b"form-data" or b"name" not in options:
            raise InvalidUpload("Every part needs a Content-Disposition: form-data with a name.")
        self.part.name = options[b"name"].decode("utf-8", "replace")
        if self.part.name == FILE_FIELD:
            if self.file_seen:
                raise InvalidUpload("An upload carries one file.")
            self.file_seen = True
            self.part.is_file = True
            raw_name = options.get(b"filename")
            self.filename = clean_filename(
                None if raw_name is None else raw_name.decode("utf-8", "replace")
            )
            self.declared_type = headers.get(b"content-type", b"").decode("latin-1")
        elif b"filename" in options:
            raise InvalidUpload(f"Only the {FILE_FIELD!r} part carries a file.")
        else:
            self.field_count += 1
            if self.field_count > MAX_FIELDS:
                raise InvalidUpload(f"An upload has at most {MAX_FIELDS} form fields.")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if not self.part.is_file:
            if len(self.part.data) + len(chunk) > FIELD_MAX_BYTES:
                raise UploadTooLarge(
                    f"The form field {self.part.name!r} is longer than {FIELD_MAX_BYTES} bytes."
                )
            self.part.data += chunk
            return
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise too_large(self.max_bytes)
        self.digest.update(chunk)
        if len(self.head) < sniff.HEAD_BYTES:
            self.head += chunk[: sniff.HEAD_BYTES - len(self.head)]
        self.pending.append(chunk)

    def on_part_end(self) -> None:
        if self.part.is_file:
            self.file_ended = True
            return
        try:
            value = self.part.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidUpload(f"The form field {self.part.name!r} is not UTF-8.") from exc
        self.fields.setdefault(self.part.name, []).append(value)

    def on_end(self) -> None:
        self.ended = True


@contextlib.asynccontextmanager
async def receive(
    content_type: str | None,
    chunks: AsyncIterator[bytes],
    *,
    max_bytes: int,
    spool_dir: Path | None = None,
) -> AsyncIterator[ReceivedUpload]:
    """Read the multipart body from `chunks`; the file is in a temporary file (in `spool_dir`,
    or the system's temporary folder) for as long as the context lasts."""
    boundary = boundary_of(content_type)
    reader = _Reader(max_bytes)
    parser = MultipartParser(boundary, reader.callbacks())
    spool: IO[bytes] = await asyncio.to_thread(
        tempfile.NamedTemporaryFile,
        mode="wb",
        prefix="upload-",
        dir=spool_dir,
        delete=False,
    )
    path = Path(spool.name)
    content_type_checked: str | None = None
    try:
        try:
            async for chunk in chunks:
                parser.write(chunk)
                if reader.file_ended and reader.size == 0:
                    raise InvalidUpload("The file is empty.")
                if content_type_checked is None and (
                    len(reader.head) >= sniff.HEAD_BYTES or reader.file_ended
                ):
                    content_type_checked = check_type(
                        bytes(reader.head), reader.declared_type, reader.filename
                    )
                if reader.pending:
                    data = b"".join(reader.pending)
                    reader.pending.clear()
                    await asyncio.to_thread(spool.write, data)
            parser.finalize()
        except FormParserError as exc:
            raise InvalidUpload("The multipart body is malformed.") from exc
        except ClientDisconnect as exc:
            raise InvalidUpload("The upload was interrupted.") from exc
        finally:
            await asyncio.to_thread(spool.close)
        if not reader.ended:
            raise InvalidUpload("The multipart body ends before its closing boundary.")
        if not reader.file_seen:
            raise InvalidUpload(f"The upload has no {FILE_FIELD!r} part.")
        assert content_type_checked is not None  # the file part ended, so it was checked
        yield ReceivedUpload(
            file=ReceivedFile(
                path=path,
                filename=reader.filename,
                declared_type=sniff.canonical(reader.declared_type),
                content_type=content_type_checked,
                size=reader.size,
                sha256=reader.digest.hexdigest(),
            ),
            fields=reader.fields,
        )
    finally:
        await asyncio.to_thread(_remove, path)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
