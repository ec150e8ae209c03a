"""`POST /v1/chat/completions`: the native `POST /api/streams` request, answered in Chat Completions' own format.

The answer runs on a worker like any other, detached from the connection: the response names its stream
(`x-chatrelay-stream-id`), so a client that lost it reads the rest through `/api/streams/{id}/events` or
`/api/streams/{id}/message`. Keys the request model does not name go to the upstream as provider extensions
(`extra_body`), which is where the openai SDK's own `extra_body` puts them: at the top level of the body.
"""

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from redis.exceptions import RedisError

from api.auth import CallerDep
from api.chat_limits import check_chat
from api.deps import StateDep
from api.launch import start_stream
from api.openai_compat.chat_chunks import ChatChunks, completion, message_json, reasoning_field
from api.openai_compat.errors import UPSTREAM_STATUS, OpenAIRoute, json_response, openai_error
from api.openai_compat.follow import read_all, wait_for_end
from api.sse import SseHandoff, SseStream
from contract.chat_request import ChatRequest
from contract.message import MessageBuilder

router = APIRouter(prefix="/v1/chat", tags=["openai"], route_class=OpenAIRoute)

STREAM_ID_HEADER = "x-chatrelay-stream-id"
_KNOWN = frozenset(ChatRequest.model_fields)


def chat_request(body: dict[str, Any]) -> ChatRequest:
    """The body as a `ChatRequest`, its unknown top-level keys moved into `extra_body`."""
    extras = {k: v for k, v in body.items() if k not in _KNOWN}
    if extras and isinstance(body.get("extra_body") or {}, dict):
        body = {k: v for k, v in body.items() if k in _KNOWN}
        body["extra_body"] = {**(body.get("extra_body") or {}), **extras}
    try:
        return ChatRequest.model_validate(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors, body=body) from None


@router.post("/completions", response_model=None)
async def create_chat_completion(
    body: Annotated[dict[str, Any], Body()], state: StateDep, caller: CallerDep
) -> Response | dict[str, Any]:
    """A chat completion: `chat.completion.chunk` SSE with `stream: true`, else the `chat.completion` object
    once the answer has ended."""
    chat = chat_request(body)
    stored = check_chat(chat, state.settings)
    s = state.settings
    if not chat.stream:
        stream_id, model, created_ms = await start_stream(state, caller, stored)
        headers = {STREAM_ID_HEADER: stream_id}
        if not await wait_for_end(state.store, state.hub, stream_id, s.generation_timeout_seconds + 60):
            return openai_error(504, "timeout", f"the answer is still running; read it at /api/streams/{stream_id}")
        entries = await read_all(state.store, stream_id)
        builder = MessageBuilder().add_all(entries)
        if builder.ended != "done":
            code = str((builder.error or {}).get("code") or "cancelled")
            message = str((builder.error or {}).get("message") or "the answer was cancelled")
            retry = {"x-should-retry": "false"} if code == "cancelled" else {}
            return openai_error(UPSTREAM_STATUS.get(code, 502), code, message, headers={**headers, **retry})
        answer = message_json(builder.message().model_dump(mode="json"), reasoning_field(entries))
        usage = builder.usage.model_dump(mode="json") if builder.usage else None
        body = completion(stream_id, created_ms // 1000, model, answer, builder.finish_reason, usage)
        return json_response(body, headers=headers)
    owner = caller.limit_key
    slot = await state.admission.open_sse(owner)
    try:
        stream_id, model, created_ms = await start_stream(state, caller, stored)
    except BaseException:
        with contextlib.suppress(RedisError):
            await state.admission.close_sse(owner, slot)
        raise
    include_usage = bool((chat.stream_options or {}).get("include_usage"))
    stream = SseStream(
        state.store,
        state.hub,
        stream_id,
        b"0-0",
        [],
        s.heartbeat_seconds,
        s.sse_retry_ms,
        max_lifetime_seconds=s.sse_max_lifetime_seconds,
        on_close=lambda: state.admission.close_sse(owner, slot),
        framing=ChatChunks(stream_id, created_ms // 1000, model, include_usage),
    )
    return SseHandoff(stream, [(STREAM_ID_HEADER.encode(), stream_id.encode())])
