"""Every enqueue wakes the workers: a worker whose queue poll waits 60 s still takes a new answer at once."""

import asyncio
import secrets
import time

import httpx

from cli.processes import free_port
from tests.conftest import ADMIN_KEY, AUTH, Stack, upstream_record, wait_until
from tests.sse_client import assemble, read_events


async def test_a_new_answer_wakes_a_worker_that_polls_rarely(stack: Stack) -> None:
    # Its own key prefix, so only this worker (which polls once a minute) serves this API process.
    env = {"CHATRELAY_KEY_PREFIX": "wake-" + secrets.token_hex(4), "CHATRELAY_WORKER_METRICS_PORT": "0"}
    worker = stack.group.start_worker("worker-slow-poll", {**env, "CHATRELAY_QUEUE_POLL_SECONDS": "60"})
    api = stack.group.start_api(free_port(), "api-slow-poll", env)
    try:
        async with httpx.AsyncClient(base_url=api, timeout=30, headers=AUTH) as client:
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}

            async def registered() -> bool:
                return bool((await client.get("/api/workers", headers=admin)).json()["workers"])

            # Registered, so its first poll has happened; the half second puts it well into its minute-long wait.
            await wait_until(registered, "the worker registers", within_s=60)
            await asyncio.sleep(0.5)
            started = time.monotonic()
            created = await client.post(
                "/api/streams",
                json={"messages": [{"role": "user", "content": "x"}], "model": "chatrelay-demo?tokens=5&delay_ms=1"},
            )
            stream_id = created.json()["id"]
            _, events, _ = await read_events(client, f"/api/streams/{stream_id}/events")
            took = time.monotonic() - started
        assert events[-1].event == "done"
        assert assemble(events) == (await upstream_record(stack, stream_id))["sent_text"]
        # Its next poll was a minute away: only the wake-up can have started it this soon.
        assert took < 30, f"the answer took {took:.1f} s: the worker was not woken"
    finally:
        stack.group.stop("api-slow-poll")
        stack.group.stop("worker-slow-poll")
    assert worker.returncode is not None
