"""Status JSON, listing, health probes, and the Redis layout operators rely on."""

import asyncio

import httpx
from redis.asyncio import Redis

from tests.conftest import Stack, create_stream, upstream_record
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
    slow = [await create_stream(client, model="chatrelay-demo?tokens=400&delay_ms=20") for _ in range(3)]
    await asyncio.sleep(0.3)
    listed = (await client.get("/api/streams", params={"status": "running", "limit": 100})).json()["streams"]
    ids = [s["id"] for s in listed]
    assert [i for i in ids if i in slow] == list(reversed(slow))
    assert all(s["status"] == "running" for s in listed)
    for stream_id in slow:
        await client.post(f"/api/streams/{stream_id}/cancel", json={})
    active = (await client.get("/api/streams")).json()["streams"]
    await asyncio.sleep(0.5)
    active = (await client.get("/api/streams")).json()["streams"]
    assert not {s["id"] for s in active} & set(slow)
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
    # The test stack sends a heartbeat every 0.5 s; this answer waits 1.3 s for its first token (under the
    # 1.5 s read timeout).
    stream_id = await create_stream(client, model="chatrelay-demo?tokens=3&ttft_ms=1300")
    _, events, comments = await read_events(client, f"/api/streams/{stream_id}/events")
    assert len(comments) >= 2
    assert all(c.startswith(":") for c in comments)
    assert events[-1].event == "done"
