"""arq runs a job again when its in-progress key expires (310 s by default) or when it is enqueued twice; such a
re-run of an attempt that already began must never become a second writer."""

import asyncio
import secrets

import httpx
from arq.jobs import Job
from redis.asyncio import Redis

from contract.jobs import GENERATE_JOB, deserialize_job
from contract.queue import job_queue
from tests.conftest import Stack, create_stream
from tests.sse_client import assemble, read_events


async def _rerun(redis: Redis, stack: Stack, stream_id: str) -> object:
    """What arq would do on its own: run attempt 1 of this stream again, under a job id of its own."""
    queue = job_queue(redis, stack.keys)
    job = await queue.enqueue_job(
        GENERATE_JOB, stream_id, 1, _job_id=f"rerun-{secrets.token_hex(4)}", _queue_name=stack.keys.queue
    )
    assert job is not None
    return await Job(job.job_id, queue, _queue_name=stack.keys.queue, _deserializer=deserialize_job).result(timeout=20)


async def _requests_for(stack: Stack, stream_id: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=stack.demo_url) as demo:
        return [r for r in (await demo.get("/_demo/requests")).json() if r["stream_id"] == stream_id]


async def test_rerun_of_a_running_attempt_writes_nothing(client: httpx.AsyncClient, redis: Redis, stack: Stack) -> None:
    # About 5 s: still running when the re-run comes, however slowly a busy machine gets it there.
    stream_id = await create_stream(client, model="chatrelay-demo?tokens=600&delay_ms=8")
    url = f"/api/streams/{stream_id}/events"
    _, first, _ = await read_events(client, url, stop_after=5)
    assert (await client.get(f"/api/streams/{stream_id}")).json()["status"] == "running"

    assert await _rerun(redis, stack, stream_id) == {"outcome": "running"}

    _, rest, _ = await read_events(client, url, last_event_id=first[-1].id)
    assert rest[-1].event == "done"
    records = await _requests_for(stack, stream_id)
    assert len(records) == 1, "the re-run called the upstream"
    assert assemble(first + rest) == records[0]["sent_text"]


async def test_rerun_of_a_finished_attempt_writes_nothing(
    client: httpx.AsyncClient, redis: Redis, stack: Stack
) -> None:
    stream_id = await create_stream(client, model="chatrelay-demo?tokens=20&delay_ms=1")
    _, events, _ = await read_events(client, f"/api/streams/{stream_id}/events")
    assert events[-1].event == "done"
    entries_before = await redis.xlen(stack.keys.events(stream_id))

    assert await _rerun(redis, stack, stream_id) == {"outcome": "terminal"}

    await asyncio.sleep(0.2)
    assert await redis.xlen(stack.keys.events(stream_id)) == entries_before
    assert len(await _requests_for(stack, stream_id)) == 1
