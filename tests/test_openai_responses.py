"""`/v1/responses` with the unmodified openai-python SDK against the real stack: background streams read halfway and
resumed (on the other replica, and after the end), the SDK's own resume helper, polling, cancel, conversations
through `previous_response_id`, a function-call round trip, and a retried attempt. Every text is compared byte for
byte with what the demo upstream recorded sending."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai.types.responses import Response

from contract.queue import enqueue_generation, job_queue
from contract.redis_client import connect
from contract.store import StreamStore, TakeoverResult
from tests.conftest import API_KEY, Stack, upstream_record

REASONING_MODEL = "chatrelay-demo?scene=reasoning&tokens=120&delay_ms=4"
TOOLS: list[Any] = [
    {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}},
    {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}},
]


@pytest.fixture
async def oai(stack: Stack) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{stack.api_a}/v1", api_key=API_KEY, max_retries=0, timeout=60) as c:
        yield c


@pytest.fixture
async def oai_b(stack: Stack) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{stack.api_b}/v1", api_key=API_KEY, max_retries=0, timeout=60) as c:
        yield c


def sid(response_id: str) -> str:
    return response_id.removeprefix("resp_")


def texts(events: list[Any]) -> dict[str, Any]:
    """What the events say, kind by kind: output text, reasoning text, and each function call's arguments."""
    said: dict[str, Any] = {"text": "", "reasoning": "", "calls": {}}
    for e in events:
        if e.type == "response.output_text.delta":
            said["text"] += e.delta
        elif e.type == "response.reasoning_text.delta":
            said["reasoning"] += e.delta
        elif e.type == "response.output_item.added" and e.item.type == "function_call":
            said["calls"][e.item.id] = {"id": e.item.call_id, "name": e.item.name, "arguments": ""}
        elif e.type == "response.function_call_arguments.delta":
            said["calls"][e.item_id]["arguments"] += e.delta
    said["calls"] = list(said["calls"].values())
    return said


async def read_until(stream: Any, last_seq: int) -> list[Any]:
    """Events until (and with) `last_seq`, then the connection is dropped."""
    seen: list[Any] = []
    async for event in stream:
        seen.append(event)
        if event.sequence_number >= last_seq:
            break
    await stream.close()
    return seen


async def poll(oai: openai.AsyncOpenAI, response_id: str, until: Any, timeout_s: float = 60) -> Response:
    async with asyncio.timeout(timeout_s):
        while True:
            response = await oai.responses.retrieve(response_id)
            if until(response):
                return response
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("model", "kinds"),
    [(REASONING_MODEL, ("text", "reasoning")), ("chatrelay-demo?scene=parallel_tools&delay_ms=3", ("text", "calls"))],
    ids=["reasoning", "parallel-tools"],
)
async def test_background_stream_read_halfway_then_resumed_on_the_other_replica(
    oai: openai.AsyncOpenAI, oai_b: openai.AsyncOpenAI, stack: Stack, model: str, kinds: tuple[str, ...]
) -> None:
    stream = await oai.responses.create(model=model, input="hi", background=True, stream=True, tools=TOOLS)
    first = await read_until(stream, 12)
    assert first[0].type == "response.created"
    assert first[0].response.status == "queued"
    assert first[0].response.background is True
    assert [e.sequence_number for e in first] == list(range(13))
    response_id = first[0].response.id
    last = first[-1].sequence_number

    async with await oai_b.responses.retrieve(response_id, stream=True, starting_after=last) as tail_stream:
        tail = [e async for e in tail_stream]
    assert [e.sequence_number for e in tail] == list(range(last + 1, last + 1 + len(tail)))
    assert tail[-1].type == "response.completed"
    record = await upstream_record(stack, sid(response_id))
    said = texts(first + tail)
    assert said["text"] == record["sent_text"]
    if "reasoning" in kinds:
        assert said["reasoning"] == record["sent_reasoning"] != ""
    if "calls" in kinds:
        assert said["calls"] == record["sent_tool_calls"]
        assert len(said["calls"]) == 2
    final = tail[-1].response
    assert final.output_text == record["sent_text"]
    assert final.usage is not None
    assert final.usage.output_tokens > 0

    # After the end: a full replay from 0, then the response closes; identical on both replicas.
    async with await oai.responses.retrieve(response_id, stream=True) as replay_a:
        on_a = [e.model_dump() async for e in replay_a]
    async with await oai_b.responses.retrieve(response_id, stream=True) as replay_b:
        on_b = [e.model_dump() async for e in replay_b]
    assert on_a == on_b
    assert on_a == [e.model_dump() for e in first + tail]


async def test_stream_helper_resumes_from_a_full_replay(oai: openai.AsyncOpenAI, stack: Stack) -> None:
    stream = await oai.responses.create(model=REASONING_MODEL, input="hi", background=True, stream=True)
    first = await read_until(stream, 8)
    response_id = first[0].response.id
    async with oai.responses.stream(response_id=response_id, starting_after=8) as helper:
        rest = [e async for e in helper]
        final = await helper.get_final_response()
    assert rest[0].sequence_number == 9
    record = await upstream_record(stack, sid(response_id))
    assert texts(first + rest)["text"] == final.output_text == record["sent_text"]
    assert texts(first + rest)["reasoning"] == record["sent_reasoning"]
    reasoning = [item for item in final.output if item.type == "reasoning"]
    assert reasoning
    assert reasoning[0].content is not None
    assert reasoning[0].content[0].text == record["sent_reasoning"]


async def test_background_response_polled_until_completed(oai: openai.AsyncOpenAI, stack: Stack) -> None:
    created = await oai.responses.create(model="chatrelay-demo?tokens=60&delay_ms=3", input="hi", background=True)
    assert created.status == "queued"
    assert created.id.startswith("resp_")
    assert created.output == []
    done = await poll(oai, created.id, lambda r: r.status not in ("queued", "in_progress"))
    assert done.status == "completed"
    assert done.output_text == (await upstream_record(stack, sid(created.id)))["sent_text"]
    assert done.usage is not None
    assert done.usage.output_tokens == 60
    items = await oai.responses.input_items.list(created.id)
    assert [i.type for i in items.data] == ["message"]
    await oai.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        await oai.responses.retrieve(created.id)
    assert await stack_redis_keys(stack, sid(created.id)) == []


async def stack_redis_keys(stack: Stack, stream_id: str) -> list[bytes]:
    """Every key of a stream that is left in Redis."""
    redis = connect(stack.redis_url)
    try:
        found: list[bytes] = await redis.keys(f"{stack.keys.prefix}:{{{stream_id}}}:*")
        return found
    finally:
        await redis.aclose()


async def test_foreground_create_waits_for_the_whole_response(oai: openai.AsyncOpenAI, stack: Stack) -> None:
    response = await oai.responses.create(model="chatrelay-demo?tokens=30&delay_ms=1", input="hi")
    assert response.status == "completed"
    assert response.output_text == (await upstream_record(stack, sid(response.id)))["sent_text"]


async def test_cancel_twice_closes_the_upstream_request(oai: openai.AsyncOpenAI, stack: Stack) -> None:
    created = await oai.responses.create(model="chatrelay-demo?tokens=5000&delay_ms=10", input="hi", background=True)
    await poll(oai, created.id, lambda r: bool(r.output))  # the upstream is streaming
    cancelled = await oai.responses.cancel(created.id)
    assert cancelled.status == "cancelled"
    again = await oai.responses.cancel(created.id)
    assert again.status == "cancelled"
    assert again.output_text == cancelled.output_text
    record = await upstream_record(stack, sid(created.id))
    assert record["client_disconnected"] is True
    assert record["sent_text"].startswith(again.output_text)
    # The stream of a cancelled response replays what it kept and ends.
    async with await oai.responses.retrieve(created.id, stream=True) as replay:
        events = [e async for e in replay]
    assert texts(events)["text"] == again.output_text
    assert events[-1].type == "response.output_item.done"


async def test_previous_response_id_over_three_turns(oai: openai.AsyncOpenAI, stack: Stack) -> None:
    model = "chatrelay-demo?echo=1&delay_ms=1"
    first = await oai.responses.create(model=model, input="first 🙂", instructions="Be brief.")
    second = await oai.responses.create(model=model, input="second\nline", previous_response_id=first.id)
    third = await oai.responses.create(
        model=model,
        input=[{"type": "message", "role": "user", "content": "third"}],
        previous_response_id=second.id,
        instructions="Now be long.",
    )
    assert third.output_text == "third"
    received = (await upstream_record(stack, sid(third.id)))["body"]["messages"]
    # The instructions of earlier turns are not carried on; each answer is the assistant message of its turn.
    assert received == [
        {"role": "system", "content": "Now be long."},
        {"role": "user", "content": "first 🙂"},
        {"role": "assistant", "content": "first 🙂"},
        {"role": "user", "content": "second\nline"},
        {"role": "assistant", "content": "second\nline"},
        {"role": "user", "content": "third"},
    ]
    assert (await upstream_record(stack, sid(first.id)))["body"]["messages"][0] == {
        "role": "system",
        "content": "Be brief.",
    }


async def test_function_call_round_trip(oai: openai.AsyncOpenAI, stack: Stack) -> None:
    first = await oai.responses.create(model="chatrelay-demo?scene=tool_call&delay_ms=1", input="weather?", tools=TOOLS)
    calls = [item for item in first.output if item.type == "function_call"]
    sent = (await upstream_record(stack, sid(first.id)))["sent_tool_calls"]
    assert [{"id": c.call_id, "name": c.name, "arguments": c.arguments} for c in calls] == sent
    result = '{"temperature": 21, "sky": "clear 🌤"}'
    second = await oai.responses.create(
        model="chatrelay-demo?scene=tool_call&delay_ms=1",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": result}],
        tools=TOOLS,
    )
    record = await upstream_record(stack, sid(second.id))
    assert second.output_text == record["sent_text"]
    assert record["body"]["messages"][1:] == [
        {
            "role": "assistant",
            "content": "Let me check that.",
            "tool_calls": [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in sent
            ],
        },
        {"role": "tool", "tool_call_id": calls[0].call_id, "content": result},
    ]
    assert [t["function"]["name"] for t in record["body"]["tools"]] == ["get_weather", "get_time"]


async def _take_over(store: StreamStore, stream_id: str, timeout_s: float = 30) -> None:
    """What a process does when a running attempt's lease lapses (its worker was lost): fence it off with a
    `reset` and queue the next attempt. The lease is removed here instead of waiting for it to expire."""
    async with asyncio.timeout(timeout_s):
        while True:
            await store.redis.delete(store.keys.lease(stream_id))
            result, attempt = await store.takeover(stream_id, max_attempts=5)
            if result == TakeoverResult.RETRY:
                break
            assert result == TakeoverResult.ALIVE, result  # the worker renewed in between: again
    await enqueue_generation(job_queue(store.redis, store.keys), store.keys, stream_id, attempt)


async def test_a_retry_after_output_fails_the_response_never_mixes_attempts(
    oai: openai.AsyncOpenAI, stack: Stack, redis: Any
) -> None:
    # Long enough (10 s at the least) that the takeover below finds it still running.
    created = await oai.responses.create(model="chatrelay-demo?tokens=1000&delay_ms=10", input="hi", background=True)
    before = await poll(oai, created.id, lambda r: bool(r.output))
    store = StreamStore(redis, stack.keys, 3600)
    await _take_over(store, sid(created.id))
    events: list[Any] = []

    async def read_all() -> None:
        async with await oai.responses.retrieve(created.id, stream=True) as stream:
            async for event in stream:
                events.append(event)

    with pytest.raises(openai.APIError, match="retried"):
        await read_all()
    shown = texts(events)["text"]
    assert before.output_text
    assert shown.startswith(before.output_text)
    failed = await oai.responses.retrieve(created.id)
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.code == "server_error"
    assert failed.output_text == shown
    # The retried attempt goes on in the stream (readable on /api); this response keeps what its client was shown.
    await poll(oai, created.id, lambda r: True)
    stopped = await oai.responses.cancel(created.id)
    assert stopped.status == "failed"
    assert stopped.output_text == shown
