"""`/api/chat` over HTTP on the real stack: the UI message stream's headers and framing, replays on either API process,
when there is nothing to resume, owners, a chat's one active answer, errors, and retried attempts."""

import asyncio
import time
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from api.ai_sdk import chats
from contract.events import DoneEvent, encode_event, encode_text
from contract.ids import new_stream_id
from contract.settings import Settings
from contract.status import StreamStatus
from contract.store import NewStream, StreamStore, TakeoverResult
from tests.conftest import Stack, upstream_record

OWNER = "key:tests"  # the owner of tests.conftest.API_KEY's streams


def ui_body(chat_id: str, text: str = "hi", model: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": chat_id,
        "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": text}]}],
        "trigger": "submit-message",
        **extra,
    }
    if model is not None:
        body["model"] = model
    return body


def chunks(raw: bytes) -> list[Any]:
    """The chunks of a UI message stream (heartbeat comments left out), checking that it ends with `[DONE]`."""
    events = [e for e in raw.split(b"\n\n") if e and not e.startswith(b":")]
    assert events[-1] == b"data: [DONE]", raw[-200:]
    return [orjson.loads(e.removeprefix(b"data: ")) for e in events[:-1]]


def text_of(values: list[Any]) -> str:
    return "".join(v["delta"] for v in values if v["type"] == "text-delta")


async def post_chat(client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[httpx.Response, bytes]:
    async with client.stream("POST", "/api/chat", json=body) as response:
        raw = await response.aread()
    return response, raw


@pytest.fixture
async def store(redis: Redis, stack: Stack) -> StreamStore:
    return StreamStore(redis, stack.keys, 3600)


async def test_chat_answers_as_the_ui_message_stream(client: httpx.AsyncClient, stack: Stack) -> None:
    model = "chatrelay-demo?tokens=40&tricky=1&delay_ms=2&seed=5"
    response, raw = await post_chat(client, ui_body("routes-answer", model=model))
    assert response.status_code == 200
    headers = response.headers
    assert headers["content-type"] == "text/event-stream"
    assert headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert headers["x-accel-buffering"] == "no"
    assert headers["cache-control"] == "no-cache"
    stream_id = headers["x-chatrelay-stream-id"]
    values = chunks(raw)
    record = await upstream_record(stack, stream_id)
    assert text_of(values) == record["sent_text"]
    assert values[0]["type"] == "start"
    assert values[-1]["messageMetadata"]["finishReason"] == "stop"
    # The answer is an ordinary stream: the native API reads it too.
    message = (await client.get(f"/api/streams/{stream_id}/message")).json()
    assert message["message"]["content"] == record["sent_text"]


async def test_chat_stream_replays_the_same_frames_on_either_replica(
    client: httpx.AsyncClient, client_b: httpx.AsyncClient, stack: Stack
) -> None:
    _, raw = await post_chat(client, ui_body("routes-replay", model="chatrelay-demo?tokens=30&delay_ms=2"))
    posted = chunks(raw)
    for reader in (client, client_b):
        replay = await reader.get("/api/chat/routes-replay/stream")
        assert replay.status_code == 200
        assert replay.headers["x-vercel-ai-ui-message-stream"] == "v1"
        assert chunks(replay.content) == posted  # same message id, part ids and text


async def test_chat_stream_is_204_when_there_is_nothing_to_resume(
    client: httpx.AsyncClient, redis: Redis, stack: Stack
) -> None:
    assert (await client.get("/api/chat/never-used/stream")).status_code == 204
    assert (await client.get("/api/chat/bad%20id/stream")).status_code == 204
    response, _ = await post_chat(client, ui_body("routes-window", model="chatrelay-demo?tokens=3&delay_ms=1"))
    stream_id = response.headers["x-chatrelay-stream-id"]
    assert (await client.get("/api/chat/routes-window/stream")).status_code == 200
    # Once it ended longer ago than the replay window (CHATRELAY_CHAT_REPLAY_SECONDS, 300 s here), no more.
    ended_ms = int((time.time() - Settings().chat_replay_seconds - 1) * 1000)
    await redis.hset(stack.keys.meta(stream_id), "finished_at", str(ended_ms))  # type: ignore[misc]
    assert (await client.get("/api/chat/routes-window/stream")).status_code == 204


async def test_chat_ids_belong_to_their_owner(client: httpx.AsyncClient, stack: Stack) -> None:
    model = "chatrelay-demo?tokens=20&delay_ms=2"
    _, mine = await post_chat(client, ui_body("routes-shared-id", model=model))
    async with httpx.AsyncClient(base_url=stack.api_b, timeout=30) as stranger:  # an anonymous browser session
        nothing = await stranger.get("/api/chat/routes-shared-id/stream")
        assert nothing.status_code == 204
        # A browser's first request may be this resume: it starts the session that its chats then belong to.
        assert nothing.headers["set-cookie"].startswith("chatrelay_session=")
        stop = await stranger.post("/api/chat/routes-shared-id/stop", json={})
        assert stop.status_code == 404
        # The same id is the stranger's own chat.
        _, theirs = await post_chat(stranger, ui_body("routes-shared-id", "other", model=model))
        assert chunks(theirs)[0]["messageId"] != chunks(mine)[0]["messageId"]
        assert chunks((await stranger.get("/api/chat/routes-shared-id/stream")).content) == chunks(theirs)
    async with httpx.AsyncClient(base_url=stack.api_a, timeout=30, headers={"Authorization": "Bearer x"}) as bad:
        assert (await bad.get("/api/chat/routes-shared-id/stream")).status_code == 401
    assert chunks((await client.get("/api/chat/routes-shared-id/stream")).content) == chunks(mine)


async def first_chunks(client: httpx.AsyncClient, body: dict[str, Any], until_type: str) -> tuple[str, list[Any]]:
    """POST, read until a chunk of `until_type`, then drop the connection (a reload)."""
    seen: list[Any] = []
    async with client.stream("POST", "/api/chat", json=body) as response:
        stream_id = response.headers["x-chatrelay-stream-id"]
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                seen.append(orjson.loads(line[6:]))
                if seen[-1]["type"] == until_type:
                    break
    return stream_id, seen


async def wait_status(client: httpx.AsyncClient, stream_id: str, status: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while (now := (await client.get(f"/api/streams/{stream_id}")).json()["status"]) != status:
        assert time.monotonic() < deadline, f"stream {stream_id} is {now}, not {status}, after {timeout_s} s"
        await asyncio.sleep(0.05)


async def test_chat_has_one_active_answer(client: httpx.AsyncClient, stack: Stack) -> None:
    slow = "chatrelay-demo?tokens=400&delay_ms=50"
    first, _ = await first_chunks(client, ui_body("routes-one-active", model=slow), "text-delta")
    _, raw = await post_chat(client, ui_body("routes-one-active", "again", model="chatrelay-demo?tokens=5&delay_ms=1"))
    await wait_status(client, first, "cancelled")
    assert (await upstream_record(stack, first))["client_disconnected"]
    # The chat now resumes the second answer.
    assert chunks((await client.get("/api/chat/routes-one-active/stream")).content) == chunks(raw)


async def test_chat_stop_cancels_for_every_reader(client: httpx.AsyncClient, client_b: httpx.AsyncClient) -> None:
    slow = "chatrelay-demo?tokens=400&delay_ms=50"
    stream_id, _ = await first_chunks(client, ui_body("routes-stop", model=slow), "text-delta")
    async with client_b.stream("GET", "/api/chat/routes-stop/stream") as reader:
        stop = await client.post("/api/chat/routes-stop/stop", json={})
        assert stop.status_code == 202
        assert stop.json() == {"id": stream_id, "status": "requested"}
        values = chunks(await reader.aread())
    assert [v["type"] for v in values[-2:]] == ["text-end", "abort"]
    await wait_status(client, stream_id, "cancelled")
    kept = (await client.get(f"/api/streams/{stream_id}/message")).json()["message"]["content"]
    assert text_of(chunks((await client.get("/api/chat/routes-stop/stream")).content)) == kept
    again = await client.post("/api/chat/routes-stop/stop", json={})
    assert again.json()["status"] == "cancelled"  # idempotent


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (ui_body("routes-bad", model="m", temprature=1), "temprature"),
        (ui_body("routes-bad", model="m", temperature=7), "temperature"),
        ({**ui_body("routes-bad"), "messages": [{"id": "u", "role": "user", "parts": [{"type": "text"}]}]}, "text"),
        ({**ui_body("routes-bad"), "messages": []}, "messages"),
        (ui_body("../x"), "id"),
        ({**ui_body("routes-bad"), "trigger": "resume-stream"}, "trigger"),
    ],
)
async def test_chat_rejects_what_it_cannot_answer(client: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    response = await client.post("/api/chat", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["message"]


async def test_chat_stop_needs_json_like_every_change(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/chat/routes-any/stop")).status_code == 415


async def test_chat_features_header_opts_in_to_newer_fields(client: httpx.AsyncClient) -> None:
    body = ui_body("routes-features", model="chatrelay-demo?tokens=3&delay_ms=1")
    async with client.stream(
        "POST", "/api/chat", json=body, headers={"X-Chatrelay-UI-Features": "finish-reason"}
    ) as response:
        values = chunks(await response.aread())
    assert values[-1] == {"type": "finish", "finishReason": "stop", "messageMetadata": values[-1]["messageMetadata"]}
    plain = chunks((await client.get("/api/chat/routes-features/stream")).content)
    assert "finishReason" not in plain[-1]


class FakeWorker:
    """Writes a stream the way a worker and a takeover would, through the store's own scripts, out of the lease
    monitors' sight (not in the active index), so that nothing else acts on it."""

    def __init__(self, store: StreamStore, stream_id: str) -> None:
        self.store, self.stream_id = store, stream_id

    async def create(self, chat_id: str) -> None:
        request = orjson.dumps({"messages": [{"role": "user", "content": "hi"}]})
        created = int(time.time() * 1000)
        await self.store.create(NewStream(self.stream_id, request, "chatrelay-demo", created, owner=OWNER))
        await self.store.redis.zrem(self.store.keys.active, self.stream_id)
        await chats.activate(
            self.store.redis, self.store.keys, OWNER, chat_id, chats.ActiveStream(self.stream_id, "msg-r"), 3600
        )

    async def begin(self, attempt: int) -> None:
        assert await self.store.begin(self.stream_id, attempt, "fake", "chatrelay-demo", 60_000) == "ok"

    async def say(self, attempt: int, text: str) -> None:
        assert await self.store.append(self.stream_id, attempt, len(text), [encode_text(b"delta", text)]) == "ok"

    async def lose_worker(self) -> None:
        await self.store.redis.delete(self.store.keys.lease(self.stream_id))
        assert await self.store.takeover(self.stream_id, 3) == (TakeoverResult.RETRY, 2)

    async def finish(self, attempt: int) -> None:
        done = encode_event(DoneEvent(finish_reason="stop", usage=None))
        assert await self.store.finish(self.stream_id, attempt, StreamStatus.DONE, done)


async def read_ui(
    client: httpx.AsyncClient, url: str, into: list[Any], saw_text: asyncio.Event, features: str = ""
) -> None:
    """Read a chat's UI message stream into `into`; `saw_text` is set at the first text delta."""
    headers = {"X-Chatrelay-UI-Features": features} if features else {}
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                into.append(orjson.loads(line[6:]))
                if into[-1]["type"] == "text-delta":
                    saw_text.set()


async def test_chat_retried_attempt_never_leaves_the_dead_one_in_the_message(
    client: httpx.AsyncClient, store: StreamStore
) -> None:
    worker = FakeWorker(store, new_stream_id())
    await worker.create("routes-reset")
    await worker.begin(1)
    await worker.say(1, "Dead attempt ")
    url = "/api/chat/routes-reset/stream"
    plain: list[Any] = []
    stepped: list[Any] = []
    saw = [asyncio.Event(), asyncio.Event()]
    readers = [
        asyncio.create_task(read_ui(client, url, plain, saw[0])),
        asyncio.create_task(read_ui(client, url, stepped, saw[1], features="reset-step")),
    ]
    for event in saw:
        await asyncio.wait_for(event.wait(), 30)
    # Both follow live when the worker is lost and the answer starts over.
    await worker.lose_worker()
    await asyncio.wait_for(readers[0], 30)
    # Without `reset-step` the response ends there, marked failed: the dead attempt's text is never the answer.
    assert [v["type"] for v in plain[-2:]] == ["data-chatrelay-reset", "error"]
    assert plain[-1]["errorText"].startswith("retrying: ")
    await worker.begin(2)
    await worker.say(2, "Second ")
    await worker.say(2, "attempt.")
    await worker.finish(2)
    await asyncio.wait_for(readers[1], 30)
    # With it, the client drops the dead attempt's parts and the new attempt follows in the same response.
    types = [v["type"] for v in stepped]
    assert types.count("reset-step") == 1
    assert text_of(stepped[types.index("reset-step") :]) == "Second attempt."
    # A resume after the reset replays only the new attempt, under the same message id.
    resumed = chunks((await client.get(url)).content)
    assert resumed[0] == {"type": "start", "messageId": "msg-r"}
    assert text_of(resumed) == "Second attempt."
    assert "data-chatrelay-reset" not in [v["type"] for v in resumed]


async def test_chat_replay_of_a_follow_up_rebuilds_the_message_it_continues(client: httpx.AsyncClient) -> None:
    tool = {
        "type": "tool-get_weather",
        "toolCallId": "call_1",
        "state": "output-available",
        "input": {"city": "Paris"},
        "output": {"temp": 21},
    }
    assistant = {
        "id": "a1",
        "role": "assistant",
        "parts": [{"type": "step-start"}, {"type": "text", "text": "Hm."}, tool],
    }
    body = ui_body("routes-follow-up", model="chatrelay-demo?scene=tool_call&delay_ms=1", messageId="a1")
    body["messages"].append(assistant)
    _, raw = await post_chat(client, body)
    live = chunks(raw)
    assert live[0] == {"type": "start", "messageId": "a1"}  # the answer continues the client's message
    assert "tool-output-available" not in [v["type"] for v in live]
    replay = chunks((await client.get("/api/chat/routes-follow-up/stream")).content)
    assert replay[0] == live[0]
    assert {"type": "tool-output-available", "toolCallId": "call_1", "output": {"temp": 21}} in replay
    assert text_of(replay) == "Hm." + text_of(live)
    # The chat's next answer is a new message: nothing of the old one is replayed with it.
    _, raw = await post_chat(client, ui_body("routes-follow-up", model="chatrelay-demo?tokens=3&delay_ms=1"))
    assert chunks((await client.get("/api/chat/routes-follow-up/stream")).content) == chunks(raw)


async def test_chat_refuses_what_cannot_be_stored(client: httpx.AsyncClient) -> None:
    # JSON can carry a lone surrogate (here in a message id, which is stored as it came); UTF-8 cannot.
    body = orjson.dumps(ui_body("routes-unicode", model="chatrelay-demo?tokens=3")).replace(b'"u1"', b'"\\ud800"')
    response = await client.post("/api/chat", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith("messages.0.id: ")
