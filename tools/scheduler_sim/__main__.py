"""``python -m tools.scheduler_sim``: serve the simulator with its ``SCHEDULER_SIM_*`` settings."""

from __future__ import annotations

import logging

import uvicorn

from tools.scheduler_sim.app import create_app
from tools.scheduler_sim.settings import SchedulerSimSettings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = SchedulerSimSettings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
