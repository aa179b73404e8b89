"""The webhooks service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from chassis.app import create_service_app
from services.webhooks.api import router
from services.webhooks.consumers import consumers
from services.webhooks.deliveries.worker import with_delivery_worker
from services.webhooks.jobs import periodic_jobs
from services.webhooks.models import districts, messaging
from services.webhooks.runtime import WebhooksRuntime
from services.webhooks.settings import WebhooksSettings

SERVICE_DESCRIPTION = (
    "Outbound subscriptions with signed, retried and replayable deliveries, and verified "
    "inbound scheduler callbacks."
)


def create_app(settings: WebhooksSettings | None = None) -> FastAPI:
    settings = settings or WebhooksSettings()  # internal_key comes from the environment
    runtime = WebhooksRuntime.of(settings)

    def configure(app: FastAPI) -> None:
        app.state.webhooks = runtime
        # Deliveries run on a job queue of their own, beside the chassis's background work.
        app.router.lifespan_context = with_delivery_worker(app.router.lifespan_context, runtime)

    return create_service_app(
        settings=settings,
        title="Chorus webhooks",
        description=SERVICE_DESCRIPTION,
        router=router,
        districts=districts,
        messaging=messaging,
        consumers=consumers,
        periodic_jobs=periodic_jobs,
        configure=configure,
    )
