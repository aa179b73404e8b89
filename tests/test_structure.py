"""The shape every service keeps (CONVENTIONS.md): queries live in repositories. An
``endpoints.py`` or ``service.py`` that builds SQL or runs it itself is refused here, so that a
newcomer finds every query of a module in its ``repository.py``, and the next services start
from that shape."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ROOT / "services"

# Calls that build or run SQL. `select(` and `text(` build it; the session methods run it.
QUERY_BUILDERS = frozenset({"select", "text", "insert", "update", "delete", "tuple_"})
SESSION_METHODS = frozenset({"execute", "scalars", "scalar", "get", "stream", "stream_scalars"})


def query_sites(path: Path) -> list[str]:
    """Where `path` builds or runs SQL, as "line: call"."""
    sites = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in QUERY_BUILDERS:
            sites.append(f"{node.lineno}: {func.id}(")
        elif (
            isinstance(func, ast.Attribute)
            and func.attr in SESSION_METHODS
            and isinstance(func.value, ast.Name)
            and func.value.id in {"session", "conn", "connection"}
        ):
            sites.append(f"{node.lineno}: {func.value.id}.{func.attr}(")
    return sorted(sites, key=lambda site: int(site.split(":")[0]))


LAYERS = sorted(p for name in ("endpoints.py", "service.py") for p in SERVICES.rglob(name))


@pytest.mark.parametrize("path", LAYERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_endpoints_and_services_leave_queries_to_repositories(path: Path) -> None:
    name = str(path.relative_to(ROOT))
    assert query_sites(path) == [], f"{name} queries; move it to repository.py"


def test_the_check_sees_every_kind_of_query(tmp_path: Path) -> None:
    sample = tmp_path / "service.py"
    sample.write_text(
        "async def f(session, scope):\n"
        "    await session.execute(select(Post).where(tuple_(a, b) > c))\n"
        "    await session.get(Post, 1)\n"
        "    text('SELECT 1')\n"
        "    await repository.get(session, 1)\n"  # a repository call is fine
        "    scope.get('x')\n"
    )
    assert sorted(query_sites(sample)) == [
        "2: select(",
        "2: session.execute(",
        "2: tuple_(",
        "3: session.get(",
        "4: text(",
    ]
