"""`GET /api/streams` filters (status, model, age) and cursor paging; the listing query behind it and the CLI."""

import asyncio
import secrets
from datetime import datetime, timedelta

import httpx
from redis.asyncio import Redis

from contract.keys import Keys
from contract.listing import StatusFilter, StreamQuery, list_streams
from contract.store import NewStream, StreamStore
from tests.conftest import Stack, create_stream
from tests.sse_client import read_events

MAX_AGE_S = 2


def _model() -> str:
    """A model name no other test uses, so a model filter isolates this test's streams."""
    return f"chatrelay-demo?tokens=3&seed={secrets.randbelow(10**9)}"


async def _finished(client: httpx.AsyncClient, model: str, count: int) -> list[str]:
    ids = [await create_stream(client, model=model) for _ in range(count)]
    for stream_id in ids:
        await read_events(client, f"/api/streams/{stream_id}/events")
    return ids


async def test_list_pages_through_filtered_streams_newest_first(client: httpx.AsyncClient) -> None:
    model = _model()
    ids = await _finished(client, model, 5)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"status": "all", "model": model, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/api/streams", params=params)).json()
        pages += 1
        assert len(body["streams"]) <= 2
        seen += [s["id"] for s in body["streams"]]
        assert all(s["model"] == model for s in body["streams"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert pages == 3

    done = (await client.get("/api/streams", params={"status": "done", "model": model})).json()
    assert [s["id"] for s in done["streams"]] == list(reversed(ids))
    assert done["next_cursor"] is None
    for status in ("running", "active", "error"):
        listed = (await client.get("/api/streams", params={"status": status, "model": model})).json()
        assert listed["streams"] == [], status


async def test_list_filters_by_age(client: httpx.AsyncClient) -> None:
    model = _model()
    [old] = await _finished(client, model, 1)
    # `old` is more than MAX_AGE_S old once this has passed; `new` is queried right after it is created, with a
    # whole MAX_AGE_S for that one round trip.
    await asyncio.sleep(MAX_AGE_S + 0.2)
    new = await create_stream(client, model=model)
    params = {"status": "all", "model": model}

    recent = (await client.get("/api/streams", params={**params, "max_age_seconds": MAX_AGE_S})).json()["streams"]
    assert [s["id"] for s in recent] == [new]
    await read_events(client, f"/api/streams/{new}/events")
    both = (await client.get("/api/streams", params={**params, "max_age_seconds": 600})).json()["streams"]
    assert [s["id"] for s in both] == [new, old]
    old_created = datetime.fromisoformat((await client.get(f"/api/streams/{old}")).json()["created_at"])
    after = (old_created + timedelta(milliseconds=1)).isoformat()
    since = (await client.get("/api/streams", params={**params, "created_after": after})).json()["streams"]
    assert [s["id"] for s in since] == [new]


async def test_list_rejects_bad_filters(client: httpx.AsyncClient) -> None:
    for params in ({"cursor": "yesterday"}, {"status": "sleeping"}, {"max_age_seconds": "-1"}):
        response = await client.get("/api/streams", params=params)
        assert response.status_code == 422, params
        assert response.json()["error"]["code"]


async def test_listing_query_pages_exactly_through_ties_and_honours_owner(stack: Stack, redis: Redis) -> None:
    # Under a prefix of its own that no worker serves: streams stay queued, and the timestamps are chosen here.
    keys = Keys(f"{stack.keys.prefix}-listing-{secrets.token_hex(3)}")
    store = StreamStore(redis, keys, ttl_seconds=3600)
    now_ms = int(datetime.now().timestamp() * 1000)
    # 450 streams created in one millisecond (more than one read batch), plus some before and after it.
    stamps = [now_ms - 5000 + i for i in range(20)] + [now_ms - 2000] * 450 + [now_ms - 1000 + i for i in range(20)]
    ids = []
    for i, created in enumerate(stamps):
        sid = f"{i:04d}" + secrets.token_urlsafe(14)[:18]
        await store.create(NewStream(stream_id=sid, request_json=b"{}", model="m", created_at_ms=created))
        ids.append(sid)
    expected = [sid for _, sid in sorted(zip(stamps, ids, strict=True), reverse=True)]

    for status in (StatusFilter.ALL, StatusFilter.ACTIVE, StatusFilter.QUEUED):
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page = await list_streams(redis, keys, StreamQuery(status=status, cursor=cursor, limit=37))
            seen += [info.id for info in page.streams]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == expected, status

    # Ownership (issue 4) is a meta field; the query keeps only the owner's streams when asked to.
    mine = set(expected[10:14])
    for sid in mine:
        await redis.hset(keys.meta(sid), "owner", "key:alice")  # type: ignore[misc]
    owned = await list_streams(redis, keys, StreamQuery(status=StatusFilter.ALL, owner="key:alice", limit=10))
    assert [info.id for info in owned.streams] == expected[10:14]
    assert owned.next_cursor is None
    everyone = await list_streams(redis, keys, StreamQuery(status=StatusFilter.ALL, owner=None, limit=1000))
    assert len(everyone.streams) == len(expected)
    # A scan that stops at its bound still hands out a cursor to go on from.
    bounded = await list_streams(redis, keys, StreamQuery(status=StatusFilter.ALL, owner="nobody", scan_max=100))
    assert bounded.streams == []
    assert bounded.next_cursor is not None
    rest = await list_streams(
        redis, keys, StreamQuery(status=StatusFilter.ALL, owner="key:alice", cursor=bounded.next_cursor)
    )
    assert rest.streams == []  # alice's streams are among the first 100
    await redis.delete(keys.active, keys.recent, *(keys.meta(sid) for sid in ids), *(keys.request(sid) for sid in ids))
