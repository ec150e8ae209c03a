"""The worker registry: `GET /api/workers` lists live workers with their job counts; gone workers drop out."""

import asyncio
import signal
import time
from typing import Any

import httpx
from redis.asyncio import Redis

from tests.conftest import ADMIN_KEY, Stack, create_stream
from tests.sse_client import read_events

# A worker that beats often and expires fast, so a killed one is gone within about a second.
FAST_HEARTBEAT = {"CHATRELAY_WORKER_HEARTBEAT_SECONDS": "0.2", "CHATRELAY_WORKER_TTL_SECONDS": "1"}
NO_METRICS = {"CHATRELAY_WORKER_METRICS_PORT": "0"}  # the stack's worker serves them; no port clash


async def _workers(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    # Hosts and pids are for operators: the stack configures an admin key, so only it sees the list.
    assert (await client.get("/api/workers")).status_code == 404
    response = await client.get("/api/workers", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200, response.text
    workers: list[dict[str, Any]] = response.json()["workers"]
    return workers


async def _wait_for(client: httpx.AsyncClient, check: Any, within: float = 15.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    while True:
        workers = await _workers(client)
        if check(workers):
            return workers
        assert time.monotonic() < deadline, f"workers never matched: {workers}"
        await asyncio.sleep(0.1)


def _by_pid(workers: list[dict[str, Any]], pid: int) -> dict[str, Any] | None:
    return next((w for w in workers if w["pid"] == pid), None)


async def test_workers_lists_the_stack_worker_with_job_counts(client: httpx.AsyncClient, stack: Stack) -> None:
    pid = stack.group.procs["worker-1"].pid
    before = _by_pid(await _wait_for(client, lambda ws: _by_pid(ws, pid)), pid)
    assert before is not None
    assert before["id"].startswith(f"{before['host']}:{pid}:")
    assert before["started_at"] <= before["last_heartbeat_at"]
    assert before["max_jobs"] == 50

    # 20 s: the worker's 2 s heartbeat reports it running long before it could end; it is cancelled below.
    slow = await create_stream(client, model="chatrelay-demo?tokens=2000&delay_ms=10")
    running = await _wait_for(client, lambda ws: (_by_pid(ws, pid) or {}).get("jobs_running", 0) >= 1)
    assert _by_pid(running, pid) is not None
    assert (await client.post(f"/api/streams/{slow}/cancel", json={})).status_code == 202
    quick = await create_stream(client, model="chatrelay-demo?tokens=5")
    await read_events(client, f"/api/streams/{quick}/events")

    # The stack worker beats every 2 s (the default): both jobs show up as done by then.
    # Streams of earlier tests may still be running on the shared worker: wait for it to be idle too.
    after = await _wait_for(
        client,
        lambda ws: (
            (w := _by_pid(ws, pid) or {}).get("jobs_done", 0) >= before["jobs_done"] + 2 and w.get("jobs_running") == 0
        ),
        within=60,
    )
    worker = _by_pid(after, pid)
    assert worker is not None
    assert worker["id"] == before["id"]
    assert worker["jobs_running"] == 0


async def test_killed_worker_drops_out_and_stopped_worker_leaves_at_once(
    client: httpx.AsyncClient, stack: Stack, redis: Redis
) -> None:
    group = stack.group
    killed = group.start_worker("worker-killed", extra_env={**FAST_HEARTBEAT, **NO_METRICS})
    # A 60 s TTL: this one can only leave the list on its graceful stop, not by expiring, even if a busy machine
    # makes stopping it slow.
    stopped = group.start_worker("worker-stopped", extra_env={"CHATRELAY_WORKER_TTL_SECONDS": "60", **NO_METRICS})
    try:
        listed = await _wait_for(client, lambda ws: _by_pid(ws, killed.pid) and _by_pid(ws, stopped.pid))
        killed_id = (_by_pid(listed, killed.pid) or {})["id"]
        assert await redis.zscore(stack.keys.workers, killed_id) is not None
        assert await redis.pttl(stack.keys.worker(killed_id)) <= 1000

        killed.kill()  # SIGKILL: no shutdown hook runs, the heartbeat just stops
        killed_at = time.monotonic()
        # Its 1 s TTL, with room for a busy machine: nothing but the expiry removes a killed worker.
        await _wait_for(client, lambda ws: _by_pid(ws, killed.pid) is None, within=15)
        print(f"\nkilled worker dropped out {time.monotonic() - killed_at:.2f} s after SIGKILL (TTL 1 s)")
        # The reader pruned the index entry of the expired hash.
        assert await redis.zscore(stack.keys.workers, killed_id) is None
        assert not await redis.exists(stack.keys.worker(killed_id))

        stopped_at = time.monotonic()
        await asyncio.to_thread(group.stop, "worker-stopped", signal.SIGTERM)
        remaining = await _workers(client)
        assert _by_pid(remaining, stopped.pid) is None
        assert time.monotonic() - stopped_at < 45  # well before its 60 s TTL could have removed it
        assert _by_pid(remaining, stack.group.procs["worker-1"].pid) is not None
    finally:
        group.stop("worker-killed", signal.SIGKILL)
        group.stop("worker-stopped")
