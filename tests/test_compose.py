"""compose.yaml validates against the compose specification (no Docker needed)."""

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_file_validates_against_the_compose_spec() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(ROOT / "compose.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_the_documented_processes_with_healthchecks() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert services["worker"]["command"] == ["arq", "worker.main.WorkerSettings"]
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "arq", "worker.main.WorkerSettings", "--check"]
    assert "ports" not in services["worker"], "workers scale with --scale worker=N: no fixed host port"
    assert "--appendonly" in services["redis"]["command"]
    assert "/data" in services["redis"]["volumes"][0]
    for name in ("api-1", "api-2", "worker"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "healthcheck" in services[name]
    for name in ("api-1", "api-2"):
        assert "OPENAI_API_KEY" not in services[name]["environment"], "the API never gets the model key"
        assert "ports" not in services[name], "the replicas are reached through the proxy"
        assert "/readyz" in " ".join(services[name]["healthcheck"]["test"])
        assert ":?" in services[name]["environment"]["CHATRELAY_SECRET_KEY"], "replicas must share the key"
    assert services["api-1"] == services["api-2"]
    assert ":?" in services["worker"]["environment"]["OPENAI_API_KEY"]


def test_compose_puts_the_tested_nginx_config_in_front_of_both_replicas() -> None:
    proxy = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert "bookworm" in proxy["image"]
    assert proxy["volumes"] == ["./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro"]
    assert {name for name, dep in proxy["depends_on"].items() if dep["condition"] == "service_healthy"} == {
        "api-1",
        "api-2",
    }
    assert "healthcheck" in proxy
    config = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server api-1:8000" in config
    assert "server api-2:8000" in config
    assert "listen 8080;" in config
    assert proxy["ports"][0].endswith(":8080")
    for directive in ("proxy_buffering off;", "proxy_http_version 1.1;", "gzip off;", "proxy_read_timeout 1h;"):
        assert directive in config


def test_worker_check_reads_a_health_key_per_host() -> None:
    """`arq --check` in a worker container reads the key its own worker writes, not one all replicas share."""
    code = "import socket, worker.main as m; print(m.WorkerSettings.health_check_key, socket.gethostname())"
    env = {"PATH": "/usr/bin:/bin", "CHATRELAY_KEY_PREFIX": "cp", "CHATRELAY_WORKER_METRICS_PORT": "0"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    key, host = out.stdout.split()
    assert key == f"cp:queue:health-check:{host}"
