"""Events the webhooks service publishes on `chorus.webhooks.events`: none yet.

Each event it will publish is declared here as a `chassis.events.EventData` model and listed
in `catalog`; `/asyncapi.json` documents them.
"""

from __future__ import annotations

from chassis.events import EventCatalog

catalog = EventCatalog("webhooks", [])
