"""The contract package imports neither FastAPI nor openai; the API never imports the worker or its SDK."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("contract.store", ["fastapi", "openai", "arq", "api", "worker"]),
        ("contract.events", ["fastapi", "openai", "arq", "api", "worker"]),
        ("contract.settings", ["fastapi", "openai", "arq", "api", "worker"]),
        ("contract.listing", ["fastapi", "openai", "arq", "api", "worker"]),
        ("contract.workers", ["fastapi", "openai", "arq", "api", "worker"]),
        ("contract.stats", ["fastapi", "openai", "arq", "api", "worker"]),
        ("contract.logs", ["fastapi", "openai", "arq", "api", "worker"]),
        ("contract.metrics", ["fastapi", "openai", "arq", "api", "worker"]),
        ("contract.recovery", ["fastapi", "openai", "arq", "api", "worker"]),
        # The command line reads Redis through the contract: it runs where neither the API nor a worker does.
        ("cli.main", ["fastapi", "openai", "arq", "api", "worker", "demo_upstream"]),
        ("api.main", ["openai", "worker", "demo_upstream"]),
        ("worker.main", ["fastapi", "api", "demo_upstream"]),
    ],
)
def test_import_boundaries(module: str, forbidden: list[str]) -> None:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "CHATRELAY_KEY_PREFIX": "x"},
        ).stdout.split()
    )
    leaked = [name for name in loaded if name.split(".")[0] in forbidden]
    assert leaked == [], f"{module} imports {sorted(leaked)[:5]}"
