"""The demo server's HTTP side, and its record of what it sent (for tests: `GET /_demo/requests`)."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import ORJSONResponse, Response, StreamingResponse

from demo_upstream.script import Script

STREAM_ID_HEADER = "x-chatrelay-stream-id"


@dataclass
class RequestRecord:
    id: str
    stream_id: str | None
    model: str
    sent_text: str = ""
    finished: bool = False
    client_disconnected: bool = False
    disconnected_at: float | None = None
    started_at: float = field(default_factory=time.time)
    # With the `stamp` switch: (characters sent so far, time.time()) as each token went out, for the benchmark.
    emits: list[tuple[int, float]] = field(default_factory=list)


class AbruptDisconnect(Exception):
    """Raised inside a started response: uvicorn then drops the connection mid-body."""


def _chunk(cid: str, model: str, created: int, choices: list[dict[str, Any]] | None, usage: Any = None) -> bytes:
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
    }
    if usage is not None:
        body["usage"] = usage
    return b"data: " + orjson.dumps(body) + b"\n\n"


def create_app(defaults: Script) -> FastAPI:
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
        record = RequestRecord(uuid.uuid4().hex, request.headers.get(STREAM_ID_HEADER), model)
        records.append(record)
        del records[:-5000]
        if script.status:
            record.finished = True
            error = {"error": {"message": f"demo switch: HTTP {script.status}", "type": "demo", "code": None}}
            # retry-after-ms keeps the SDK's own retries fast in tests.
            return ORJSONResponse(error, script.status, headers={"retry-after-ms": "10"})
        if not body.get("stream"):
            return ORJSONResponse({"error": {"message": "the demo model only streams", "type": "demo"}}, 400)
        tokens = script.reply_tokens(body.get("messages", []))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(_stream(script, record, model, tokens, include_usage), media_type="text/event-stream")

    return app


async def _stream(
    script: Script, record: RequestRecord, model: str, tokens: list[str], include_usage: bool
) -> AsyncIterator[bytes]:
    cid, created = f"chatcmpl-{record.id[:12]}", int(time.time())
    try:
        if script.ttft_ms:
            await asyncio.sleep(script.ttft_ms / 1000)
        yield _chunk(cid, model, created, [{"index": 0, "delta": {"role": "assistant", "content": ""}}])
        for i, token in enumerate(tokens):
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
            record.sent_text += token
            if script.stamp:
                record.emits.append((len(record.sent_text), time.time()))
            yield _chunk(cid, model, created, [{"index": 0, "delta": {"content": token}, "finish_reason": None}])
        yield _chunk(cid, model, created, [{"index": 0, "delta": {}, "finish_reason": script.finish_reason}])
        if include_usage:
            usage = {"prompt_tokens": 10, "completion_tokens": len(tokens), "total_tokens": 10 + len(tokens)}
            yield _chunk(cid, model, created, [], usage)
        yield b"data: [DONE]\n\n"
        record.finished = True
    except (asyncio.CancelledError, GeneratorExit):
        record.client_disconnected = True
        record.disconnected_at = time.time()
        raise
