"""Bad input gets a clear 4xx JSON error that names what is wrong."""

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import create_stream
from tests.sse_client import read_events


async def test_unknown_stream_is_404(client: httpx.AsyncClient) -> None:
    for path in (
        "/api/streams/AAAAAAAAAAAAAAAAAAAAAA",
        "/api/streams/AAAAAAAAAAAAAAAAAAAAAA/events",
        "/api/streams/not-an-id/events",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"


async def test_unknown_api_path_is_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("offset", ["abc", "1-2-3", "-1", "99999999999999999999999-0", "1.5-0"])
async def test_malformed_offset_is_400(client: httpx.AsyncClient, offset: str) -> None:
    stream_id = await create_stream(client, model="chatrelay-demo?tokens=3&delay_ms=0")
    by_header = await client.get(f"/api/streams/{stream_id}/events", headers={"Last-Event-ID": offset})
    by_query = await client.get(f"/api/streams/{stream_id}/events", params={"offset": offset})
    for response in (by_header, by_query):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "bad_offset"


async def test_offset_the_stream_does_not_hold_is_410(client: httpx.AsyncClient) -> None:
    stream_id = await create_stream(client, model="chatrelay-demo?tokens=3&delay_ms=0")
    await read_events(client, f"/api/streams/{stream_id}/events")
    response = await client.get(f"/api/streams/{stream_id}/events", params={"offset": "5-0"})
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "offset_unavailable"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user"}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": "x"}], "temperature": 9}, "temperature"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 10**9}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        ({"messages": [{"role": "user", "content": "x"}], "bogus": 1}, "bogus"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.tool_call_id"),
        ({"messages": [{"role": "assistant", "content": None}]}, "messages.0"),
        ({"messages": [{"role": "user", "content": [{"type": "video", "video": "x"}]}]}, "messages.0.content.0.type"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]},
            "messages.0.content.0.image_url.url",
        ),
        ({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}, "tools.0.function"),
        ({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"messages": [{"role": "user", "content": "x"}], "extra_body": {"stream": False}}, "body"),
        ({"messages": [{"role": "user", "content": "x"}] * 51}, "messages"),
        ({"messages": [{"role": "user", "content": "x" * 20001}]}, "messages.0.content"),
    ],
)
async def test_invalid_body_is_422_naming_the_field(client: httpx.AsyncClient, body: object, field: str) -> None:
    response = await client.post("/api/streams", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(field)


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/streams", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


async def test_oversize_body_is_413(client: httpx.AsyncClient) -> None:
    body = {"messages": [{"role": "user", "content": "x" * 300_000}]}
    response = await client.post("/api/streams", json=body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_oversize_chunked_body_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(30):
            yield b"x" * 10_000

    response = await client.post("/api/streams", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
