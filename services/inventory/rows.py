"""Pydantic models (events, snapshots, responses) built from the row they describe.

A model that repeats fields of a row takes them from the row by name, so each field is named
once, in the model, instead of in a ``name=row.name`` list at every place that builds it; the
caller gives only what the row does not hold (or holds under another name). Validation is the
model's own, exactly as when it is built from keyword arguments."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

ModelT = TypeVar("ModelT", bound=BaseModel)


def from_row(model: type[ModelT], row: object, **values: Any) -> ModelT:
    """`model` from the attributes of `row` named as its fields, `values` added or taking their
    place; a field that neither holds keeps its default (or fails validation, as it should).

    `row` must have those attributes loaded (an ORM row refreshed after its flush): reading one
    that is expired would load it lazily, which async sessions refuse."""
    fields = {
        name: getattr(row, name)
        for name in model.model_fields
        if name not in values and hasattr(row, name)
    }
    return model.model_validate({**fields, **values})
