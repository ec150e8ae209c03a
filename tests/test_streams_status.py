"""Status JSON, listing, health probes, and the Redis layout operators rely on."""

from typing import Any

import httpx
from redis.asyncio import Redis

from tests.conftest import Stack, create_stream, upstream_record, wait_until
from tests.sse_client import assemble, read_events


async def test_status_reports_progress_and_result(client: httpx.AsyncClient, stack: Stack) -> None:
    created = await client.post(
        "/api/streams",
        json={"messages": [{"role": "user", "content": "hi"}], "model": "chatrelay-demo?tokens=30&delay_ms=1"},
    )
    assert created.status_code == 202
    body = created.json()
    assert body["status"] == "queued"
    assert body["events_url"] == f"/api/streams/{body['id']}/events"
    assert body["status_url"] == f"/api/streams/{body['id']}"
    assert len(body["id"]) == 22
    _, events, _ = await read_events(client, body["events_url"])
    status = (await client.get(body["status_url"])).json()
    assert status["status"] == "done"
    assert status["model"] == "chatrelay-demo?tokens=30&delay_ms=1"
    assert status["attempt"] == 1
    assert status["chars"] == len(assemble(events)) == len((await upstream_record(stack, body["id"]))["sent_text"])
    # The usage as the upstream reported it, details included.
    assert status["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 30,
        "total_tokens": 40,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert status["created_at"] <= status["started_at"] <= status["finished_at"]
    assert status["error"] is None


async def test_list_running_streams_newest_first(client: httpx.AsyncClient) -> None:
    # 40 s answers: still running when listed, however long the worker took to start them; cancelled below.
    slow = [await create_stream(client, model="chatrelay-demo?tokens=2000&delay_ms=20") for _ in range(3)]
    listed: list[dict[str, Any]] = []

    async def all_running() -> bool:
        listed[:] = (await client.get("/api/streams", params={"status": "running", "limit": 100})).json()["streams"]
        return set(slow) <= {s["id"] for s in listed}

    await wait_until(all_running, "the worker runs all three answers")
    ids = [s["id"] for s in listed]
    assert [i for i in ids if i in slow] == list(reversed(slow))
    assert all(s["status"] == "running" for s in listed)
    for stream_id in slow:
        await client.post(f"/api/streams/{stream_id}/cancel", json={})

    async def none_active() -> bool:
        active = (await client.get("/api/streams")).json()["streams"]
        return not {s["id"] for s in active} & set(slow)

    await wait_until(none_active, "the cancelled answers leave the active list")
    limited = (await client.get("/api/streams", params={"status": "cancelled", "limit": 2})).json()["streams"]
    assert len(limited) == 2


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_finished_stream_keys_expire_and_sit_under_one_hash_tag(
    client: httpx.AsyncClient, stack: Stack, redis: Redis
) -> None:
    stream_id = await create_stream(client, model="chatrelay-demo?tokens=5&delay_ms=0")
    await read_events(client, f"/api/streams/{stream_id}/events")
    keys = stack.keys
    for key in (keys.events(stream_id), keys.meta(stream_id), keys.request(stream_id)):
        assert f"{{{stream_id}}}" in key
        ttl = await redis.ttl(key)
        assert 23 * 3600 < ttl <= 24 * 3600, (key, ttl)
    assert await redis.zscore(keys.active, stream_id) is None
    assert await redis.zscore(keys.recent, stream_id) is not None


async def test_heartbeats_are_comments_without_ids(client: httpx.AsyncClient) -> None:
    # The test stack sends a heartbeat after 0.5 s without an event; this answer's tokens come 0.8 s apart: a
    # heartbeat fits in each of the three gaps, and each gap is well under the stack's 1.5 s upstream read timeout
    # even when a busy machine stretches it.
    stream_id = await create_stream(client, model="chatrelay-demo?tokens=4&delay_ms=800")
    _, events, comments = await read_events(client, f"/api/streams/{stream_id}/events")
    assert len(comments) >= 2
    assert all(c.startswith(":") for c in comments)
    assert events[-1].event == "done"
