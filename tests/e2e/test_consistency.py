"""Reading your own writes across services, through the gateway of `chorus dev`'s real
processes: a district created in inventory, then at once its approval policy set in approvals
with the creation's consistency token, succeeds every time. The figures of the waits are
logged (`pytest -o log_cli=true --log-cli-level=INFO` shows them; the README quotes them)."""

from __future__ import annotations

import logging
import statistics
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest

from chassis.consistency import encode_token
from chassis.districts import DISTRICT_CREATED
from tests.e2e.test_dev_run import dev_ports, dev_run

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)

TRIES = 50
POLICY = {"steps": [{"key": "review", "name": "Review", "role": "district_manager"}]}


def waited_ms(response: httpx.Response) -> float:
    """The wait the service reports in ``Server-Timing`` (0 when it had nothing to wait for)."""
    timing = response.headers.get("server-timing", "")
    return float(timing.split("dur=")[1]) if "consistency;dur=" in timing else 0.0


def test_create_a_district_then_at_once_set_its_policy() -> None:
    state = Path(tempfile.mkdtemp(prefix="chorus-consistency-e2e-")) / ".chorus"
    with dev_run(state, dev_ports()) as run, httpx.Client(timeout=30) as http:
        auth = {"Authorization": f"Bearer {run.token}"}
        waits = []
        for attempt in range(TRIES):
            district = f"c{attempt}-{uuid.uuid4().hex[:6]}"
            created = http.post(
                f"{run.gateway}/api/inventory/districts",
                json={"id": district, "name": district, "kind": "district", "parent_id": "hq"},
                headers=auth,
            )
            assert created.status_code == 201, created.text
            token = created.headers["chorus-consistency"]
            policy = http.put(
                f"{run.gateway}/api/approvals/policies/post",
                params={"district_id": district},
                json=POLICY,
                headers={**auth, "Chorus-Consistency": token},
            )
            assert policy.status_code in (200, 201), (attempt, policy.text)
            waits.append(waited_ms(policy))
        log.info(
            "consistency wait over %d tries: median %.1f ms, max %.1f ms",
            TRIES,
            statistics.median(waits),
            max(waits),
        )

        # An event that never comes: the answer says so after the bound, rather than a 404.
        never = encode_token([(DISTRICT_CREATED, uuid.uuid4())])
        late = http.get(
            f"{run.gateway}/api/approvals/policies",
            headers={**auth, "Chorus-Consistency": never},
        )
        assert late.status_code == 503, late.text
        assert late.json()["type"].endswith("/not-yet-consistent")
        assert late.headers["retry-after"] == "1"
