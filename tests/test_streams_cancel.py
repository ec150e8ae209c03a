"""Cancel: idempotent, closes the upstream request, keeps the partial text."""

import httpx

from cli.processes import free_port
from tests.conftest import AUTH, Stack, create_stream, upstream_record
from tests.sse_client import assemble, read_events


async def test_cancel_while_running_closes_upstream_and_keeps_partial_text(
    client: httpx.AsyncClient, client_b: httpx.AsyncClient, stack: Stack
) -> None:
    stream_id = await create_stream(client, model="chatrelay-demo?tokens=2000&delay_ms=5")
    url = f"/api/streams/{stream_id}/events"
    _, first, _ = await read_events(client, url, stop_after=10)
    # Through the other API process, twice: idempotent.
    first_cancel = await client_b.post(f"/api/streams/{stream_id}/cancel", json={})
    assert first_cancel.status_code == 202
    _, rest, _ = await read_events(client, url, last_event_id=first[-1].id)
    assert rest[-1].event == "cancelled"
    again = await client.post(f"/api/streams/{stream_id}/cancel", json={})
    assert again.status_code == 202
    assert again.json()["status"] == "cancelled"

    record = await upstream_record(stack, stream_id)
    assert record["client_disconnected"] is True
    assert record["finished"] is False
    partial = assemble(first + rest)
    assert rest[-1].json["chars"] == len(partial)
    # The demo sends one token per chunk, and every delta event holds at least one chunk's text (coalescing can
    # put several in one); the chunks in flight when the worker closed the request are counted too.
    deltas = sum(e.event == "delta" for e in first + rest)
    assert deltas <= rest[-1].json["upstream_chunks"] <= 2000
    assert record["sent_text"].startswith(partial)
    assert len(partial) < len(record["sent_text"]) + 1
    status = (await client.get(f"/api/streams/{stream_id}")).json()
    assert status["status"] == "cancelled"
    assert status["chars"] == len(partial)


async def test_cancel_while_queued_never_calls_upstream(stack: Stack) -> None:
    # An API process on a key prefix no worker serves: its streams stay queued until we cancel them.
    port = free_port()
    url = stack.group.start_api(port, "api-no-worker", {"CHATRELAY_KEY_PREFIX": "queued-" + stack.keys.prefix})
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10, headers=AUTH) as lonely:
            stream_id = await create_stream(lonely, model="chatrelay-demo?tokens=50")
            assert (await lonely.get(f"/api/streams/{stream_id}")).json()["status"] == "queued"
            response = await lonely.post(f"/api/streams/{stream_id}/cancel", json={})
            assert response.status_code == 202
            assert response.json()["status"] == "cancelled"
            _, events, _ = await read_events(lonely, f"/api/streams/{stream_id}/events")
            assert [e.event for e in events] == ["cancelled"]
            assert events[0].json == {"chars": 0, "usage": None, "upstream_chunks": 0}
            assert (await lonely.get(f"/api/streams/{stream_id}")).json()["status"] == "cancelled"
    finally:
        stack.group.stop("api-no-worker")
    async with httpx.AsyncClient(base_url=stack.demo_url) as demo:
        records = [r for r in (await demo.get("/_demo/requests")).json() if r["stream_id"] == stream_id]
    assert records == [], "a stream cancelled while queued must never reach the upstream"


async def test_cancel_unknown_stream_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/streams/AAAAAAAAAAAAAAAAAAAAAA/cancel", json={})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
