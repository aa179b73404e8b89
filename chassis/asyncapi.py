"""The AsyncAPI 3.0 document of what a service publishes, built from its event catalog.

Invariants:
- One channel, ``events``: the service's topic ``chorus.<service>.events``. One operation,
  ``send``, lists every message of the catalog, and nothing else.
- One message per event type, keyed by ``<aggregate>.<verb>``; its payload is the CloudEvents
  envelope (structured mode) whose ``type`` is that event's and whose ``data`` is the JSON
  Schema of its model, as the model serialises (``mode="serialization"``).
- Schemas are JSON Schema draft 07 (the AsyncAPI Schema Object's base): nested models are
  hoisted into ``components.schemas`` and referenced from there, never through ``$defs``.
- Data schemas leave ``additionalProperties`` open: a consumer reading with its own library
  must keep working when a later version adds a field.
"""

from __future__ import annotations

import inspect
from typing import Any

from pydantic.json_schema import models_json_schema

from chassis.events import EventCatalog, EventData
from chassis.kafka import CLOUDEVENTS_CONTENT_TYPE
from chassis.settings import events_topic

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
CHANNEL = "events"
ENVELOPE = "CloudEvent"
REF_TEMPLATE = "#/components/schemas/{model}"


def asyncapi_document(catalog: EventCatalog, *, description: str, version: str) -> dict[str, Any]:
    messages = {model.published_as: _message(catalog, model) for model in catalog}
    channel_messages = {key: {"$ref": f"#/components/messages/{key}"} for key in messages}
    document: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": f"Chorus {catalog.service} events",
            "version": version,
            "description": (
                f"The events the {catalog.service} service publishes, each a CloudEvent "
                f"(structured JSON mode) whose Kafka key is its subject. {description}"
            ),
        },
        "defaultContentType": CLOUDEVENTS_CONTENT_TYPE,
        "channels": {
            CHANNEL: {
                "address": events_topic(catalog.service),
                "title": f"{catalog.service} events",
                "messages": channel_messages,
            }
        },
        "operations": {},
        "components": {"messages": messages, "schemas": _schemas(catalog)},
    }
    if messages:
        document["operations"]["publish"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{CHANNEL}"},
            "summary": f"The {catalog.service} service publishes its events.",
            "messages": [{"$ref": f"#/channels/{CHANNEL}/messages/{key}"} for key in messages],
        }
    return document


def _message(catalog: EventCatalog, model: type[EventData]) -> dict[str, Any]:
    summary, _, details = inspect.cleandoc(model.__doc__ or model.__name__).partition("\n\n")
    message: dict[str, Any] = {
        "name": catalog.type_of_model(model),
        "title": model.__name__,
        "summary": " ".join(summary.split()),
        "contentType": CLOUDEVENTS_CONTENT_TYPE,
        "payload": {
            "allOf": [
                {"$ref": f"#/components/schemas/{ENVELOPE}"},
                {
                    "type": "object",
                    "properties": {
                        "source": {"const": catalog.source},
                        "type": {"const": catalog.type_of_model(model)},
                        "data": {"$ref": REF_TEMPLATE.format(model=model.__name__)},
                    },
                },
            ]
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The event's subject."},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }
    if details:
        message["description"] = " ".join(details.split())
    return message


def _schemas(catalog: EventCatalog) -> dict[str, Any]:
    models = list(catalog)
    top, defs = models_json_schema(
        [(model, "serialization") for model in models], ref_template=REF_TEMPLATE
    )
    schemas: dict[str, Any] = {ENVELOPE: _envelope_schema()}
    for name, schema in defs.get("$defs", {}).items():
        schema.pop("additionalProperties", None)
        schemas[name] = schema
    for model in models:
        # A model's entry in `top` is a $ref into the hoisted definitions, by its class name.
        if REF_TEMPLATE.format(model=model.__name__) != top[(model, "serialization")]["$ref"]:
            raise ValueError(f"two event models are named {model.__name__}")
    return schemas


def _envelope_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "title": "CloudEvent",
        "description": "A CloudEvents 1.0 envelope in structured JSON mode.",
        "required": ["specversion", "id", "source", "type", "subject", "time", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "format": "uuid"},
            "source": {"type": "string", "format": "uri-reference"},
            "type": {"type": "string"},
            "subject": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": "application/json"},
            "traceparent": {
                "type": "string",
                "description": "W3C trace context of the request that caused the event.",
            },
            "data": {"type": "object"},
        },
    }
