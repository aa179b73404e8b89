"""The CSV of account import and export: its columns, how an upload is received and read (line
numbers as in the file, the header being line 1), how each row is parsed into the account it
names (``parse``: platform rules, district, no account twice; what needs no stored account),
and how accounts are written back out. Checking rows against the stored accounts, and
writing, is the service's (``service.py``).

A header row is required; columns come in any order, names are case-insensitive, and unknown
ones are refused. Lists (tags, owners) are separated by "|" or ";". The delimiter is whatever
the header uses of ",", ";" and tab (spreadsheets in French or German locales write ";").

Formulas (CSV injection, OWASP): a spreadsheet runs a cell that starts with "=", "+", "-", "@",
a tab or a carriage return as a formula, so a display name set by a contributor could run on
the machine of whoever opens the export. The export writes such a cell with a single quote in
front (the spreadsheet shows the text, not a formula). A leading single quote is therefore the
escape: a value that really starts with one is written with a second one, and the import drops
one leading quote from every cell, so every value reads back as it was. A file made by hand
follows the same rule ("'=1" is read as "=1", "''x" as "'x"). No column is numeric, so a
negative number is never mistaken for a formula that needed no quote.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

from pydantic import ValidationError

from chassis.districts import Scope
from chassis.errors import Problem, Unprocessable
from services.inventory.platforms import PlatformRules, Registry
from services.inventory.transfer.schemas import ImportRow, RowError

T = TypeVar("T")

COLUMNS = (
    "platform",
    "handle",
    "profile_url",
    "display_name",
    "district_id",
    "status",
    "owner_primary",
    "owner_backup",
    "purpose",
    "language",
    "country",
    "tags",
    "notes",
)
LIST_COLUMNS = frozenset({"owner_primary", "owner_backup", "tags"})
# Kept as written (only a cell of blanks counts as empty); every other cell is trimmed.
FREE_TEXT_COLUMNS = frozenset({"display_name", "purpose", "notes"})
LIST_SEPARATORS = ("|", ";")
_SPLIT = re.compile("|".join(re.escape(s) for s in LIST_SEPARATORS))
DELIMITERS = (",", ";", "\t")
BOM = b"\xef\xbb\xbf"
# An upload is spooled in memory up to this size, then to a temporary file.
SPOOL_MEMORY_BYTES = 8 * 1024 * 1024
CSV_MEDIA_TYPES = frozenset({"text/csv", "application/csv", "text/plain"})
ESCAPE = "'"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ImportTooLarge(Problem):
    status = 413
    type_slug = "import-too-large"
    title = "The import is too large"


class NotCsv(Problem):
    status = 415
    type_slug = "import-not-csv"
    title = "The import is sent as text/csv"


class InvalidCsv(Unprocessable):
    type_slug = "invalid-csv"
    title = "Not a CSV file Chorus can read"


class InvalidCsvHeader(Unprocessable):
    type_slug = "invalid-csv-header"
    title = "The CSV header is not one Chorus reads"


@dataclass(frozen=True)
class Record:
    """One data row: the line it starts on, its cleaned cells by column, or why it is unreadable."""

    line: int
    cells: dict[str, Any]
    error: str | None = None


async def spool(chunks: AsyncIterable[bytes], *, max_bytes: int) -> IO[bytes]:
    """The streamed body in a spooled temporary file (memory first, disk past a few MB), refused
    with 413 as soon as it grows past `max_bytes`. The caller closes it."""
    upload: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
    size = 0
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise too_large_bytes(max_bytes)
            upload.write(chunk)
        upload.seek(0)
    except BaseException:
        upload.close()
        raise
    return upload


def too_large_bytes(max_bytes: int) -> ImportTooLarge:
    return ImportTooLarge(
        f"An import is at most {max_bytes} bytes; split the file.", max_bytes=max_bytes
    )


def read(upload: IO[bytes], *, max_rows: int) -> tuple[tuple[str, ...], Iterator[Record]]:
    """The header (column names, lower-cased) and an iterator over the data rows. Header
    problems raise at once; a row that cannot be split into the header's columns comes as a
    Record with an error; an undecodable line or broken quoting stops the read (422)."""
    lines = _text_lines(upload)
    first = next(lines, None)
    if first is None or not first.strip():
        raise InvalidCsv("The file is empty: line 1 is the header (platform, handle, ...).")
    delimiter = max(DELIMITERS, key=first.count)
    reader = csv.reader(_chain(first, lines), delimiter=delimiter, strict=True)
    try:
        header = tuple(name.strip().lower() for name in next(reader))
    except csv.Error as exc:
        raise InvalidCsv(f"Line 1: {exc}.", line=1) from exc
    _check_header(header)
    return header, _records(reader, header, max_rows, start=reader.line_num)


def _text_lines(upload: IO[bytes]) -> Iterator[str]:
    """Physical lines, decoded one by one so a decoding error names its line."""
    for number, raw in enumerate(upload, start=1):
        line = raw.removeprefix(BOM) if number == 1 else raw
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidCsv(
                f"Line {number} is not UTF-8 text; save the file as UTF-8 CSV.", line=number
            ) from exc


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _check_header(header: tuple[str, ...]) -> None:
    unknown = sorted({name for name in header if name not in COLUMNS})
    if unknown:
        raise InvalidCsvHeader(
            f"Unknown columns: {', '.join(repr(n) for n in unknown)}.",
            unknown=unknown,
            known=list(COLUMNS),
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InvalidCsvHeader(
            f"Columns given twice: {', '.join(repeated)}.", repeated=repeated, known=list(COLUMNS)
        )
    present = set(header)
    if "district_id" not in present:
        raise InvalidCsvHeader("The district_id column is required.", known=list(COLUMNS))
    if not {"platform", "handle"} <= present and "profile_url" not in present:
        raise InvalidCsvHeader(
            "Accounts are named by platform and handle columns, or a profile_url column.",
            known=list(COLUMNS),
        )


def _records(
    reader: Any, header: tuple[str, ...], max_rows: int, *, start: int
) -> Iterator[Record]:
    rows = 0
    end = start  # the line the previous record ended on
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidCsv(f"Line {end + 1}: {exc}.", line=end + 1) from exc
        line, end = end + 1, reader.line_num
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue  # a blank line
        rows += 1
        if rows > max_rows:
            raise ImportTooLarge(
                f"An import is at most {max_rows} rows; split the file.", max_rows=max_rows
            )
        if len(cells) != len(header):
            yield Record(line, {}, f"{len(cells)} fields where the header has {len(header)}.")
        elif any("\x00" in cell for cell in cells):
            yield Record(line, {}, "A cell holds a NUL character.")
        else:
            yield Record(line, _clean(header, cells))


def _clean(header: Sequence[str], cells: Sequence[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, cell in zip(header, cells, strict=True):
        if name in LIST_COLUMNS:
            cell = unescape(cell.strip())
            values[name] = [item for item in (p.strip() for p in _SPLIT.split(cell)) if item]
        elif name in FREE_TEXT_COLUMNS:
            cell = unescape(cell)
            values[name] = cell if cell.strip() else None
        else:
            values[name] = unescape(cell.strip()).strip() or None
    return values


def escape(cell: str, *, formulas: bool = True) -> str:
    """The cell as the export writes it: quoted when a spreadsheet would run it as a formula
    (unless `formulas` is off), and always when it starts with the quote itself."""
    if cell.startswith(ESCAPE) or (formulas and cell.startswith(FORMULA_STARTS)):
        return ESCAPE + cell
    return cell


def unescape(cell: str) -> str:
    """The value of a cell: without the one leading quote that escape() adds."""
    return cell.removeprefix(ESCAPE)


def join_list(items: Iterable[str]) -> str:
    """A list cell. An item holding "|" or ";" (the API allows them in tags) cannot be told
    apart from two items: such values travel in the JSON export, not through CSV."""
    return LIST_SEPARATORS[0].join(items)


def header_line() -> bytes:
    return rows_bytes([list(COLUMNS)])


def rows_bytes(rows: Iterable[Sequence[str]], *, escape_formulas: bool = True) -> bytes:
    """CSV lines of these rows, every cell through escape()."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([escape(cell, formulas=escape_formulas) for cell in row] for row in rows)
    return out.getvalue().encode()


# --- rows: what each row names, checked without the accounts --------------------------------


class RowFault(Exception):
    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


@dataclass
class Candidate:
    """A row that passed the checks that need no account: who it names, and where."""

    line: int
    row: ImportRow
    rules: PlatformRules
    handle: str
    handle_key: str
    by_url: bool
    district_id: str
    district_path: str

    @property
    def key(self) -> tuple[str, str]:
        return self.rules.key, self.handle_key

    @property
    def name_column(self) -> str:
        return "profile_url" if self.by_url else "handle"


@dataclass
class ParsedFile:
    header: tuple[str, ...]
    rows: int = 0
    candidates: list[Candidate] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def parse(
    upload: IO[bytes], max_rows: int, registry: Registry, paths: dict[str, str], scope: Scope
) -> ParsedFile:
    header, records = read(upload, max_rows=max_rows)
    parsed = ParsedFile(header)
    first_line: dict[tuple[str, str], int] = {}
    for record in records:
        parsed.rows += 1
        if record.error is not None:
            parsed.errors.append(RowError(line=record.line, message=record.error))
            continue
        try:
            row = ImportRow.model_validate(record.cells)
        except ValidationError as exc:
            parsed.errors.extend(_row_errors(record.line, exc))
            continue
        faults: list[RowFault] = []
        identity = None
        try:
            identity = _identify(row, registry)
        except RowFault as fault:
            faults.append(fault)
        else:
            rules, handle, handle_key, by_url = identity
            first = first_line.setdefault((rules.key, handle_key), record.line)
            if first != record.line:
                faults.append(
                    RowFault(
                        "profile_url" if by_url else "handle",
                        f"{rules.name} {handle!r} is already on line {first}.",
                    )
                )
        district_id, path = row.district_id, None
        if district_id is None:
            faults.append(RowFault("district_id", "The district is required."))
        else:
            path = paths.get(district_id)
            if path is None or not scope.can_read(path):
                # Whether it exists elsewhere is not the caller's business.
                faults.append(RowFault("district_id", f"No district {district_id!r}."))
        if faults or identity is None or district_id is None or path is None:
            parsed.errors.extend(
                RowError(line=record.line, column=f.column, message=f.message) for f in faults
            )
            continue
        parsed.candidates.append(Candidate(record.line, row, *identity, district_id, path))
    return parsed


def _row_errors(line: int, exc: ValidationError) -> Iterator[RowError]:
    for error in exc.errors(include_url=False):
        loc = error.get("loc", ())
        message = error["msg"]
        if len(loc) > 1:  # an item of a list column
            message = f"{error['input']!r}: {message}"
        yield RowError(line=line, column=str(loc[0]) if loc else None, message=message)


def _checked(column: str, check: Callable[[str], T], value: str) -> T:
    """check(value), its 422 (unknown platform, invalid handle or URL) as a fault of `column`."""
    try:
        return check(value)
    except Unprocessable as exc:
        raise RowFault(column, exc.detail) from exc


def _identify(row: ImportRow, registry: Registry) -> tuple[PlatformRules, str, str, bool]:
    """(platform rules, handle, handle key, named by URL) of the account a row names."""
    if row.profile_url is not None:
        rules, raw = _checked("profile_url", registry.parse_url, row.profile_url)
        named = rules if row.platform is None else _checked("platform", registry.get, row.platform)
        if named.key != rules.key:
            raise RowFault("profile_url", f"The URL is a {rules.name} profile, not {row.platform}.")
        handle, handle_key = _checked("profile_url", rules.normalise, raw)
        if row.handle is None:
            return rules, handle, handle_key, True
        given, given_key = _checked("handle", rules.normalise, row.handle)
        if given_key != handle_key:
            raise RowFault("handle", f"The profile URL names {handle!r}, not this handle.")
        return rules, given, handle_key, False
    if row.platform is None or row.handle is None:
        raise RowFault(
            "platform" if row.platform is None else "handle",
            "Give platform and handle, or a profile_url.",
        )
    rules = _checked("platform", registry.get, row.platform)
    handle, handle_key = _checked("handle", rules.normalise, row.handle)
    return rules, handle, handle_key, False
