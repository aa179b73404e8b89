"""Checks of the services' AsyncAPI documents against the official AsyncAPI specification.

The validator is the JSON Schema of AsyncAPI 3.0.0 that the AsyncAPI initiative publishes as
the npm package ``@asyncapi/specs`` (the schema its own parser and CLI validate with), fetched
from the npm registry once, checked against the registry's integrity hash, and cached.
Every event a service test reads from an outbox is also held against its message in the
document (``conforms``), so the documents are checked against what the services really emit.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import os
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

SPECS_VERSION = "6.11.1"
SPECS_TARBALL = f"https://registry.npmjs.org/@asyncapi/specs/-/specs-{SPECS_VERSION}.tgz"
SPECS_INTEGRITY = (
    "sha512-"
    "A3WBLqAKGoJ2+6FWFtpjBlCQ1oFCcs4GxF7zsIGvNqp/klGUHjlA3aAcZ9XMMpLGE8zPeYDz2x9FmO6DSuKraQ=="
)
SCHEMA_MEMBER = "package/schemas/3.0.0-without-$id.json"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chorus"


@functools.cache
def asyncapi_3_schema() -> dict[str, Any]:
    """The official JSON Schema of AsyncAPI 3.0.0 documents."""
    tarball = _cache_dir() / f"asyncapi-specs-{SPECS_VERSION}.tgz"
    if not tarball.exists():
        with urllib.request.urlopen(SPECS_TARBALL, timeout=60) as response:
            content = response.read()
        tarball.parent.mkdir(parents=True, exist_ok=True)
        partial = tarball.with_suffix(".part")
        partial.write_bytes(content)
        partial.replace(tarball)
    content = tarball.read_bytes()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(content).digest()).decode()
    if digest != SPECS_INTEGRITY:
        tarball.unlink()
        raise AssertionError(f"{SPECS_TARBALL} does not match the registry's integrity hash")
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as archive:
        member = archive.extractfile(SCHEMA_MEMBER)
        assert member is not None
        schema: dict[str, Any] = json.load(member)
    return schema


def specification_errors(document: dict[str, Any]) -> list[str]:
    """What the AsyncAPI 3.0.0 schema finds wrong with a document, and every local $ref that
    points nowhere (the schema alone does not follow references)."""
    validator = Draft7Validator(asyncapi_3_schema())
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]
    dangling = [ref for ref in _refs(document) if _resolve(document, ref) is None]
    errors += [f"{ref}: points nowhere" for ref in dangling]
    return errors


def conforms(document: dict[str, Any], event: dict[str, Any]) -> None:
    """Raise unless the document lists the event's type and its payload schema accepts it."""
    key = event["type"].split(".", 2)[2]
    assert key in document["components"]["messages"], (
        f"{event['type']} is emitted but not in the service's AsyncAPI document"
    )
    # The document is the root resource, so the payload's references resolve inside it.
    Draft7Validator({**document, "$ref": f"#/components/messages/{key}/payload"}).validate(event)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        return None
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
