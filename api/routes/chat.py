"""`/api/chat`: the Vercel AI SDK's chat endpoints, so `useChat` / `Chat` with `DefaultChatTransport` work as they are.

The answer is an ordinary chatrelay stream (a worker writes it, the hub relays it); these routes only translate
the request (`api.ai_sdk.request`), remember the chat's active stream (`api.ai_sdk.chats`) and frame the stored
entries as the UI message stream (`api.ai_sdk.framing`) on the shared SSE machinery (`api.sse`).
"""

import contextlib
import dataclasses
import logging
import time
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from redis.exceptions import RedisError

from api.ai_sdk import chats
from api.ai_sdk.framing import UiMessageFraming, parse_features
from api.ai_sdk.request import CHAT_ID, TranslationError, UiChatRequest, chat_messages, conversation, new_message_id
from api.auth import CallerDep
from api.chat_limits import check_chat, first_unencodable
from api.deps import AppState, StateDep
from api.errors import InvalidRequestError, NotFoundError
from api.launch import start_stream
from api.metrics import CANCEL_REQUESTS
from api.schemas import CancelAccepted
from api.sse import SseHandoff, SseStream
from contract.chat_request import ChatRequest
from contract.logs import bind_stream
from contract.status import TERMINAL_STATUSES, decode_meta

log = logging.getLogger("chatrelay.api")

router = APIRouter(prefix="/api/chat", tags=["ai-sdk"])

_FEATURES_HEADER = Header(
    alias="X-Chatrelay-UI-Features",
    description="Chunks and fields beyond what ai 5.0.0 accepts, comma-separated: `finish-reason`, `reset-step`.",
)
Features = Annotated[str | None, _FEATURES_HEADER]
_STREAM = {"content": {"text/event-stream": {}}, "description": "The UI message stream."}


def _cookies(session: Response) -> list[tuple[bytes, bytes]]:
    """The session cookie `api.auth` set on FastAPI's sub-response, which FastAPI does not copy onto a response a
    route returns itself: here the first request of a new browser may well be a resume or a stream."""
    return [(name, value) for name, value in session.headers.raw if name == b"set-cookie"]


def _no_content(session: Response) -> Response:
    nothing = Response(status_code=204)
    nothing.headers.raw.extend(_cookies(session))
    return nothing


def _headers(stream_id: str) -> list[tuple[bytes, bytes]]:
    # As the AI SDK's own `UI_MESSAGE_STREAM_HEADERS` (`ui-message-stream-headers.ts`), but for `connection`, which is
    # the server's business (and forbidden in HTTP/2); with the stream id, for the native API.
    return [
        (b"content-type", b"text/event-stream"),
        (b"cache-control", b"no-cache"),
        (b"x-vercel-ai-ui-message-stream", b"v1"),
        (b"x-accel-buffering", b"no"),
        (b"x-chatrelay-stream-id", stream_id.encode()),
    ]


async def _respond(
    state: AppState,
    limit_key: str,
    slot: str,
    active: chats.ActiveStream,
    after: bytes,
    *,
    replay: bool,
    features: Features,
    session: Response,
) -> SseHandoff:
    """The UI message stream of `active` after `after`, on the connection slot `slot`. `replay`: read the first page
    here (a fresh answer has nothing stored yet: the hub's read and the stream's own gap read cover it)."""
    stream_id = active.stream_id
    initial = await state.store.read_after(stream_id, after) if replay else []
    s = state.settings
    stream = SseStream(
        state.store,
        state.hub,
        stream_id,
        after,
        initial,
        s.heartbeat_seconds,
        s.sse_retry_ms,
        max_lifetime_seconds=s.sse_max_lifetime_seconds,
        on_close=lambda: state.admission.close_sse(limit_key, slot),
        # The recap goes only to replays: the client that posted the continuation is extending its own message.
        framing=UiMessageFraming(
            active.message_id, parse_features(features), orjson.loads(active.recap) if replay and active.recap else None
        ),
    )
    return SseHandoff(stream, headers=_headers(stream_id) + _cookies(session))


def _chat_request(body: UiChatRequest) -> tuple[ChatRequest, chats.ActiveStream]:
    """The request to answer, and the chat's new active stream but for its id: the message id of the answer and,
    when it continues a message, that message's parts for the replays."""
    # What the translation keeps is checked with the request (`check_chat`), but message ids and a recap are stored
    # as they came: the same refusal of what UTF-8 and orjson cannot carry.
    bad = first_unencodable(body.model_dump(by_alias=True))
    if bad is not None:
        raise InvalidRequestError(f"{bad[0]}: {bad[1]}")
    try:
        history, continues = conversation(body)
        messages = chat_messages(history)
        recap = orjson.dumps(history[-1].parts) if continues else None
    except TranslationError as exc:
        raise InvalidRequestError(str(exc)) from None
    except orjson.JSONEncodeError as exc:
        raise InvalidRequestError(f"messages.{len(history) - 1}.parts: cannot be stored as JSON ({exc})") from None
    active = chats.ActiveStream("", continues or new_message_id(), recap)
    options = body.options()
    try:
        return ChatRequest.model_validate({**options, "messages": messages}), active
    except ValidationError as exc:
        # The options are the body's own fields: the error handler names them as for any request body.
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()], body=options) from None


async def _owned(state: AppState, owner: str | None, chat_id: str) -> tuple[chats.ActiveStream, dict[bytes, bytes]]:
    """The chat's active stream and its meta hash, when the caller has one that still exists; NotFoundError
    otherwise (the chat is keyed by owner, and the stream's own owner is checked as well)."""
    active = None
    if owner is not None and CHAT_ID.match(chat_id) is not None:
        active = await chats.active_stream(state.store.redis, state.store.keys, owner, chat_id)
    meta = await state.store.meta(active.stream_id) if active is not None else {}
    if active is None or not meta or meta.get(b"owner", b"").decode() != owner:
        raise NotFoundError(f"no answer for chat {chat_id[:64]!r}")
    bind_stream(active.stream_id)
    return active, meta


@router.post("", response_class=StreamingResponse, responses={200: _STREAM})
async def post_chat(
    body: UiChatRequest, state: StateDep, caller: CallerDep, response: Response, features: Features = None
) -> Response:
    """Answer an AI SDK chat (`DefaultChatTransport`'s POST): the UI messages become a chat request, the answer
    streams back as the UI message stream, and it becomes the chat's active stream (a running earlier one is
    stopped)."""
    if caller.owner is None:
        raise NotFoundError("a share link only reads its own stream")
    request, answer = _chat_request(body)
    stored = check_chat(request, state.settings)
    # The connection slot first: an answer that could not be read is not started.
    slot = await state.admission.open_sse(caller.limit_key)
    try:
        stream_id, _model, _created = await start_stream(state, caller, stored)
        active = dataclasses.replace(answer, stream_id=stream_id)
        previous = await chats.activate(
            state.store.redis, state.store.keys, caller.owner, body.id, active, state.settings.stream_ttl_seconds
        )
        if previous is not None and previous != stream_id:
            # A chat has one active stream (a resume finds only the latest): the one it replaces stops generating.
            await state.store.cancel(previous)
        return await _respond(
            state, caller.limit_key, slot, active, b"0-0", replay=False, features=features, session=response
        )
    except BaseException:
        with contextlib.suppress(RedisError):
            await state.admission.close_sse(caller.limit_key, slot)
        raise


@router.get("/{chat_id}/stream", response_class=StreamingResponse, responses={200: _STREAM, 204: {}})
async def read_chat_stream(
    chat_id: str, state: StateDep, caller: CallerDep, response: Response, features: Features = None
) -> Response:
    """The chat's active answer as the UI message stream, from its start and then live to its end (what
    `resumeStream()` asks for); `204` when the chat has none, or when it ended more than
    `CHATRELAY_CHAT_REPLAY_SECONDS` ago."""
    try:
        active, meta = await _owned(state, caller.owner, chat_id)
    except NotFoundError:
        return _no_content(response)  # what the AI SDK takes for "nothing to resume"
    info = decode_meta(active.stream_id, meta)
    ended = info.finished_at.timestamp() if info.status in TERMINAL_STATUSES and info.finished_at else None
    if ended is not None and time.time() - ended > state.settings.chat_replay_seconds:
        return _no_content(response)
    # After a retried attempt, only the current attempt's answer: the client never sees the dead one's parts.
    after = (await state.store.last_reset(active.stream_id) if info.attempt > 1 else None) or b"0-0"
    slot = await state.admission.open_sse(caller.limit_key)
    try:
        return await _respond(
            state, caller.limit_key, slot, active, after, replay=True, features=features, session=response
        )
    except BaseException:
        with contextlib.suppress(RedisError):
            await state.admission.close_sse(caller.limit_key, slot)
        raise


@router.post("/{chat_id}/stop", status_code=202, response_model=CancelAccepted)
async def stop_chat(chat_id: str, state: StateDep, caller: CallerDep) -> CancelAccepted:
    """Stop the chat's active answer, as `POST /api/streams/{id}/cancel` does (the AI SDK's `stop()` only closes
    its own connection): the stream ends with `abort` for every reader, and keeps its partial answer."""
    active, _ = await _owned(state, caller.owner, chat_id)
    result = await state.store.cancel(active.stream_id)
    CANCEL_REQUESTS.labels(result.value).inc()
    log.info("cancel requested through the chat: %s", result.value)
    return CancelAccepted(id=active.stream_id, status=result.value)
