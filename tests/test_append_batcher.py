"""The worker's one batcher of stream appends: many streams share a Redis round trip, and every caller still gets
its own result (ok, fenced, cancel, its own script error, or the batch's connection error)."""

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from cli.processes import free_port
from contract.events import encode_delta
from contract.keys import Keys
from contract.redis_client import connect
from contract.store import AppendResult, NewStream, StreamStore
from tests.conftest import Stack, create_stream, upstream_record
from tests.test_metrics import scrape, value
from worker.append_batcher import AppendBatcher


def _batches() -> tuple[float, float]:
    """(round trips, appends) this process's batchers have sent so far."""
    count = REGISTRY.get_sample_value("chatrelay_append_batch_size_count") or 0.0
    total = REGISTRY.get_sample_value("chatrelay_append_batch_size_sum") or 0.0
    return count, total


async def _running_streams(store: StreamStore, n: int) -> list[str]:
    """`n` streams whose attempt 1 is running, as a worker leaves them after `begin`."""
    ids = [secrets.token_hex(8) for _ in range(n)]
    for sid in ids:
        await store.create(NewStream(sid, b"{}", "m", int(time.time() * 1000)))
        await store.begin(sid, 1, "test-worker", "m", 60_000)
    return ids


async def _texts(store: StreamStore, stream_id: str) -> list[str]:
    entries = await store.read_after(stream_id, b"0-0")
    return [orjson.loads(fields[b"d"])["text"] for _, fields in entries if fields[b"t"] == b"delta"]


def _delta(text: str) -> list[tuple[bytes, bytes]]:
    return [encode_delta(text)]


@pytest.fixture
def store(redis: Redis) -> StreamStore:
    return StreamStore(redis, Keys("test-" + secrets.token_hex(4)), ttl_seconds=600)


@pytest.fixture
async def own_redis(stack: Stack) -> AsyncIterator[tuple[int, Redis]]:
    """A redis-server of this test's own, which it may flush, block or stop."""
    port = free_port()
    stack.group.start_redis(port)
    client = connect(f"redis://127.0.0.1:{port}/0")
    yield port, client
    await client.aclose()
    stack.group.stop(f"redis-{port}")


async def test_append_batcher_sends_concurrent_appends_together_in_order(store: StreamStore) -> None:
    ids = await _running_streams(store, 40)
    batcher = AppendBatcher(store)
    writes = 15

    async def writer(sid: str) -> None:
        # As an AnswerWriter: one append in flight per stream.
        for i in range(writes):
            assert await batcher.append(sid, 1, len(f"{sid}:{i} "), _delta(f"{sid}:{i} ")) == AppendResult.OK

    trips_before, appends_before = _batches()
    await asyncio.gather(*(writer(sid) for sid in ids))
    trips, appends = _batches()

    assert appends - appends_before == len(ids) * writes
    assert trips - trips_before < (appends - appends_before) / 10
    for sid in ids:
        assert await _texts(store, sid) == [f"{sid}:{i} " for i in range(writes)]
        assert (await store.meta(sid))[b"chars"] == str(sum(len(f"{sid}:{i} ") for i in range(writes))).encode()


async def test_append_batcher_fenced_and_cancelled_streams_in_a_healthy_batch(store: StreamStore, redis: Redis) -> None:
    healthy = await _running_streams(store, 8)
    fenced, cancelled = await _running_streams(store, 2)
    await redis.hset(store.keys.meta(fenced), "attempt", "2")  # type: ignore[misc]  # a later attempt took over
    await redis.hset(store.keys.meta(cancelled), "cancel_requested", "1")  # type: ignore[misc]
    batcher = AppendBatcher(store)

    trips_before, _ = _batches()
    results = await asyncio.gather(*(batcher.append(sid, 1, 3, _delta("abc")) for sid in [fenced, *healthy, cancelled]))
    assert _batches()[0] - trips_before == 1  # one round trip for all of them

    assert results == [AppendResult.FENCED, *[AppendResult.OK] * len(healthy), AppendResult.CANCEL]
    for sid in healthy:
        assert await _texts(store, sid) == ["abc"]
    assert await _texts(store, fenced) == []
    assert await _texts(store, cancelled) == []


async def test_append_batcher_script_error_raises_in_its_caller_only(store: StreamStore, redis: Redis) -> None:
    healthy = await _running_streams(store, 4)
    broken = secrets.token_hex(8)
    await redis.set(store.keys.meta(broken), "not a hash")  # the script's HMGET fails with WRONGTYPE
    batcher = AppendBatcher(store)

    results = await asyncio.gather(
        *(batcher.append(sid, 1, 1, _delta("x")) for sid in [*healthy, broken]), return_exceptions=True
    )

    assert results[:-1] == [AppendResult.OK] * len(healthy)
    assert isinstance(results[-1], ResponseError)
    assert "WRONGTYPE" in str(results[-1])


async def test_append_batcher_cancelled_caller_does_not_break_its_batch(own_redis: tuple[int, Redis]) -> None:
    port, redis = own_redis
    store = StreamStore(redis, Keys("test-" + secrets.token_hex(4)), ttl_seconds=600)
    ids = await _running_streams(store, 6)
    late = ids.pop()
    batcher = AppendBatcher(store)
    blocker = connect(f"redis://127.0.0.1:{port}/0")
    # Paused for writes (scripts included, CLIENT UNPAUSE not), Redis holds the next batch in flight until the test
    # lets it go on, however slowly this machine runs: the sleeps below only let this process's own tasks take
    # their turns. (A script that kept Redis busy for 300 ms could end before a descheduled test got to cancel.)
    await blocker.client_pause(30_000, all=False)
    try:
        tasks = [asyncio.create_task(batcher.append(sid, 1, 1, _delta("x"))) for sid in ids]
        await asyncio.sleep(0.05)
        late_task = asyncio.create_task(batcher.append(late, 1, 1, _delta("x")))  # queued for the next batch
        await asyncio.sleep(0.05)
        tasks[0].cancel()  # its append is in flight
        late_task.cancel()  # its append never left
        await asyncio.sleep(0.05)
    finally:
        await blocker.client_unpause()
        await blocker.aclose()

    results = await asyncio.gather(*tasks, late_task, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert isinstance(results[-1], asyncio.CancelledError)
    assert results[1:-1] == [AppendResult.OK] * (len(ids) - 1)
    for sid in ids[1:]:
        assert await _texts(store, sid) == ["x"]
    assert await _texts(store, late) == []
    assert await batcher.append(late, 1, 1, _delta("y")) == AppendResult.OK  # the batcher goes on


async def test_append_batcher_redis_failure_raises_in_every_caller_of_the_batch(
    stack: Stack, own_redis: tuple[int, Redis]
) -> None:
    port, redis = own_redis
    store = StreamStore(redis, Keys("test-" + secrets.token_hex(4)), ttl_seconds=600)
    ids = await _running_streams(store, 5)
    batcher = AppendBatcher(store)
    await redis.script_flush()  # NOSCRIPT: the batch loads the script and sends again
    assert await asyncio.gather(*(batcher.append(sid, 1, 1, _delta("a")) for sid in ids)) == [AppendResult.OK] * 5

    stack.group.stop(f"redis-{port}")
    results = await asyncio.gather(*(batcher.append(sid, 1, 1, _delta("b")) for sid in ids), return_exceptions=True)
    assert all(isinstance(r, RedisConnectionError) for r in results), results

    # After a restart (empty, scripts gone) the same batcher writes again.
    stack.group.start_redis(port)
    ids = await _running_streams(store, 3)
    assert await asyncio.gather(*(batcher.append(sid, 1, 1, _delta("c")) for sid in ids)) == [AppendResult.OK] * 3
    for sid in ids:
        assert await _texts(store, sid) == ["c"]


async def test_worker_shares_round_trips_between_concurrent_answers(
    stack: Stack, client: httpx.AsyncClient, redis: Redis
) -> None:
    before = await scrape(stack.worker_metrics)
    ids = await asyncio.gather(
        *(create_stream(client, f"batch {i}", model="chatrelay-demo?tokens=120&delay_ms=1") for i in range(20))
    )
    store = StreamStore(redis, stack.keys, ttl_seconds=600)
    for sid in ids:
        text = [orjson.loads(f[b"d"])["text"] async for _, f in store.follow(sid) if f[b"t"] == b"delta"]
        assert "".join(text) == (await upstream_record(stack, sid))["sent_text"]
    after = await scrape(stack.worker_metrics)

    trips = value(after, "chatrelay_append_batch_size_count") - value(before, "chatrelay_append_batch_size_count")
    appends = value(after, "chatrelay_append_batch_size_sum") - value(before, "chatrelay_append_batch_size_sum")
    assert 0 < trips < appends


async def test_an_append_sent_again_after_it_ran_writes_nothing(store: StreamStore) -> None:
    # The client resends a command whose reply was lost with its connection; the append's offset (the attempt's
    # chars before it) tells the script that this one already ran.
    [sid] = await _running_streams(store, 1)
    batcher = AppendBatcher(store)
    assert await batcher.append(sid, 1, 4, _delta("one "), offset=0) == AppendResult.OK
    assert await batcher.append(sid, 1, 4, _delta("one "), offset=0) == AppendResult.OK  # the resend
    assert await batcher.append(sid, 1, 3, _delta("two"), offset=4) == AppendResult.OK
    assert await _texts(store, sid) == ["one ", "two"]
    assert (await store.meta(sid))[b"chars"] == b"7"
    # An offset that is neither: the writer's count and the stream's disagree, so it must stop writing.
    assert await batcher.append(sid, 1, 1, _delta("x"), offset=2) == AppendResult.FENCED
    assert await _texts(store, sid) == ["one ", "two"]
