"""`/api/streams`: create a chat answer, read it as SSE (with resume), inspect it, list, cancel."""

import time
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.deps import StateDep
from api.errors import BadOffsetError, InvalidRequestError, NotFoundError, OffsetGoneError
from api.schemas import CancelAccepted, ChatRequest, StreamCreated, StreamList
from api.sse import relay
from contract.ids import is_stream_id, new_stream_id, parse_entry_id
from contract.queue import enqueue_generation
from contract.status import TERMINAL_STATUSES, StreamInfo, StreamStatus, decode_meta
from contract.store import CancelResult, NewStream

router = APIRouter(prefix="/api/streams", tags=["streams"])

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _check_limits(body: ChatRequest, state: StateDep) -> None:
    s = state.settings
    if len(body.messages) > s.max_messages:
        raise InvalidRequestError(f"messages: at most {s.max_messages} messages are allowed, got {len(body.messages)}")
    for i, message in enumerate(body.messages):
        if len(message.content) > s.max_message_chars:
            raise InvalidRequestError(
                f"messages.{i}.content: at most {s.max_message_chars} characters are allowed, "
                f"got {len(message.content)}"
            )
    if body.max_tokens is not None and body.max_tokens > s.max_tokens_ceiling:
        raise InvalidRequestError(f"max_tokens: at most {s.max_tokens_ceiling} is allowed, got {body.max_tokens}")


async def _info(state: StateDep, stream_id: str) -> tuple[StreamInfo, dict[bytes, bytes]]:
    meta = await state.store.meta(stream_id) if is_stream_id(stream_id) else {}
    if not meta:
        raise NotFoundError(f"no stream with id {stream_id!r}")
    return decode_meta(stream_id, meta), meta


@router.post("", status_code=202, response_model=StreamCreated)
async def create_stream(body: ChatRequest, request: Request, state: StateDep) -> StreamCreated:
    """Queue a chat answer; returns at once with the stream id and where to read it."""
    _check_limits(body, state)
    stream_id = new_stream_id()
    model = body.model or state.settings.openai_model
    await state.store.create(
        NewStream(
            stream_id=stream_id,
            request_json=orjson.dumps(body.model_dump(exclude_none=True)),
            model=model,
            created_at_ms=int(time.time() * 1000),
            demo=state.settings.demo_upstream,
        )
    )
    await enqueue_generation(state.queue, state.store.keys, stream_id, attempt=1)
    base = str(request.url_for("get_stream", stream_id=stream_id).path)
    return StreamCreated(id=stream_id, events_url=f"{base}/events", status_url=base)


@router.get("", response_model=StreamList)
async def list_streams(
    state: StateDep,
    status: Annotated[StreamStatus | None, Query(description="Only streams with this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> StreamList:
    """Streams, newest first: queued and running ones by default (or those with `status`)."""
    limit = min(limit, state.settings.list_limit_max)
    keys = state.store.keys
    active_only = status is None or status in (StreamStatus.QUEUED, StreamStatus.RUNNING)
    index = keys.active if active_only else keys.recent
    # Terminal statuses need filtering, so look further than `limit` into the index.
    ids: list[bytes] = await state.store.redis.zrevrange(index, 0, (limit if active_only else limit * 10) - 1)
    async with state.store.redis.pipeline(transaction=False) as pipe:
        for raw in ids:
            pipe.hgetall(keys.meta(raw.decode()))
        metas: list[dict[bytes, bytes]] = await pipe.execute()
    found = [decode_meta(raw.decode(), meta) for raw, meta in zip(ids, metas, strict=True) if meta]
    if status is not None:
        found = [info for info in found if info.status == status]
    return StreamList(streams=found[:limit])


@router.get("/{stream_id}", response_model=StreamInfo)
async def get_stream(stream_id: str, state: StateDep) -> StreamInfo:
    """Status of one stream: status, model, attempt, timings, characters so far, usage, error."""
    info, _ = await _info(state, stream_id)
    return info


@router.get(
    "/{stream_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, 204: {"description": "Nothing follows the offset."}},
)
async def read_stream_events(
    stream_id: str,
    state: StateDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    offset: Annotated[str | None, Query(description="Entry id to resume after; `Last-Event-ID` wins.")] = None,
) -> Response:
    """The stream's events as SSE: replay after the offset, then live, until a terminal event."""
    info, _ = await _info(state, stream_id)
    raw_offset = last_event_id if last_event_id is not None else offset
    after = b"0-0"
    if raw_offset not in (None, "", "0", "0-0"):
        assert raw_offset is not None
        if parse_entry_id(raw_offset) is None:
            raise BadOffsetError(f"offset {raw_offset[:64]!r} is not an event id (expected <milliseconds>-<sequence>)")
        after = raw_offset.encode()
        if not await state.store.has_entry(stream_id, after):
            raise OffsetGoneError(
                f"stream {stream_id} holds no event with id {raw_offset}; read it again from the start (no offset)"
            )
    initial = await state.store.read_after(stream_id, after)
    if not initial and info.status in TERMINAL_STATUSES:
        # The client already has the terminal event: 204 makes EventSource stop reconnecting for good.
        return Response(status_code=204)
    s = state.settings
    body = relay(state.store, state.hub, stream_id, after, initial, s.heartbeat_seconds, s.sse_retry_ms)
    return StreamingResponse(body, media_type="text/event-stream", headers=SSE_HEADERS)


@router.post("/{stream_id}/cancel", status_code=202, response_model=CancelAccepted)
async def cancel_stream(stream_id: str, state: StateDep) -> CancelAccepted:
    """Stop the answer (idempotent): a queued one never calls the model, a running one stops its upstream."""
    if not is_stream_id(stream_id):
        raise NotFoundError(f"no stream with id {stream_id!r}")
    result = await state.store.cancel(stream_id)
    if result == CancelResult.MISSING:
        raise NotFoundError(f"no stream with id {stream_id!r}")
    return CancelAccepted(id=stream_id, status=result.value)
