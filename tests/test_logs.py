"""Logs: JSON lines from the API and the worker, the stream id on every line about a stream, no secrets and no
prompt text. (The upstream key is also checked in `test_secrets`.)"""

import json
import subprocess
import sys
from typing import Any

import httpx

from cli.processes import free_port
from tests.conftest import AUTH, UPSTREAM_KEY, Stack, create_stream, wait_until
from tests.sse_client import read_events


def json_lines(stack: Stack, name: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stack.group.log_text(name).splitlines() if line.startswith("{")]
    assert lines, f"{name} logged no JSON lines"
    return lines


def about(lines: list[dict[str, Any]], stream_id: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("stream_id") == stream_id]


async def test_logs_follow_a_stream_across_api_and_worker_by_its_id(
    client: httpx.AsyncClient, client_b: httpx.AsyncClient, stack: Stack
) -> None:
    prompt = "prompt-canary-7f3a9 please keep this out of the logs"
    done = await create_stream(client, prompt, model="chatrelay-demo?tokens=20&delay_ms=1")
    _, events, _ = await read_events(client, f"/api/streams/{done}/events")
    assert events[-1].event == "done"
    failed = await create_stream(client, prompt, model="chatrelay-demo?status=400")
    await read_events(client, f"/api/streams/{failed}/events")
    cancelled = await create_stream(client, prompt, model="chatrelay-demo?tokens=3000&delay_ms=5")
    _, first, _ = await read_events(client, f"/api/streams/{cancelled}/events", stop_after=3)
    await client_b.post(f"/api/streams/{cancelled}/cancel", json={})
    _, rest, _ = await read_events(client, f"/api/streams/{cancelled}/events", last_event_id=first[-1].id)
    assert rest[-1].event == "cancelled"

    async def last_lines_logged() -> bool:
        # A process logs the end of a stream after the terminal event went out, so after a reader saw it.
        api_a, worker = json_lines(stack, "api-a"), json_lines(stack, "worker-1")
        return (
            any(line["message"].startswith("SSE response ended (terminal)") for line in about(api_a, done))
            and any(" done: " in line["message"] for line in about(worker, done))
            and any("upstream_rejected" in line["message"] for line in about(worker, failed))
            and any("cancelled after" in line["message"] for line in about(worker, cancelled))
        )

    await wait_until(last_lines_logged, "the API and the worker log the end of each stream")

    api_a, api_b, worker = (json_lines(stack, name) for name in ("api-a", "api-b", "worker-1"))
    for line in api_a + worker:
        assert {"ts", "level", "logger", "service", "message"} <= line.keys()

    api_messages = [line["message"] for line in about(api_a, done)]
    assert any(m.startswith("stream created") for m in api_messages)
    assert any(m.startswith("SSE response ended (terminal)") for m in api_messages)
    worker_lines = about(worker, done)
    assert any("attempt 1 started" in line["message"] for line in worker_lines)
    assert any(" done: " in line["message"] for line in worker_lines)
    assert all(line["service"] == "worker" for line in worker_lines)

    error_lines = [line for line in about(worker, failed) if line["level"] == "warning"]
    assert any("upstream_rejected" in line["message"] for line in error_lines)
    assert any("cancel requested" in line["message"] for line in about(api_b, cancelled))
    assert any("cancelled after" in line["message"] for line in about(worker, cancelled))

    # Every line that names one of these streams carries its id as a field, whatever logged it (arq, uvicorn).
    for line in api_a + api_b + worker:
        for stream_id in (done, failed, cancelled):
            if stream_id in line["message"]:
                assert line.get("stream_id") == stream_id, line

    for name in ("api-a", "api-b", "worker-1"):
        text = stack.group.log_text(name)
        assert "prompt-canary-7f3a9" not in text
        assert UPSTREAM_KEY not in text


async def test_access_log_scrubs_tokens_from_query_strings(stack: Stack) -> None:
    # The test stack runs without access logs (`--no-access-log`, as `chatrelay dev`); production keeps them.
    url = stack.group.start_api(free_port(), "api-access-log", access_log=True)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10, headers=AUTH) as client:
            stream_id = await create_stream(client, model="chatrelay-demo?tokens=3&delay_ms=0")
            secret = "tok-secret-9b1c2d3e4f"
            await client.get(f"/api/streams/{stream_id}", params={"token": secret, "offset": "0-0"})

            async def access_logged() -> bool:
                return f"/api/streams/{stream_id}?token=" in stack.group.log_text("api-access-log")

            await wait_until(access_logged, "uvicorn logs the request")
    finally:
        stack.group.stop("api-access-log")
    assert secret not in stack.group.log_text("api-access-log")
    assert not [line for line in json_lines(stack, "api-a") if line["logger"] == "uvicorn.access"]
    access = [
        line
        for line in json_lines(stack, "api-access-log")
        if line["logger"] == "uvicorn.access" and "token=" in line["path"]
    ]
    assert access, "the request was not in the access log"
    assert access[-1]["path"] == f"/api/streams/{stream_id}?token=[redacted]&offset=0-0"
    assert access[-1]["stream_id"] == stream_id
    assert access[-1]["method"] == "GET"


def test_text_format_for_a_terminal_and_secrets_scrubbed() -> None:
    code = """
import logging
from contract.logs import setup_logging, stream_context
setup_logging("worker", "text", secrets=["exact-secret-value"])
log = logging.getLogger("chatrelay.worker")
with stream_context("q3Xo0m3qC2n9u2bW7QnB5g"):
    log.info("upstream said %s with sk-abcdef1234567890 and Bearer abc.def", "exact-secret-value")
log.warning("no stream here")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, second = result.stderr.splitlines()
    assert (
        " INFO  chatrelay.worker [stream q3Xo0m3qC2n9u2bW7QnB5g] upstream said [redacted] with [redacted] and " in first
    )
    assert first.endswith("[redacted]")
    assert "[stream" not in second
    assert "no stream here" in second
