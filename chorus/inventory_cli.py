"""`chorus inventory import FILE`: import accounts from CSV through the gateway.

The file is streamed to `POST /api/inventory/accounts/import`; the service's progress (one JSON
line per step) is shown as it comes, then the counts, or every row error with its line.
Exit codes: 0 imported (or checked, with --dry-run), 1 refused or failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx

DEFAULT_GATEWAY = "http://127.0.0.1:8000"
IMPORT_PATH = "/api/inventory/accounts/import"
NDJSON = "application/x-ndjson"
CHUNK_BYTES = 256 * 1024
# Checking a large file happens before the first progress line: allow it time.
TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=10.0)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_inventory_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `chorus inventory ...` on the top-level parser's sub-commands."""
    inventory = commands.add_parser("inventory", help="work with the inventory service")
    actions = inventory.add_subparsers(dest="inventory_command", required=True)
    importing = actions.add_parser(
        "import",
        help="import accounts from a CSV file",
        description="Import accounts from a CSV file (header row: platform, handle, "
        "profile_url, display_name, district_id, status, owner_primary, owner_backup, purpose, "
        "language, country, tags, notes). Nothing is written if any row is wrong.",
    )
    importing.add_argument("file", type=Path, help="the CSV file (UTF-8)")
    importing.add_argument("--dry-run", action="store_true", help="check every row, write nothing")
    importing.add_argument(
        "--gateway", default=DEFAULT_GATEWAY, help=f"gateway URL (default {DEFAULT_GATEWAY})"
    )
    importing.add_argument(
        "--token", help="bearer token (default: the CHORUS_TOKEN environment variable)"
    )
    importing.set_defaults(func=command_import)


def command_import(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("CHORUS_TOKEN")
    if not token:
        _err("no token: pass --token or set CHORUS_TOKEN (see `chorus token`)")
        return EXIT_USAGE
    path: Path = args.file
    if not path.is_file():
        _err(f"no file {str(path)!r}")
        return EXIT_USAGE
    if not args.gateway.startswith(("http://", "https://")):
        _err(f"the gateway is an http(s) URL, not {args.gateway!r}")
        return EXIT_USAGE
    url = args.gateway.rstrip("/") + IMPORT_PATH
    size = path.stat().st_size
    headers = {
        "authorization": f"Bearer {token}",
        "content-type": "text/csv",
        "content-length": str(size),
        "accept": f"{NDJSON}, application/problem+json",
    }
    mode = "checking" if args.dry_run else "importing"
    _progress(f"{mode} {path} ({_size(size)})")
    try:
        with (
            path.open("rb") as file,
            httpx.Client(timeout=TIMEOUT) as client,
            client.stream(
                "POST",
                url,
                params={"dry_run": "true" if args.dry_run else "false"},
                headers=headers,
                content=_upload(file, size),
            ) as response,
        ):
            if response.status_code == 200 and response.headers.get("content-type", "").startswith(
                NDJSON
            ):
                return _follow(response)
            response.read()
            return _refused(response)
    except httpx.HTTPError as exc:
        _err(f"the import did not go through: {exc!r} ({url})")
        return EXIT_FAILED


def _upload(file: IO[bytes], size: int) -> Iterator[bytes]:
    sent, shown = 0, 0
    while chunk := file.read(CHUNK_BYTES):
        sent += len(chunk)
        yield chunk
        percent = sent * 100 // max(size, 1)
        if size > 4 * CHUNK_BYTES and percent >= shown + 10:
            shown = percent - percent % 10
            _progress(f"uploading {shown}%")


def _follow(response: httpx.Response) -> int:
    last: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line.strip():
            continue
        last = json.loads(line)
        if last.get("phase") in ("validating", "writing"):
            _progress(f"{last['phase']} {last['done']}/{last['total']}")
    if last.get("phase") == "done":
        _report(last["result"])
        return EXIT_OK
    if last.get("phase") == "failed":
        _problem(last.get("problem") or {})
        return EXIT_FAILED
    _err("the import stopped without a result; it was rolled back")
    return EXIT_FAILED


def _refused(response: httpx.Response) -> int:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 200 and isinstance(body, dict):
        _report(body)
        return EXIT_OK
    if isinstance(body, dict):
        _problem(body)
    else:
        _err(f"the gateway answered {response.status_code}: {response.text[:500]}")
    return EXIT_FAILED


def _report(result: dict[str, Any]) -> None:
    prefix = "dry run, nothing written: would be " if result.get("dry_run") else ""
    print(
        f"{prefix}{result['rows']} rows: {result['created']} created, "
        f"{result['updated']} updated, {result['unchanged']} unchanged"
    )


def _problem(problem: dict[str, Any]) -> None:
    print(f"{problem.get('title', 'error')}: {problem.get('detail', '')}")
    for error in problem.get("errors") or []:
        if "line" in error:  # a row error
            column = f", {error['column']}" if error.get("column") else ""
            print(f"  line {error['line']}{column}: {error.get('message', '')}")
        else:  # the request itself (a query parameter)
            print(f"  {error}")
    if problem.get("unknown"):
        print(f"  known columns: {', '.join(problem.get('known') or [])}")


def _size(size: int) -> str:
    return f"{size / 1_048_576:.1f} MB" if size >= 1_048_576 else f"{size} bytes"


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _err(message: str) -> None:
    print(f"chorus: {message}", file=sys.stderr)
