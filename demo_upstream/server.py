"""The demo server's HTTP side, and its record of what it received and sent (for tests: `GET /_demo/requests`)."""

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import ORJSONResponse, Response, StreamingResponse

from demo_upstream import scenes
from demo_upstream.script import Script

STREAM_ID_HEADER = "x-chatrelay-stream-id"


@dataclass
class RequestRecord:
    id: str
    stream_id: str | None
    model: str
    body: dict[str, Any] = field(default_factory=dict)  # the request as received
    sent_text: str = ""
    sent_reasoning: str = ""
    sent_refusal: str = ""
    sent_tool_calls: list[dict[str, str]] = field(default_factory=list)  # {id, name, arguments} by index
    finished: bool = False
    client_disconnected: bool = False
    disconnected_at: float | None = None
    started_at: float = field(default_factory=time.time)
    # With the `stamp` switch: (characters sent so far, time.time()) as each token went out, for the benchmark.
    emits: list[tuple[int, float]] = field(default_factory=list)

    def said(self, delta: dict[str, Any], reasoning_field: str) -> None:
        """Add what one delta says to the record."""
        self.sent_text += delta.get("content") or ""
        self.sent_reasoning += delta.get(reasoning_field) or ""
        self.sent_refusal += delta.get("refusal") or ""
        for call in delta.get("tool_calls") or []:
            while len(self.sent_tool_calls) <= call["index"]:
                self.sent_tool_calls.append({"id": "", "name": "", "arguments": ""})
            record = self.sent_tool_calls[call["index"]]
            record["id"] += call.get("id") or ""
            record["name"] += call["function"].get("name") or ""
            record["arguments"] += call["function"].get("arguments") or ""


class AbruptDisconnect(Exception):
    """Raised inside a started response: uvicorn then drops the connection mid-body."""


def _chunk(envelope: dict[str, Any], step: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps({**envelope, **step}) + b"\n\n"


_REPLAY_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def create_app(defaults: Script, replay_dir: Path | None = None) -> FastAPI:
    app = FastAPI(title="chatrelay demo model", docs_url=None, redoc_url=None)
    records: list[RequestRecord] = []

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "chatrelay-demo", "object": "model", "owned_by": "chatrelay"}]}

    @app.get("/_demo/requests")
    async def list_requests(stream_id: str | None = None) -> list[dict[str, Any]]:
        return [asdict(r) for r in records if stream_id is None or r.stream_id == stream_id]

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        body = await request.json()
        model = str(body.get("model", "chatrelay-demo"))
        script = defaults.with_options(model)
        record = RequestRecord(uuid.uuid4().hex, request.headers.get(STREAM_ID_HEADER), model, body)
        records.append(record)
        del records[:-5000]
        if script.status:
            record.finished = True
            error = {"error": {"message": f"demo switch: HTTP {script.status}", "type": "demo", "code": None}}
            # retry-after-ms keeps the SDK's own retries fast in tests.
            return ORJSONResponse(error, script.status, headers={"retry-after-ms": "10"})
        if not body.get("stream"):
            return ORJSONResponse({"error": {"message": "the demo model only streams", "type": "demo"}}, 400)
        if script.replay:
            path = replay_dir / script.replay if replay_dir and _REPLAY_NAME.match(script.replay) else None
            if path is None or not path.is_file():
                return ORJSONResponse({"error": {"message": f"no recording {script.replay!r}", "type": "demo"}}, 404)
            return StreamingResponse(_replay(script, record, path), media_type="text/event-stream")
        messages = body.get("messages", [])
        try:
            steps = scenes.steps(script, messages, script.reply_tokens(messages))
        except ValueError as exc:
            return ORJSONResponse({"error": {"message": str(exc), "type": "demo"}}, 400)
        finish = scenes.finish_reason(script, messages)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(
            _stream(script, record, model, steps, finish, include_usage), media_type="text/event-stream"
        )

    return app


async def _stream(
    script: Script, record: RequestRecord, model: str, steps: list[dict[str, Any]], finish: str, include_usage: bool
) -> AsyncIterator[bytes]:
    envelope = {
        "id": f"chatcmpl-{record.id[:12]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    try:
        if script.ttft_ms:
            await asyncio.sleep(script.ttft_ms / 1000)
        yield _chunk(envelope, {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
        for i, step in enumerate(steps):
            if i == script.error_after:
                error = {"error": {"message": "demo switch: error mid-stream", "type": "server_error"}}
                yield b"data: " + orjson.dumps(error) + b"\n\n"
                record.finished = True
                return
            if i == script.stall_after:
                await asyncio.sleep(3600)
            if i == script.disconnect_after:
                record.finished = True  # the server ended it, on purpose
                raise AbruptDisconnect
            if i and script.delay_ms:
                await asyncio.sleep(script.delay_ms / 1000)
            for choice in step["choices"]:
                record.said(choice.get("delta") or {}, script.reasoning_field)
            if script.stamp:
                record.emits.append((len(record.sent_text) + len(record.sent_reasoning), time.time()))
            yield _chunk(envelope, step)
        yield _chunk(envelope, {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if include_usage:
            tokens = len(steps)
            reasoning = sum(
                1 for step in steps for c in step["choices"] if (c.get("delta") or {}).get(script.reasoning_field)
            )
            usage = {
                "prompt_tokens": 10,
                "completion_tokens": tokens,
                "total_tokens": 10 + tokens,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": reasoning},
            }
            yield _chunk(envelope, {"choices": [], "usage": usage})
        yield b"data: [DONE]\n\n"
        record.finished = True
    except (asyncio.CancelledError, GeneratorExit):
        record.client_disconnected = True
        record.disconnected_at = time.time()
        raise


async def _replay(script: Script, record: RequestRecord, path: Path) -> AsyncIterator[bytes]:
    """A recorded SSE body as it was, one event (up to its blank line) at a time, `delay_ms` apart."""
    body = await asyncio.to_thread(path.read_bytes)
    events = [e + b"\n\n" for e in body.split(b"\n\n") if e]
    if not body.endswith(b"\n\n") and events:
        events[-1] = events[-1][:-2]  # as recorded: some servers end without the last blank line
    try:
        for i, event in enumerate(events):
            if i and script.delay_ms:
                await asyncio.sleep(script.delay_ms / 1000)
            yield event
        record.finished = True
    except (asyncio.CancelledError, GeneratorExit):
        record.client_disconnected = True
        raise
