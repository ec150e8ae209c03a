"""A stream's first job is written by chatrelay's own create script, not by arq's `enqueue_job`: an unmodified
arq worker must still find it and run it with the right arguments."""

import secrets
import time
from typing import Any

from arq.constants import job_key_prefix, result_key_prefix
from arq.worker import Worker
from redis.asyncio import Redis

from contract.jobs import GENERATE_JOB, deserialize_job, serialize_job
from contract.keys import Keys
from contract.queue import JOB_EXPIRES_MS, first_job, job_queue
from contract.store import CreateResult, NewStream, StreamStore
from tests.conftest import Stack


def test_the_contract_spells_arqs_key_prefixes_as_the_installed_arq_does() -> None:
    assert Keys.arq_job("x") == job_key_prefix + "x"
    assert Keys.arq_result("x") == result_key_prefix + "x"


async def test_an_unmodified_arq_worker_runs_the_job_the_create_script_wrote(stack: Stack, redis: Redis) -> None:
    keys = Keys("arqfmt-" + secrets.token_hex(4))  # a queue no worker of the stack listens on
    store = StreamStore(redis, keys, ttl_seconds=60)
    sid = secrets.token_urlsafe(16)
    now = int(time.time() * 1000)
    new = NewStream(stream_id=sid, request_json=b'{"messages":[]}', model="m", created_at_ms=now, owner="key:t")
    result = await store.create_and_enqueue(
        new, first_job(sid, now), JOB_EXPIRES_MS, keys.owner_active("key:t"), 10, 10
    )
    assert result == (CreateResult.OK, 1)
    assert await redis.zscore(keys.queue, sid) == now
    assert 0 < await redis.pttl(keys.arq_job(sid)) <= JOB_EXPIRES_MS

    ran: list[tuple[Any, ...]] = []

    async def generate_stream(ctx: dict[str, Any], *args: Any) -> str:
        ran.append(args)
        return "ran"

    generate_stream.__qualname__ = generate_stream.__name__ = GENERATE_JOB
    worker = Worker(
        functions=[generate_stream],
        redis_pool=job_queue(redis, keys),
        burst=True,
        queue_name=keys.queue,
        job_serializer=serialize_job,
        job_deserializer=deserialize_job,
        poll_delay=0.05,
        handle_signals=False,
    )
    try:
        await worker.main()
    finally:
        await worker.close()
    assert ran == [(sid, 1)]
    assert worker.jobs_complete == 1
    await redis.delete(keys.arq_result(sid))
