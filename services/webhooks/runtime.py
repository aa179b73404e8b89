"""What the webhooks service's code shares in one process besides the database: the address
guard, the box that seals endpoint secrets, the clock and the retries' jitter. Built once per app
(``app.state.webhooks``); tests replace the clock, the jitter and the guard's resolver there."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

from services.webhooks.address_guard import AddressGuard, AllowList
from services.webhooks.deliveries.schedule import Jitter, random_jitter
from services.webhooks.settings import WebhooksSettings
from services.webhooks.signing import SecretBox

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class WebhooksRuntime:
    settings: WebhooksSettings
    guard: AddressGuard
    box: SecretBox
    clock: Clock = system_clock
    jitter: Jitter = random_jitter

    @classmethod
    def of(cls, settings: WebhooksSettings) -> WebhooksRuntime:
        key = settings.secrets_key or settings.internal_key
        return cls(
            settings=settings,
            guard=AddressGuard(AllowList.parse(settings.allow_list)),
            box=SecretBox(key.get_secret_value()),
        )


def runtime_of(request: Request) -> WebhooksRuntime:
    runtime: WebhooksRuntime = request.app.state.webhooks
    return runtime


RuntimeDep = Annotated[WebhooksRuntime, Depends(runtime_of)]
