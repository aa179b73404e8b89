"""Query strings, read the same way on every route of every service.

Two rules, both applied by ``create_service_app``:

- A query parameter the route does not declare is refused with 422 ``unknown-query-parameter``,
  naming the unknown parameters and the accepted ones. A misspelt filter
  (``?district=spain`` where the route takes ``district_id``) would otherwise be ignored and
  widen a list silently. The check is an app-wide dependency, so it runs on every API route
  (operational and public ones included) before the principal is read or anything is looked
  up, like the request guard's refusals. The names a route declares are those of its dependant:
  its own query parameters, those of its dependencies and sub-dependencies (``PageDep``'s
  ``limit`` and ``cursor``), aliases (``from``) and the fields of query models; they are
  gathered once per route, on the first request that carries a query string.
- A list filter typed ``CommaSeparated[X]`` takes repeated values, comma-separated ones, or a
  mix: ``?status=a&status=b``, ``?status=a,b`` and ``?status=a,b&status=c`` all work. Each
  item is validated as ``X`` (an unknown value is a 422 as before) and the list's
  ``max_length`` counts the items after splitting. Only for items that cannot contain a comma
  (vocabularies, ids, keys): free text is never split. The OpenAPI parameter says so
  (``document_comma_separated``).
"""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from fastapi import FastAPI, Request, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from pydantic import AliasChoices, BaseModel, BeforeValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from starlette.routing import BaseRoute

from chassis.errors import Unprocessable

COMMA_NOTE = "Repeat the parameter or separate values with commas (or both)."

ItemT = TypeVar("ItemT")


class UnknownQueryParameter(Unprocessable):
    type_slug = "unknown-query-parameter"
    title = "Unknown query parameter"


def declared_query_names(dependant: Dependant) -> frozenset[str]:
    """The query parameter names a request to this dependant may carry: its own, those of
    every dependency below it, and each field of a query model under the name it is read by."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        for field in current.query_params:
            model = _query_model(field.field_info)
            if model is None:
                names.add(field.alias)
                if isinstance(field.field_info.validation_alias, str):
                    names.add(field.field_info.validation_alias)
            else:
                names.update(_model_field_names(model))
        pending.extend(current.dependencies)
    return frozenset(names)


def _query_model(info: Any) -> type[BaseModel] | None:
    """The model of a ``Annotated[Model, Query()]`` parameter (FastAPI reads each of its fields
    as a query parameter), or None for a plain parameter."""
    if not isinstance(info, params.Query):
        return None
    annotation = info.annotation
    if get_origin(annotation) in (Union, UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        annotation = members[0] if len(members) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _model_field_names(model: type[BaseModel]) -> set[str]:
    by_name = bool(
        model.model_config.get("validate_by_name") or model.model_config.get("populate_by_name")
    )
    names: set[str] = set()
    for name, info in model.model_fields.items():
        if isinstance(info.validation_alias, str):
            names.add(info.validation_alias)
        elif isinstance(info.validation_alias, AliasChoices):
            names.update(c for c in info.validation_alias.choices if isinstance(c, str))
        else:
            names.add(info.alias or name)
        if by_name:
            names.add(name)
    return names


class QueryParameterGate:
    """The app-wide dependency that refuses a query parameter its route does not declare.

    A route's names come from its dependant as the app serves it (dependencies given when its
    router was included count too), found through ``iter_route_contexts`` and kept per route.
    """

    def __init__(self) -> None:
        # By the route's identity: routes compare by value and do not hash.
        self._declared: dict[int, frozenset[str]] | None = None

    async def __call__(self, request: Request) -> None:
        if not request.query_params:
            return
        route: BaseRoute = request.scope["route"]
        declared = self._names_of(request.app, route)
        unknown = sorted({name for name in request.query_params if name not in declared})
        if unknown:
            accepted = sorted(declared)
            raise UnknownQueryParameter(
                f"This route does not take the query parameter(s) {', '.join(unknown)}; "
                f"it takes {', '.join(accepted) if accepted else 'none'}.",
                unknown_parameters=unknown,
                accepted_parameters=accepted,
            )

    def _names_of(self, app: FastAPI, route: BaseRoute) -> frozenset[str]:
        if self._declared is None:
            declared: dict[int, frozenset[str]] = {}
            for context in iter_route_contexts(app.routes):
                dependant = getattr(context, "dependant", None)
                if isinstance(dependant, Dependant):
                    # One route included twice takes the names of either inclusion.
                    key = id(context.original_route)
                    names = declared.get(key, frozenset())
                    declared[key] = names | declared_query_names(dependant)
            self._declared = declared
        if id(route) not in self._declared:
            # Added after the first request: its own dependant is what it declares.
            dependant = getattr(route, "dependant", None)
            self._declared[id(route)] = (
                declared_query_names(dependant) if isinstance(dependant, Dependant) else frozenset()
            )
        return self._declared[id(route)]


def _split_on_commas(value: object) -> object:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        return [
            part
            for item in value
            for part in (item.split(",") if isinstance(item, str) else (item,))
        ]
    return value


class _CommaNote:
    """Marks the list's JSON Schema, which ``document_comma_separated`` turns into a sentence of
    the parameter's description."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["description"] = COMMA_NOTE
        return schema


CommaSeparated = Annotated[list[ItemT], BeforeValidator(_split_on_commas), _CommaNote()]
"""A list query parameter that takes repeated and comma-separated values alike."""


def document_comma_separated(schema: dict[str, Any]) -> None:
    """Say on each ``CommaSeparated`` query parameter of the OpenAPI document that commas work."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", ()):
                if parameter.get("in") == "query" and _is_comma_separated(parameter["schema"]):
                    description = parameter.get("description", "").rstrip(".")
                    parameter["description"] = (
                        f"{description}. {COMMA_NOTE}" if description else COMMA_NOTE
                    )


def _is_comma_separated(schema: dict[str, Any]) -> bool:
    branches = [schema, *schema.get("anyOf", ())]
    return any(branch.get("description") == COMMA_NOTE for branch in branches)
