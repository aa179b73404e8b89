"""The README's quick start, run as a newcomer pastes it: its shell block, taken from the
README as it is, runs in bash against a fresh `chorus dev` and ends with a scheduled post.

Only the gateway's port differs (the test's run picks free ports), and the checkout's
`.venv/bin/chorus` is this interpreter's: the block runs in a folder that stands for the
checkout, holding the run's `.chorus/` state and a `.venv` link to the test's environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.e2e.test_dev_run import dev_ports, dev_run

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- quickstart:"
DEFAULT_API = "http://localhost:8000/api"


def quickstart_block() -> str:
    readme = (ROOT / "README.md").read_text()
    after = readme[readme.index(MARKER) :]
    block = re.search(r"```sh\n(.*?)```", after, re.DOTALL)
    assert block, "the quick start's ```sh block follows its marker"
    return block.group(1)


def test_the_block_names_the_gateway_of_make_run() -> None:
    assert f"API={DEFAULT_API}\n" in quickstart_block()


def test_the_readme_quick_start_ends_with_a_scheduled_post() -> None:
    checkout = Path(tempfile.mkdtemp(prefix="chorus-quickstart-"))
    (checkout / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    ports = dev_ports()
    with dev_run(checkout / ".chorus", ports) as run:
        script = quickstart_block().replace(DEFAULT_API, f"{run.gateway}/api")
        # A newcomer's shell: none of the run's variables, the checkout's code importable.
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("CHORUS_STATE_DIR", "GATEWAY_JWT_SECRET")
        }
        result = subprocess.run(
            ["bash", "-e", "-c", script],
            cwd=checkout,
            env={**env, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "scheduled", result.stdout
