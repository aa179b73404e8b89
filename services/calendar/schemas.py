"""Pieces the request and response models of several calendar modules share."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Query
from pydantic import BaseModel, field_validator

from chassis.principal import DISTRICT_ID_PATTERN

ModelT = TypeVar("ModelT", bound=BaseModel)


def refuse_null(*fields: str, message: str) -> Any:
    """A validator for fields of a partial update that may be left out but not sent as null.
    Pydantic validates only the values sent, never a default: a field left out stays None
    (keep the stored value) and an explicit null is refused (422) with `message`."""

    def not_null(value: object) -> object:
        if value is None:
            raise ValueError(message)
        return value

    return field_validator(*fields)(not_null)


def district_query(description: str) -> Any:
    """A query parameter naming a district by its id, described by the list it filters."""
    return Query(pattern=DISTRICT_ID_PATTERN, description=description)


def response_of(model: type[ModelT], row: object, **derived: object) -> ModelT:
    """`model` filled from the row's attributes of the same names, and from `derived` for the
    fields the row does not hold (a status computed from it, a URL, the parent's district)."""
    stored = {name: getattr(row, name) for name in model.model_fields if name not in derived}
    return model.model_validate({**stored, **derived})
