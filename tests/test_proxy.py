"""The shipped nginx configuration (`deploy/nginx.conf`) in front of the stack's two API processes.

The file under test is the one compose mounts, with only the upstream `server` addresses and the listen port
substituted; a small main configuration around it gives nginx its own prefix, pid and temp directories, so it
runs without root. Debian's `nginx` package provides the binary (`.ci/run` installs it).
"""

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from cli.processes import free_port, wait_for_port
from tests.conftest import AUTH, Stack, create_stream, upstream_record, wait_until
from tests.sse_client import SseEvent, assemble, iter_sse, read_events

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def render(config: str, api_a: str, api_b: str, port: int) -> str:
    """`deploy/nginx.conf` with the stack's API addresses and a free port; nothing else changes."""
    replacements = [
        (r"server api-1:8000\b", f"server {api_a.removeprefix('http://')}"),
        (r"server api-2:8000\b", f"server {api_b.removeprefix('http://')}"),
        (r"listen 8080;", f"listen 127.0.0.1:{port};"),
    ]
    for pattern, replacement in replacements:
        config, count = re.subn(pattern, replacement, config)
        assert count == 1, pattern
    return config


def main_config(prefix: Path) -> str:
    temp = " ".join(
        f"{kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
daemon off;
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 256; }}
http {{
    {temp}
    log_format upstream '$request_method $uri $status $upstream_addr';
    access_log {prefix / "access.log"} upstream;
    # As a distribution's default might: the SSE location must still send event streams uncompressed.
    gzip on;
    gzip_types text/event-stream application/json;
    include {prefix / "chatrelay.conf"};
}}
"""


@pytest.fixture(scope="module")
def proxy(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    if not os.path.exists(NGINX):
        pytest.skip("nginx is not installed (apt-get install nginx; .ci/run does)")
    prefix = tmp_path_factory.mktemp("nginx")
    port = free_port()
    shipped = (ROOT / "deploy" / "nginx.conf").read_text()
    (prefix / "chatrelay.conf").write_text(render(shipped, stack.api_a, stack.api_b, port))
    (prefix / "nginx.conf").write_text(main_config(prefix))
    args = [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")]
    check = subprocess.run([*args, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert "syntax is ok" in check.stderr
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}", prefix
    finally:
        proc.terminate()
        proc.wait(10)


async def test_answer_through_the_proxy_unbuffered_and_resumed_on_the_other_replica(
    proxy: tuple[str, Path], client: httpx.AsyncClient, stack: Stack
) -> None:
    url, prefix = proxy
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=AUTH) as through:
        stream_id = await create_stream(through, model="chatrelay-demo?tokens=150&delay_ms=15")
        events_url = f"/api/streams/{stream_id}/events"
        first: list[SseEvent] = []
        status_at_first_delta = None
        async with through.stream("GET", events_url, headers={"Accept-Encoding": "gzip"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert "content-encoding" not in response.headers
            first_delta_at = 0.0
            async for item in iter_sse(response):
                if isinstance(item, str):
                    continue
                first.append(item)
                if item.event == "delta" and status_at_first_delta is None:
                    first_delta_at = time.monotonic()
                    # Asked of the API directly: the answer is still being written when its first event arrives.
                    status_at_first_delta = (await client.get(f"/api/streams/{stream_id}")).json()["status"]
                if len(first) >= 12:
                    break  # the connection drops mid-answer
        assert status_at_first_delta == "running"
        status, rest, _ = await read_events(through, events_url, last_event_id=first[-1].id)
        done_at = time.monotonic()
        assert status == 200
        assert rest[-1].event == "done"
        assert done_at - first_delta_at > 1.0, "events arrived all at once: the proxy buffered them"
    sent = (await upstream_record(stack, stream_id))["sent_text"]
    assert assemble(first + rest) == sent
    ids = [e.id for e in first + rest]
    assert len(set(ids)) == len(ids)

    # Round robin: the resumed request went to the other API process than the first read.
    served: list[str] = []

    async def both_logged() -> bool:
        # nginx logs a request when it ends, which can be after the client has read its last byte.
        log = (prefix / "access.log").read_text().splitlines()
        served[:] = [line.split()[-1] for line in log if line.startswith(f"GET {events_url} ")]
        return len(served) >= 2

    await wait_until(both_logged, "nginx logs both reads")
    assert len(served) == 2
    assert served[0] != served[1]
    assert {served[0], served[1]} == {stack.api_a.removeprefix("http://"), stack.api_b.removeprefix("http://")}


async def test_ai_sdk_stream_through_the_proxy_unbuffered(proxy: tuple[str, Path], stack: Stack) -> None:
    url, _ = proxy
    chat = {
        "id": "through-the-proxy",
        "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}],
        "model": "chatrelay-demo?tokens=100&delay_ms=15",
    }
    arrivals: list[float] = []
    text: list[str] = []
    async with (
        httpx.AsyncClient(base_url=url, timeout=30, headers=AUTH) as through,
        through.stream("POST", "/api/chat", json=chat, headers={"Accept-Encoding": "gzip"}) as response,
    ):
        assert response.status_code == 200
        assert "content-encoding" not in response.headers
        stream_id = response.headers["x-chatrelay-stream-id"]
        async for line in response.aiter_lines():
            if line.startswith('data: {"type":"text-delta"'):
                arrivals.append(time.monotonic())
                text.append(orjson.loads(line[6:])["delta"])
    assert arrivals[-1] - arrivals[0] > 1.0, "the chunks arrived all at once: the proxy buffered them"
    assert "".join(text) == (await upstream_record(stack, stream_id))["sent_text"]


async def test_proxy_serves_the_api_but_hides_metrics(proxy: tuple[str, Path]) -> None:
    url, _ = proxy
    async with httpx.AsyncClient(base_url=url, timeout=10) as through:
        assert (await through.get("/healthz")).json() == {"status": "ok"}
        assert (await through.get("/readyz")).status_code == 200
        assert (await through.get("/metrics")).status_code == 404
        missing = await through.get("/api/streams/AAAAAAAAAAAAAAAAAAAAAA", headers=AUTH)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"


async def test_a_browser_posts_through_the_proxy_from_its_own_origin(proxy: tuple[str, Path]) -> None:
    """The CSRF check matches the browser's Origin against the Host the proxy passes on, port included."""
    url, _ = proxy
    chat = {"messages": [{"role": "user", "content": "hi"}], "model": "chatrelay-demo?tokens=3&delay_ms=0"}
    async with httpx.AsyncClient(base_url=url, timeout=10) as browser:
        own = await browser.post("/api/streams", json=chat, headers={"Origin": url})
        assert own.status_code == 202, own.text
        assert own.cookies.get("chatrelay_session")
        foreign = await browser.post("/api/streams", json=chat, headers={"Origin": "http://127.0.0.1:1"})
        assert foreign.status_code == 403
