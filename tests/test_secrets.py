"""The upstream API key never leaves the worker: not in Redis, job payloads, events, logs or metrics."""

import httpx
from redis.asyncio import Redis

from tests.conftest import API_KEY, UPSTREAM_KEY, Stack, create_stream
from tests.sse_client import read_events


async def test_api_key_never_reaches_redis_events_or_logs(
    client: httpx.AsyncClient, stack: Stack, redis: Redis
) -> None:
    ok = await create_stream(client, model="chatrelay-demo?tokens=20&delay_ms=0")
    failed = await create_stream(client, model="chatrelay-demo?status=500")
    for stream_id in (ok, failed):
        _, events, _ = await read_events(client, f"/api/streams/{stream_id}/events")
        assert all(UPSTREAM_KEY not in (e.data or "") for e in events)
    needle = UPSTREAM_KEY.encode()
    scanned = 0
    async for key in redis.scan_iter(count=1000):
        scanned += 1
        kind = (await redis.type(key)).decode()
        if kind == "string":
            values = [await redis.get(key)]
        elif kind == "hash":
            values = list((await redis.hgetall(key)).values())  # type: ignore[misc]
        elif kind == "stream":
            values = [v for _, fields in await redis.xrange(key) for v in fields.values()]
        elif kind == "zset":
            values = [m for m, _ in await redis.zrange(key, 0, -1, withscores=True)]
        else:
            values = []
        assert all(needle not in (v or b"") for v in values), key
    assert scanned > 5
    for name in ("api-a", "api-b", "worker-1"):
        text = stack.group.log_text(name)
        if name != "api-b":  # the streams above went through api-a only
            assert '"stream_id":' in text, f"{name} logged no line about a stream: the check would be vacuous"
        assert UPSTREAM_KEY not in text
        assert API_KEY not in text, "the clients' API key reached a log"
    # Nor the metrics: labels are codes and route templates, never values from a request.
    async with httpx.AsyncClient(timeout=10) as http:
        for url in (f"{stack.api_a}/metrics", f"{stack.api_b}/metrics", stack.worker_metrics):
            text = (await http.get(url)).text
            assert "chatrelay_" in text
            assert UPSTREAM_KEY not in text
            assert API_KEY not in text
