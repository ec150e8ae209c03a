"""The real stack for the tests: redis-server on a free port, the demo upstream over real HTTP, two uvicorn
API processes and an arq worker, all with a random key prefix so nothing depends on a flushed Redis."""

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from cli.processes import ProcessGroup, free_port
from contract.keys import Keys
from contract.redis_client import connect

# A fake key that looks real: tests check it never reaches Redis, events or logs.
UPSTREAM_KEY = "sk-test-" + secrets.token_hex(16)
# The tests act as one API-key owner, so clients of both API processes see the same streams.
API_KEY = "ck-test-" + secrets.token_hex(16)
ADMIN_KEY = "ck-admin-" + secrets.token_hex(16)
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@dataclass
class Stack:
    group: ProcessGroup
    redis_url: str
    demo_url: str
    api_a: str
    api_b: str
    keys: Keys
    worker_metrics: str = ""  # the worker's Prometheus endpoint


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    group = ProcessGroup()
    try:
        redis_url = group.start_redis(free_port())
        demo_url = group.start_demo(free_port(), delay_ms=2, ttft_ms=0)
        prefix = "test-" + secrets.token_hex(4)
        group.env.update(
            REDIS_URL=redis_url,
            CHATRELAY_KEY_PREFIX=prefix,
            OPENAI_BASE_URL=demo_url,
            OPENAI_API_KEY=UPSTREAM_KEY,
            OPENAI_MODEL="chatrelay-demo",
            CHATRELAY_UPSTREAM_READ_TIMEOUT_SECONDS="1.5",
            CHATRELAY_MAX_BODY_BYTES="200000",
            CHATRELAY_MAX_MESSAGES="50",
            CHATRELAY_MAX_MESSAGE_CHARS="20000",
            CHATRELAY_MAX_IMAGE_BYTES="50000",
            CHATRELAY_HEARTBEAT_SECONDS="0.5",
            CHATRELAY_API_KEYS=f"tests:{API_KEY}",
            CHATRELAY_ADMIN_API_KEYS=f"ops:{ADMIN_KEY}",
            CHATRELAY_MAX_ACTIVE_STREAMS_PER_OWNER="200",
        )
        metrics_port = free_port()
        group.start_worker("worker-1", {"CHATRELAY_WORKER_METRICS_PORT": str(metrics_port)})
        api_a = group.start_api(free_port(), "api-a")
        api_b = group.start_api(free_port(), "api-b")
        worker_metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        yield Stack(group, redis_url, demo_url.removesuffix("/v1"), api_a, api_b, Keys(prefix), worker_metrics)
    finally:
        group.stop_all()


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.api_a, timeout=30, headers=AUTH) as c:
        yield c


@pytest.fixture
async def client_b(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.api_b, timeout=30, headers=AUTH) as c:
        yield c


@pytest.fixture
async def redis(stack: Stack) -> AsyncIterator[Redis]:
    r = connect(stack.redis_url)
    yield r
    await r.aclose()


async def upstream_record(stack: Stack, stream_id: str, wait_s: float = 10.0) -> dict[str, Any]:
    """What the demo upstream sent for this stream (its last request for it), once that request has ended."""
    async with httpx.AsyncClient(base_url=stack.demo_url) as demo:
        for _ in range(int(wait_s / 0.05)):
            records = [r for r in (await demo.get("/_demo/requests")).json() if r["stream_id"] == stream_id]
            if records and (records[-1]["finished"] or records[-1]["client_disconnected"]):
                return dict(records[-1])
            await asyncio.sleep(0.05)
    raise AssertionError(f"the upstream has no finished request for stream {stream_id}")


async def wait_until(
    check: Callable[[], Awaitable[bool]], what: str, within_s: float = 30.0, poll_s: float = 0.1
) -> float:
    """Poll `check` until it holds; returns the seconds that took. `within_s` is a bound that a loaded machine
    meets with room to spare, not a target: reaching it means the condition never came."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within_s:
            raise AssertionError(f"not within {within_s:g} s: {what}")
        await asyncio.sleep(poll_s)
    return time.monotonic() - started


async def create_stream(
    client: httpx.AsyncClient, content: str = "hello", model: str | None = None, **extra: Any
) -> str:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": content}], **extra}
    if model is not None:
        body["model"] = model
    response = await client.post("/api/streams", json=body)
    assert response.status_code == 202, response.text
    stream_id: str = response.json()["id"]
    return stream_id
