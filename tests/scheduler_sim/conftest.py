"""The simulator as it runs: a real uvicorn server on a free port (in a thread), a real local
HTTP receiver for its callbacks, and Chorus's deliveries built from calendar's own event
models and signed with the ``standardwebhooks`` package, as the webhooks service sends them."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import uvicorn
from standardwebhooks.webhooks import Webhook

from chassis.events import EventData
from services.calendar.events import (
    PostCancelled,
    PostScheduled,
    ScheduledMedia,
    ScheduledTarget,
    catalog,
)
from services.calendar.vocabulary import PostStatus
from tools.scheduler_sim.app import create_app
from tools.scheduler_sim.settings import SchedulerSimSettings

WAIT_SECONDS = 10.0


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


# The receiver of callbacks


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every request; answers 500 to the first ``failures`` of them, then 204."""

    url: str = ""
    failures: int = 0
    requests: list[Received] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def record(self, received: Received) -> int:
        with self._changed:
            self.requests.append(received)
            self._changed.notify_all()
            return 500 if len(self.requests) <= self.failures else 204

    def wait_for(self, count: int, kind: str | None = None) -> list[Received]:
        """The first ``count`` requests (of callback type ``kind``), waiting for them."""

        def matching() -> list[Received]:
            return [r for r in self.requests if kind is None or r.json()["type"] == kind]

        with self._changed:
            self._changed.wait_for(lambda: len(matching()) >= count, timeout=WAIT_SECONDS)
            found = matching()
        assert len(found) >= count, f"expected {count} {kind or 'requests'}, got {len(found)}"
        return found[:count]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            received = Received(
                {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
            )
            self.send_response(receiver.record(received))
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/scheduler"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# The simulator


@dataclass
class Sim:
    settings: SchedulerSimSettings
    client: httpx.Client

    def deliver(
        self,
        body: bytes,
        *,
        webhook_id: str | None = None,
        sent_at: datetime | None = None,
        secrets_used: tuple[str, ...] | None = None,
    ) -> httpx.Response:
        """POST a delivery signed as Chorus signs it (with each of ``secrets_used``)."""
        webhook_id = webhook_id or f"{uuid.uuid4()}"
        sent_at = sent_at or datetime.now(UTC)
        used = secrets_used or (self.settings.inbound_secret.get_secret_value(),)
        text = body.decode()
        signature = " ".join(Webhook(s).sign(webhook_id, sent_at, text) for s in used)
        headers = {
            "content-type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signature,
        }
        return self.client.post("/webhooks/chorus", content=body, headers=headers)

    def messages(self, **params: Any) -> list[dict[str, Any]]:
        response = self.client.get("/v1/messages", params=params)
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    def message(self, message_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/messages/{message_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def wait_for_state(self, message_id: str, state: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_SECONDS
        while (message := self.message(message_id))["state"] != state:
            assert time.monotonic() < deadline, f"{message_id} stayed {message['state']}"
            time.sleep(0.05)
        return message


StartSim = Callable[..., Sim]


@pytest.fixture
def start_sim(receiver: Receiver) -> Iterator[StartSim]:
    """Start a simulator with these settings (calling back to ``receiver``)."""
    running: list[tuple[uvicorn.Server, threading.Thread, httpx.Client]] = []

    def start(**overrides: Any) -> Sim:
        values: dict[str, Any] = {
            "inbound_secret": new_secret(),
            "callback_secret": new_secret(),
            "callback_url": receiver.url,
            "poll_interval_seconds": 0.1,
            "callback_backoff_seconds": 0.05,
        } | overrides
        settings = SchedulerSimSettings(**values)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(create_app(settings), log_level="warning", ws="none")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + WAIT_SECONDS
        while not server.started:
            assert thread.is_alive(), "the simulator stopped while starting"
            assert time.monotonic() < deadline, "the simulator did not start in time"
            time.sleep(0.01)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}")
        running.append((server, thread, client))
        return Sim(settings, client)

    yield start
    for server, thread, client in running:
        client.close()
        server.should_exit = True
        thread.join(WAIT_SECONDS)


# Chorus's deliveries


def envelope(post_id: uuid.UUID, data: EventData, *, time: datetime | None = None) -> bytes:
    event = catalog.envelope(str(post_id), data, None)
    if time is not None:
        event = event.model_copy(update={"time": time})
    return event.to_json()


def scheduled(
    post_id: uuid.UUID,
    *,
    accounts: dict[uuid.UUID, str],
    text: str = "Spring opening hours",
    publish_at: datetime | None = None,
    version: int = 1,
    media: bool = True,
) -> PostScheduled:
    """A ``post.scheduled`` for these accounts (id -> platform), an hour ahead by default."""
    publish_at = publish_at or datetime.now(UTC) + timedelta(hours=1)
    files = [
        ScheduledMedia(
            asset_id=uuid.uuid4(),
            url=f"https://chorus.example/assets/{uuid.uuid4()}?sig=abc",
            content_type="image/png",
            sha256="0" * 64,
            alt_text="Our front door",
        )
    ]
    return PostScheduled(
        id=post_id,
        district_id="d1",
        calendar_id=uuid.uuid4(),
        status=PostStatus.SCHEDULED,
        version=version,
        content_hash="c" * 64,
        title="Opening hours",
        publish_at=publish_at,
        timezone="Europe/Paris",
        local_publish_at=publish_at,
        campaign_id=None,
        approved_hash="a" * 64,
        targets=[
            ScheduledTarget(
                account_id=account_id,
                platform=platform,
                handle="@library",
                profile_url=None,
                text=f"{text} on {platform}",
                link="https://library.example/hours",
                media=files if media else [],
            )
            for account_id, platform in accounts.items()
        ],
    )


def cancelled(post_id: uuid.UUID, *, version: int = 1) -> PostCancelled:
    return PostCancelled(
        id=post_id,
        district_id="d1",
        calendar_id=uuid.uuid4(),
        status=PostStatus.CANCELLED,
        version=version,
        content_hash="c" * 64,
        previous_status=PostStatus.SCHEDULED,
        reason="The event was called off",
    )
