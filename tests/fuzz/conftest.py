"""Settings of the fuzz run, and the line that tells how to replay it.

CHORUS_FUZZ_EXAMPLES  generated cases per operation and phase (default 100, which keeps the
                      three services within a few minutes on two cores)
CHORUS_FUZZ_SEED      the run's seed: an integer replays a run; "random" draws one (the
                      default is fixed, so CI is repeatable)

Both are written at the end of the pytest run, whatever the outcome, and into each failure.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

import pytest

DEFAULT_EXAMPLES = 100
DEFAULT_SEED = 20261129


@dataclass
class FuzzSettings:
    examples: int
    seed: int
    runs: list[str] = field(default_factory=list)

    def replay(self) -> str:
        return f"CHORUS_FUZZ_SEED={self.seed} CHORUS_FUZZ_EXAMPLES={self.examples}"


def _settings() -> FuzzSettings:
    examples = int(os.environ.get("CHORUS_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
    if examples < 1:
        raise pytest.UsageError("CHORUS_FUZZ_EXAMPLES must be 1 or more")
    seed_text = os.environ.get("CHORUS_FUZZ_SEED", str(DEFAULT_SEED))
    seed = secrets.randbelow(2**32) if seed_text == "random" else int(seed_text)
    return FuzzSettings(examples, seed)


_fuzz_settings = pytest.StashKey[FuzzSettings]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_fuzz_settings] = _settings()


@pytest.fixture(scope="session")
def fuzz_settings(pytestconfig: pytest.Config) -> FuzzSettings:
    return pytestconfig.stash[_fuzz_settings]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    settings = config.stash.get(_fuzz_settings, None)
    if settings is None or not settings.runs:
        return
    terminalreporter.section("schemathesis")
    for line in settings.runs:
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"replay with: {settings.replay()}")
