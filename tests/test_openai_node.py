"""The openai npm client's tests (`tests/clients/openai-node/`, `node --test`) against this session's real stack.
`make test` installs the pinned client first (`make clients`, an `npm ci`)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import API_KEY, Stack

CLIENT = Path(__file__).parent / "clients" / "openai-node"


@pytest.mark.timeout(300)
def test_openai_node_client(stack: Stack) -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is needed for the openai npm client's tests"
    assert (CLIENT / "node_modules" / "openai").is_dir(), "run `make clients` (npm ci) first"
    env = {
        **os.environ,
        "CHATRELAY_API_A": stack.api_a,
        "CHATRELAY_API_B": stack.api_b,
        "CHATRELAY_API_KEY": API_KEY,
        "CHATRELAY_DEMO_URL": stack.demo_url,
    }
    run = subprocess.run([node, "--test"], cwd=CLIENT, env=env, capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
