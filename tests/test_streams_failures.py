"""Upstream failures end the stream with an explicit `error` event; the partial text stays readable."""

import httpx
import pytest

from tests.conftest import Stack, create_stream, upstream_record
from tests.sse_client import assemble, read_events


@pytest.mark.parametrize(
    ("switch", "code"),
    [
        ("error_after=30", "upstream_error"),
        ("disconnect_after=30", "upstream_disconnected"),
        ("stall_after=30", "upstream_timeout"),
    ],
)
async def test_upstream_failure_mid_stream_ends_with_error_and_keeps_partial_text(
    client: httpx.AsyncClient, stack: Stack, switch: str, code: str
) -> None:
    stream_id = await create_stream(client, model=f"chatrelay-demo?tokens=100&delay_ms=1&{switch}")
    _, events, _ = await read_events(client, f"/api/streams/{stream_id}/events")
    assert events[-1].event == "error"
    assert events[-1].json["code"] == code
    partial = assemble(events)
    assert len(partial) > 0
    if switch.startswith("error") or switch.startswith("disconnect"):
        assert partial == (await upstream_record(stack, stream_id))["sent_text"]
    status = (await client.get(f"/api/streams/{stream_id}")).json()
    assert status["status"] == "error"
    assert status["error"]["code"] == code
    assert status["chars"] == len(partial)
    # The partial text stays readable after the end.
    _, replay, _ = await read_events(client, f"/api/streams/{stream_id}/events")
    assert assemble(replay) == partial


async def test_upstream_rate_limit_ends_with_rate_limited_error(client: httpx.AsyncClient) -> None:
    stream_id = await create_stream(client, model="chatrelay-demo?status=429")
    _, events, _ = await read_events(client, f"/api/streams/{stream_id}/events")
    assert [e.event for e in events] == ["start", "error"]
    assert events[-1].json["code"] == "rate_limited"
    assert "429" in events[-1].json["message"]


async def test_upstream_server_error_ends_with_http_error(client: httpx.AsyncClient) -> None:
    stream_id = await create_stream(client, model="chatrelay-demo?status=500")
    _, events, _ = await read_events(client, f"/api/streams/{stream_id}/events")
    assert events[-1].event == "error"
    assert events[-1].json["code"] == "upstream_http_error"
