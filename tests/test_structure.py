"""The shape every service keeps (CONVENTIONS.md), checked so the next services start from it:
- queries live in repositories: an ``endpoints.py`` or ``service.py`` that builds SQL or runs
  it itself is refused, so a newcomer finds every query of a module in its ``repository.py``;
- every service folder has the same top-level files;
- no service imports another;
- ``events.py`` declares the published events, and the outbox publishes only those."""

from __future__ import annotations

import ast
from importlib import import_module
from pathlib import Path

import pytest

from chassis.events import EventCatalog

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


SERVICE_DIRS = sorted(p for p in SERVICES.iterdir() if (p / "__init__.py").exists())
# What every service folder holds, whatever else it adds: a newcomer finds a service's
# routes, consumers, published events, tables and settings under the same names everywhere.
SERVICE_FILES = (
    "README.md",
    "__init__.py",
    "api.py",
    "app.py",
    "consumers.py",
    "events.py",
    "models.py",
    "settings.py",
    "migrations/env.py",
)


@pytest.mark.parametrize("service", SERVICE_DIRS, ids=lambda p: p.name)
def test_every_service_has_the_same_top_level_shape(service: Path) -> None:
    missing = [name for name in SERVICE_FILES if not (service / name).exists()]
    assert missing == [], f"services/{service.name} lacks {missing}"


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


@pytest.mark.parametrize("service", SERVICE_DIRS, ids=lambda p: p.name)
def test_a_service_imports_no_other_service(service: Path) -> None:
    """Services meet only through events and HTTP: a consumer declares the fields it reads,
    never another service's models."""
    others = {f"services.{p.name}" for p in SERVICE_DIRS} - {f"services.{service.name}"}
    crossing = sorted(
        f"{path.relative_to(ROOT)}: {module}"
        for path in service.rglob("*.py")
        for module in imported_modules(path)
        if any(module == o or module.startswith(o + ".") for o in others)
    )
    assert crossing == []


@pytest.mark.parametrize("service", SERVICE_DIRS, ids=lambda p: p.name)
def test_events_py_declares_the_published_events_and_nothing_else(service: Path) -> None:
    """``events.py`` holds the service's event models and its catalog; it may lean on the
    service's vocabulary, and on nothing else of the service (``models.py`` imports it)."""
    own = {
        m
        for m in imported_modules(service / "events.py")
        if m.startswith(f"services.{service.name}")
    }
    assert own <= {f"services.{service.name}.vocabulary"}
    catalog = import_module(f"services.{service.name}.events").catalog
    assert isinstance(catalog, EventCatalog)
    assert catalog.service == service.name
    publisher = import_module(f"services.{service.name}.models").messaging.publisher
    assert publisher.catalog is catalog
