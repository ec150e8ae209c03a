"""The fault suite's own stack: Redis with append-only persistence, two workers, two API processes, default
lease timings. Scenarios kill and pause its processes, so it is never shared with the other tests."""

import asyncio
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from cli.processes import ProcessGroup, free_port
from contract.keys import Keys
from contract.redis_client import connect
from tests.conftest import API_KEY, AUTH
from tests.sse_client import TERMINAL, SseEvent, read_events


@dataclass
class FaultStack:
    group: ProcessGroup
    redis_port: int
    redis_url: str
    demo_url: str
    apis: dict[str, str]
    keys: Keys
    workers: list[str] = field(default_factory=list)
    _next_worker: int = 0

    def client(self, api: str, timeout: float = 60) -> httpx.AsyncClient:
        """A client of API process `api` ("a" or "b"), acting as the suite's one API-key owner."""
        return httpx.AsyncClient(base_url=self.apis[api], timeout=timeout, headers=AUTH)

    def start_worker(self) -> str:
        self._next_worker += 1
        name = f"fault-worker-{self._next_worker}"
        self.group.start_worker(name)
        self.workers.append(name)
        return name

    def worker_by_pid(self, pid: int) -> str | None:
        for name in self.workers:
            proc = self.group.procs.get(name)
            if proc is not None and proc.pid == pid:
                return name
        return None

    def kill_worker(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.group.procs[name]
        os.kill(proc.pid, sig)
        if sig == signal.SIGKILL:
            proc.wait()
            self.group.procs.pop(name)
            self.workers.remove(name)

    def stop_redis(self) -> None:
        """SIGTERM Redis: it writes its append-only file and exits."""
        self.group.stop(f"redis-{self.redis_port}")

    def start_redis(self) -> None:
        """Start Redis again on the same port and data folder (it loads the append-only file)."""
        self.group.start_redis(self.redis_port, appendonly=True)


@pytest.fixture(scope="module")
def fault_stack_env() -> dict[str, str]:
    """Settings a scenario module adds to its fault stack (a module overrides this fixture)."""
    return {}


@pytest.fixture(scope="module")
def fault_stack(fault_stack_env: dict[str, str]) -> Iterator[FaultStack]:
    group = ProcessGroup()
    try:
        redis_port = free_port()
        redis_url = group.start_redis(redis_port, appendonly=True)
        demo_url = group.start_demo(free_port(), delay_ms=10, ttft_ms=0)
        prefix = "fault-" + secrets.token_hex(4)
        group.env.update(
            REDIS_URL=redis_url,
            CHATRELAY_KEY_PREFIX=prefix,
            OPENAI_BASE_URL=demo_url,
            OPENAI_API_KEY="sk-fault-" + secrets.token_hex(8),
            OPENAI_MODEL="chatrelay-demo",
            CHATRELAY_MAX_CONCURRENT_JOBS="25",
            # An SSE response ends (retryably) after 1 s of Redis outage, noticed at the next 0.5 s heartbeat.
            CHATRELAY_REDIS_OUTAGE_GRACE_SECONDS="1",
            CHATRELAY_HEARTBEAT_SECONDS="0.5",
            CHATRELAY_API_KEYS=f"faults:{API_KEY}",
            # The scenarios run hundreds of streams as one owner; scenario 9 opens 2,000 connections against a
            # cap of 500, and scenario 10 waits out the send timeout.
            CHATRELAY_MAX_ACTIVE_STREAMS_PER_OWNER="1000",
            CHATRELAY_MAX_SSE_CONNECTIONS_PER_OWNER="500",
            CHATRELAY_SSE_SEND_TIMEOUT_SECONDS="2",
        )
        group.env.update(fault_stack_env)
        stack = FaultStack(group, redis_port, redis_url, demo_url.removesuffix("/v1"), {}, Keys(prefix))
        stack.start_worker()
        stack.start_worker()
        stack.apis["a"] = group.start_api(free_port(), "fault-api-a")
        stack.apis["b"] = group.start_api(free_port(), "fault-api-b")
        yield stack
    finally:
        group.stop_all()


@pytest.fixture
async def fault_redis(fault_stack: FaultStack) -> AsyncIterator[Redis]:
    r = connect(fault_stack.redis_url)
    yield r
    await r.aclose()


async def demo_records(stack: FaultStack, stream_id: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=stack.demo_url) as demo:
        return [r for r in (await demo.get("/_demo/requests")).json() if r["stream_id"] == stream_id]


async def read_to_end(
    client: httpx.AsyncClient, stream_id: str, deadline_s: float = 60, after: str | None = None
) -> list[SseEvent]:
    """Read a stream (from the start, or after event id `after`) to its terminal event, resuming after every
    dropped connection (a client's behaviour)."""
    events: list[SseEvent] = []
    last = after
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            status, got, _ = await read_events(client, f"/api/streams/{stream_id}/events", last_event_id=last)
        except httpx.HTTPError:
            await asyncio.sleep(0.2)
            continue
        if status in (204,):
            return events
        if status != 200:
            await asyncio.sleep(0.2)
            continue
        # A retryable `error` (the API lost Redis) is not the stream's end: resume from the last real event.
        got = [e for e in got if not (e.event == "error" and e.json.get("retryable"))]
        events += got
        if got:
            last = got[-1].id
        if events and events[-1].event in TERMINAL:
            return events
    raise AssertionError(f"stream {stream_id} did not end within {deadline_s} s")


async def before_any_ends(
    ready: asyncio.Event, tasks: list[asyncio.Task[Any]], progress: Callable[[], str], within_s: float
) -> None:
    """Wait for `ready` (the readers are where the fault should hit them). A task that ends first means its answer
    finished or failed before the fault could hit it mid-answer: fail then, or after `within_s`, saying how far the
    readers got, and cancel the rest."""
    waiting = asyncio.create_task(ready.wait())
    await asyncio.wait([waiting, *tasks], timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
    if waiting.done():
        return
    waiting.cancel()
    reached = progress()
    for task in tasks:
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    ended = [o for o in outcomes if not isinstance(o, asyncio.CancelledError)]
    raise AssertionError(f"{reached} after {within_s:g} s or when the first reader ended; ended first: {ended[:2]!r}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]
