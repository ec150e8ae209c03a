"""Everything a chat completion can say, relayed exactly: reasoning, tool calls (parallel and interleaved),
refusals and Azure's filter chunks, read whole and with disconnects; requests that reach the upstream as sent."""

import asyncio
import random
from typing import Any

import httpx
import pytest

from demo_upstream.scenes import REFUSAL, TIME_ARGS, WEATHER_ARGS
from tests.conftest import Stack, upstream_record
from tests.sse_client import assemble_message, read_events, read_with_disconnects, sent_message

USER = [{"role": "user", "content": "What is the weather in Paris, and the time in Tokyo?"}]


async def _create(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await client.post("/api/streams", json=body)
    assert response.status_code == 202, response.text
    stream_id: str = response.json()["id"]
    return stream_id


def _api_message(message: dict[str, Any]) -> dict[str, Any]:
    """`GET /api/streams/{id}/message`'s message in `assemble_message`'s shape."""
    calls = message["tool_calls"] or []
    return {
        "content": message["content"] or "",
        "reasoning": message["reasoning"] or "",
        "refusal": message["refusal"] or "",
        "tool_calls": [
            {"id": c["id"], "name": c["function"]["name"], "arguments": c["function"]["arguments"]} for c in calls
        ],
    }


@pytest.mark.parametrize(
    ("scene", "cuts"),
    [
        ("scene=reasoning&tokens=300&reasoning_field=reasoning_content&tricky=1", 20),
        ("scene=reasoning&tokens=300&reasoning_field=reasoning", 20),
        ("scene=tool_call", 20),
        ("scene=parallel_tools", 20),
        ("scene=refusal", 5),
        ("scene=azure&tokens=200", 20),
    ],
)
async def test_every_kind_read_whole_and_resumed_equals_the_upstream(
    client: httpx.AsyncClient, client_b: httpx.AsyncClient, stack: Stack, scene: str, cuts: int
) -> None:
    stream_id = await _create(client, {"messages": USER, "model": f"chatrelay-demo?{scene}&delay_ms=4"})
    url = f"/api/streams/{stream_id}/events"
    (status, whole, _), (resumed, reconnects) = await asyncio.gather(
        read_events(client, url), read_with_disconnects(client, url, cuts, random.Random(12), [client, client_b])
    )
    record = await upstream_record(stack, stream_id)
    sent = sent_message(record)
    assert status == 200
    assert whole[-1].event == "done"
    assert assemble_message(whole) == assemble_message(resumed) == sent
    assert reconnects >= 1
    ids = [e.id for e in resumed]
    assert len(set(ids)) == len(ids), "an event was delivered twice"
    message = (await client.get(f"/api/streams/{stream_id}/message")).json()
    assert message["status"] == "done"
    assert _api_message(message["message"]) == sent
    status_json = (await client.get(f"/api/streams/{stream_id}")).json()
    assert status_json["text_chars"] == len(sent["content"])
    assert status_json["reasoning_chars"] == len(sent["reasoning"])
    assert status_json["refusal_chars"] == len(sent["refusal"])
    assert status_json["tool_calls"] == len(sent["tool_calls"])


async def test_parallel_tool_calls_interleaved_by_the_upstream_assemble_by_index(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    stream_id = await _create(client, {"messages": USER, "model": "chatrelay-demo?scene=parallel_tools&delay_ms=1"})
    _, events, _ = await read_events(client, f"/api/streams/{stream_id}/events")
    indexes = [e.json["index"] for e in events if e.event == "tool_call"]
    assert 0 in indexes[indexes.index(1) :], "the fragments were not interleaved"
    message = assemble_message(events)
    assert [(c["name"], c["arguments"]) for c in message["tool_calls"]] == [
        ("get_weather", WEATHER_ARGS),
        ("get_time", TIME_ARGS),
    ]
    assert events[-1].json["finish_reason"] == "tool_calls"
    assert message == sent_message(await upstream_record(stack, stream_id))


async def test_refusal_is_its_own_kind(client: httpx.AsyncClient) -> None:
    stream_id = await _create(client, {"messages": USER, "model": "chatrelay-demo?scene=refusal&delay_ms=1"})
    _, events, _ = await read_events(client, f"/api/streams/{stream_id}/events")
    assert assemble_message(events)["refusal"] == REFUSAL
    assert assemble_message(events)["content"] == ""


async def test_tool_results_follow_up_reaches_the_upstream_unchanged(client: httpx.AsyncClient, stack: Stack) -> None:
    first = await _create(client, {"messages": USER, "model": "chatrelay-demo?scene=parallel_tools&delay_ms=1"})
    _, events, _ = await read_events(client, f"/api/streams/{first}/events")
    answer = assemble_message(events)
    follow_up = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in answer["tool_calls"]
            ],
        },
        {"role": "tool", "tool_call_id": answer["tool_calls"][0]["id"], "content": "18 °C, clear"},
        {"role": "tool", "tool_call_id": answer["tool_calls"][1]["id"], "content": [{"type": "text", "text": "21:04"}]},
    ]
    second = await _create(client, {"messages": follow_up, "model": "chatrelay-demo?scene=parallel_tools&delay_ms=1"})
    _, events, _ = await read_events(client, f"/api/streams/{second}/events")
    record = await upstream_record(stack, second)
    assert record["body"]["messages"] == follow_up
    assert assemble_message(events)["content"] == record["sent_text"]
    assert "18 °C, clear" in record["sent_text"]
    assert events[-1].json["finish_reason"] == "stop"


async def test_every_option_reaches_the_upstream_unchanged(client: httpx.AsyncClient, stack: Stack) -> None:
    options: dict[str, Any] = {
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather now",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                    "strict": True,
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "weather", "schema": {"type": "object"}, "strict": True},
        },
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 100,
        "max_completion_tokens": 120,
        "stop": ["\n\n", "END"],
        "seed": 42,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "logit_bias": {"50256": -100},
        "logprobs": True,
        "top_logprobs": 3,
        "reasoning_effort": "low",
        "verbosity": "high",
        "user": "user-123",
        "metadata": {"team": "search"},
        "prompt_cache_key": "cache-1",
        "service_tier": "flex",
        "modalities": ["text"],
        "n": 1,
    }
    extra = {
        "top_k": 20,
        "min_p": 0.05,
        "chat_template_kwargs": {"enable_thinking": False},
        "reasoning": {"max_tokens": 64},
    }
    messages = [
        {"role": "developer", "content": "Be brief.", "name": "policy"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
            "reasoning": "kept for servers that take it",
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    body = {"messages": messages, "model": "chatrelay-demo?tokens=5&delay_ms=0", **options, "extra_body": extra}
    stream_id = await _create(client, body)
    await read_events(client, f"/api/streams/{stream_id}/events")
    received = (await upstream_record(stack, stream_id))["body"]
    assert received["messages"] == messages
    for name, value in {**options, **extra}.items():
        assert received[name] == value, name
    assert received["stream"] is True
    assert received["stream_options"] == {"include_usage": True}
    assert "extra_body" not in received


async def test_oversize_image_is_422_naming_the_part(client: httpx.AsyncClient) -> None:
    image = "data:image/png;base64," + "A" * 80_000  # about 60 KB against the stack's 50 KB limit
    content = [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": image}}]
    response = await client.post("/api/streams", json={"messages": [{"role": "user", "content": content}]})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith("messages.0.content.1.image_url.url")


async def test_images_reach_the_upstream(client: httpx.AsyncClient, stack: Stack) -> None:
    content = [
        {"type": "text", "text": "What are these?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
    ]
    messages = [{"role": "user", "content": content}]
    stream_id = await _create(client, {"messages": messages, "model": "chatrelay-demo?scene=images&delay_ms=1"})
    _, events, _ = await read_events(client, f"/api/streams/{stream_id}/events")
    record = await upstream_record(stack, stream_id)
    assert record["body"]["messages"] == messages
    assert assemble_message(events)["content"] == record["sent_text"] == "You sent me 2 images: image/png, image/jpeg."


@pytest.mark.parametrize(
    "raw",
    [
        b'{"messages": [{"role": "user", "content": "\\ud800"}]}',
        b'{"messages": [{"role": "user", "content": "ok"}], "metadata": {"\\udfff": "x"}}',
        b'{"messages": [{"role": "user", "content": "\xed\xa0\x80"}]}',
        b'{"messages": [{"role": "\\ud800", "content": "x"}]}',
        b'{"messages": [{"role": "user", "content": [{"type": "\\udc00"}]}]}',
        b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}',
        b'{"messages": [{"role": "user", "content": "ok"}], "extra_body": {"top_k": 123456789012345678901234567890}}',
        b'{"messages": [{"role": "user", "content": "ok"}], "extra_body": {"x": NaN}}',
    ],
)
async def test_text_that_is_not_valid_unicode_is_a_4xx(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post("/api/streams", content=raw, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["message"]
