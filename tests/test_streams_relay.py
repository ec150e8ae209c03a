"""Reading answers over SSE: whole, resumed, from two processes; always byte for byte what the upstream sent."""

import asyncio
import random

import httpx
import pytest

from demo_upstream.script import TRICKY
from tests.conftest import Stack, create_stream, upstream_record, wait_until
from tests.sse_client import assemble, read_events, read_with_disconnects


async def test_stream_500_tokens_read_in_one_go_matches_upstream(client: httpx.AsyncClient, stack: Stack) -> None:
    stream_id = await create_stream(client, model="chatrelay-demo?tokens=500&delay_ms=1")
    status, events, _ = await read_events(client, f"/api/streams/{stream_id}/events")
    sent = (await upstream_record(stack, stream_id))["sent_text"]
    assert status == 200
    assert [e.event for e in events[:1]] == ["start"]
    assert events[-1].event == "done"
    assert events[-1].json["finish_reason"] == "stop"
    assert events[-1].json["usage"]["completion_tokens"] == 500
    assert assemble(events) == sent
    assert len(sent) > 1000
    ids = [e.id for e in events]
    assert len(set(ids)) == len(ids)
    assert all(ids)


async def test_stream_resumed_after_20_disconnects_matches_upstream(client: httpx.AsyncClient, stack: Stack) -> None:
    stream_id = await create_stream(client, model="chatrelay-demo?tokens=500&delay_ms=4")
    events, reconnects = await read_with_disconnects(client, f"/api/streams/{stream_id}/events", 20, random.Random(7))
    sent = (await upstream_record(stack, stream_id))["sent_text"]
    assert reconnects == 20
    assert assemble(events) == sent
    ids = [e.id for e in events]
    assert len(set(ids)) == len(ids), "an event was delivered twice"


async def test_stream_resumed_with_offset_query(client: httpx.AsyncClient, stack: Stack) -> None:
    stream_id = await create_stream(client, model="chatrelay-demo?tokens=60&delay_ms=5")
    url = f"/api/streams/{stream_id}/events"
    _, first, _ = await read_events(client, url, stop_after=10)
    _, rest, _ = await read_events(client, url, offset=first[-1].id)
    assert assemble(first + rest) == (await upstream_record(stack, stream_id))["sent_text"]
    assert rest[0].id != first[-1].id


async def test_two_readers_at_once_get_the_same_answer(
    client: httpx.AsyncClient, client_b: httpx.AsyncClient, stack: Stack
) -> None:
    stream_id = await create_stream(client, model="chatrelay-demo?tokens=150&delay_ms=5")
    url = f"/api/streams/{stream_id}/events"
    (_, a, _), (_, b, _), (_, c, _) = await asyncio.gather(
        read_events(client, url), read_events(client, url), read_events(client_b, url)
    )
    sent = (await upstream_record(stack, stream_id))["sent_text"]
    assert assemble(a) == assemble(b) == assemble(c) == sent
    assert [e.id for e in a] == [e.id for e in b] == [e.id for e in c]


async def test_reader_after_done_gets_replay_and_response_closes(client: httpx.AsyncClient, stack: Stack) -> None:
    stream_id = await create_stream(client, model="chatrelay-demo?tokens=40&delay_ms=0")
    sent = (await upstream_record(stack, stream_id))["sent_text"]

    async def done() -> bool:
        return bool((await client.get(f"/api/streams/{stream_id}")).json()["status"] == "done")

    await wait_until(done, "the answer is done")
    # Bounded: a replay of an ended stream must end by itself, not wait for events that never come.
    status, events, _ = await asyncio.wait_for(read_events(client, f"/api/streams/{stream_id}/events"), 20)
    assert status == 200
    assert assemble(events) == sent
    # A reconnect from the terminal event gets 204, which makes EventSource stop for good.
    again = await client.get(f"/api/streams/{stream_id}/events", headers={"Last-Event-ID": events[-1].id or ""})
    assert again.status_code == 204


async def test_resume_on_the_other_api_process(
    client: httpx.AsyncClient, client_b: httpx.AsyncClient, stack: Stack
) -> None:
    stream_id = await create_stream(client, model="chatrelay-demo?tokens=200&delay_ms=5")
    url = f"/api/streams/{stream_id}/events"
    _, first_half, _ = await read_events(client, url, stop_after=25)
    _, second_half, _ = await read_events(client_b, url, last_event_id=first_half[-1].id)
    assert assemble(first_half + second_half) == (await upstream_record(stack, stream_id))["sent_text"]


async def test_random_resumes_across_two_api_processes(
    client: httpx.AsyncClient, client_b: httpx.AsyncClient, stack: Stack
) -> None:
    ids = [await create_stream(client, model=f"chatrelay-demo?tokens=120&delay_ms=3&seed={i}") for i in range(8)]
    results = await asyncio.gather(
        *(
            read_with_disconnects(client, f"/api/streams/{sid}/events", 5, random.Random(i), [client, client_b])
            for i, sid in enumerate(ids)
        )
    )
    for sid, (events, _) in zip(ids, results, strict=True):
        assert assemble(events) == (await upstream_record(stack, sid))["sent_text"]


@pytest.mark.parametrize(
    "text",
    [
        TRICKY,
        'data: {"text": "injected"}\n\nid: 1-1\nevent: done\n\n',
        "emoji 🙂👍🏽🇫🇷 and ZWJ 👩‍👩‍👧 and scripts: Ελληνικά Русский 日本語 한국어 עברית",
        "trailing spaces   \n\n\n   and\ttabs\t\u2028line separator\u2029para\x0bvt",
    ],
    ids=["tricky", "fake-sse", "unicode", "whitespace"],
)
async def test_text_survives_verbatim(
    client: httpx.AsyncClient, client_b: httpx.AsyncClient, stack: Stack, text: str
) -> None:
    stream_id = await create_stream(client, text, model="chatrelay-demo?echo=1&delay_ms=2")
    _, first, _ = await read_events(client, f"/api/streams/{stream_id}/events", stop_after=3)
    _, rest, _ = await read_events(client_b, f"/api/streams/{stream_id}/events", last_event_id=first[-1].id)
    sent = (await upstream_record(stack, stream_id))["sent_text"]
    assert sent == text
    assert assemble(first + rest) == text
