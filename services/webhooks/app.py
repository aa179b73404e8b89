"""The webhooks service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from chassis.app import ServiceParts, create_service_app
from services.webhooks.deliveries.worker import with_delivery_worker
from services.webhooks.runtime import WebhooksRuntime
from services.webhooks.settings import WebhooksSettings


def create_app(settings: WebhooksSettings | None = None) -> FastAPI:
    settings = settings or WebhooksSettings()  # internal_key comes from the environment
    runtime = WebhooksRuntime.of(settings)

    def configure(app: FastAPI) -> None:
        app.state.webhooks = runtime
        # Deliveries run on a job queue of their own, beside the chassis's background work.
        app.router.lifespan_context = with_delivery_worker(app.router.lifespan_context, runtime)

    return create_service_app(settings, ServiceParts.of("services.webhooks"), configure=configure)
