"""The AI SDK surface driven by the real AI SDK: each `tests/clients/ai-sdk/*.test.mjs` file runs under `node --test`
against this session's stack, with the exact versions pinned in that folder's package.json and lockfile
(`make clients` installs them: `npm ci`)."""

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ADMIN_KEY, API_KEY, Stack

CLIENTS = Path(__file__).parent / "clients" / "ai-sdk"
# Bounds for a busy machine, not expectations: each file takes a few seconds to half a minute when idle.
TIMEOUTS = {"browser.test.mjs": 420, "reset.test.mjs": 240}
FILES = [
    pytest.param(path.name, marks=pytest.mark.timeout(TIMEOUTS.get(path.name, 100) + 60))
    for path in sorted(CLIENTS.glob("*.test.mjs"))
]


@pytest.mark.parametrize("name", FILES)
def test_ai_sdk_client(stack: Stack, name: str) -> None:
    if shutil.which("node") is None or not (CLIENTS / "node_modules").is_dir():
        pytest.fail("the AI SDK clients are not installed: run `make clients` (Node.js 20.19+ and npm)")
    worker = stack.group.procs["worker-1"]
    env = {
        **os.environ,
        "CHATRELAY_API_A": stack.api_a,
        "CHATRELAY_API_B": stack.api_b,
        "CHATRELAY_DEMO_URL": stack.demo_url,
        "CHATRELAY_API_KEY": API_KEY,
        "CHATRELAY_ADMIN_KEY": ADMIN_KEY,
        # reset.test.mjs pauses the worker (SIGSTOP) to make its lease lapse, as a hung worker's would.
        "CHATRELAY_WORKER_PID": str(worker.pid),
    }
    timeout = TIMEOUTS.get(name, 100)
    try:
        done = subprocess.run(
            ["node", "--test", "--test-concurrency=1", f"--test-timeout={timeout * 1000}", name],
            cwd=CLIENTS,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout + 20,
            check=False,
        )
    finally:
        # Whatever became of the test, the session's one worker runs again.
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGCONT)
    assert done.returncode == 0, f"node --test {name} failed:\n{done.stdout}\n{done.stderr}"
