"""`/api/streams`: create a chat answer, read it as SSE (with resume), inspect it, list, cancel."""

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.answers import start_answer
from api.auth import Caller, CallerDep
from api.chat_limits import check_chat
from api.deps import StateDep
from api.errors import BadOffsetError, InvalidRequestError, NotFoundError, OffsetGoneError
from api.metrics import CANCEL_REQUESTS
from api.schemas import CancelAccepted, ShareLink, ShareLinkRequest, StreamCreated, StreamList
from api.sse import SseHandoff, SseStream
from contract import listing
from contract.chat_request import ChatRequest
from contract.ids import is_stream_id, parse_entry_id
from contract.listing import BadCursorError, StatusFilter, StreamQuery, created_after_ms
from contract.message import MessageBuilder, StreamMessage
from contract.status import TERMINAL_STATUSES, StreamInfo, decode_meta
from contract.store import CancelResult

log = logging.getLogger("chatrelay.api")

router = APIRouter(prefix="/api/streams", tags=["streams"])
_PAGE = 1000  # entries per XRANGE when a whole stream is read


def _owner(meta: dict[bytes, bytes]) -> str | None:
    raw = meta.get(b"owner")
    return raw.decode() if raw else None


async def _info(state: StateDep, stream_id: str, caller: Caller) -> tuple[StreamInfo, dict[bytes, bytes]]:
    """The stream if the caller may read it; a stream of someone else's is answered exactly like a missing one."""
    meta = await state.store.meta(stream_id) if is_stream_id(stream_id) else {}
    if not meta or not caller.may_read(stream_id, _owner(meta)):
        raise NotFoundError(f"no stream with id {stream_id[:64]!r}")
    info = decode_meta(stream_id, meta)
    if caller.shared_stream is not None:
        info.owner = None  # a share-link reader learns nothing about who owns it
    return info, meta


@router.post("", status_code=202, response_model=StreamCreated)
async def create_stream(body: ChatRequest, request: Request, state: StateDep, caller: CallerDep) -> StreamCreated:
    """Queue a chat answer; returns at once with the stream id and where to read it."""
    stored = check_chat(body, state.settings)
    if caller.owner is None:
        raise NotFoundError("a share link only reads its own stream")
    stream_id = await start_answer(state, caller.owner, body, stored)
    base = str(request.url_for("get_stream", stream_id=stream_id).path)
    return StreamCreated(id=stream_id, events_url=f"{base}/events", status_url=base)


@router.get("", response_model=StreamList)
async def list_streams(
    state: StateDep,
    caller: CallerDep,
    status: Annotated[
        StatusFilter, Query(description="`active` (queued and running, the default), `all`, or one status.")
    ] = StatusFilter.ACTIVE,
    model: Annotated[str | None, Query(max_length=256, description="Only streams of this model (exact).")] = None,
    max_age_seconds: Annotated[float | None, Query(gt=0, description="Only streams at most this old.")] = None,
    created_after: Annotated[datetime | None, Query(description="Only streams created at or after this.")] = None,
    cursor: Annotated[str | None, Query(max_length=64, description="`next_cursor` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> StreamList:
    """The caller's streams (an admin key: everyone's), newest first, a page at a time: queued and running ones
    by default; `next_cursor` is null on the last page."""
    if not caller.admin and caller.owner is None:
        return StreamList(streams=[])  # a share-link reader lists nothing
    query = StreamQuery(
        status=status,
        model=model,
        created_after_ms=created_after_ms(max_age_seconds, created_after),
        cursor=cursor,
        limit=min(limit, state.settings.list_limit_max),
        owner=None if caller.admin else caller.owner,
    )
    try:
        page = await listing.list_streams(state.store.redis, state.store.keys, query)
    except BadCursorError as exc:
        raise InvalidRequestError(str(exc)) from None
    return StreamList(streams=page.streams, next_cursor=page.next_cursor)


@router.get("/{stream_id}", response_model=StreamInfo)
async def get_stream(
    stream_id: str,
    state: StateDep,
    caller: CallerDep,
    token: Annotated[str | None, Query(description="A share link's token (read-only access to this stream).")] = None,
) -> StreamInfo:
    """Status of one stream: status, model, attempt, timings, characters so far, usage, error."""
    info, _ = await _info(state, stream_id, caller)
    return info


@router.get("/{stream_id}/message", response_model=StreamMessage)
async def get_stream_message(
    stream_id: str,
    state: StateDep,
    caller: CallerDep,
    token: Annotated[str | None, Query(description="A share link's token (read-only access to this stream).")] = None,
) -> StreamMessage:
    """The assistant message so far (content, reasoning, refusal, tool calls), assembled from the stored events
    after the last reset, with the stream's status: for a client that polls, or one that lost its copy."""
    info, _ = await _info(state, stream_id, caller)
    builder = MessageBuilder()
    after = b"0-0"
    while True:
        entries = await state.store.read_after(stream_id, after)
        builder.add_all(entries)
        if len(entries) < _PAGE:
            break
        after = entries[-1][0]
    return StreamMessage(
        id=stream_id,
        status=info.status.value,
        attempt=builder.attempt,
        finish_reason=builder.finish_reason,
        usage=builder.usage,
        message=builder.message(),
    )


@router.post("/{stream_id}/links", status_code=201, response_model=ShareLink)
async def create_share_link(
    stream_id: str, request: Request, state: StateDep, caller: CallerDep, body: ShareLinkRequest | None = None
) -> ShareLink:
    """A signed, expiring, read-only link to this one stream (its status and its events) for another device
    or another person. Anyone holding the link can read the stream until it expires; it cannot cancel it."""
    meta = await state.store.meta(stream_id) if is_stream_id(stream_id) else {}
    if not meta or not caller.may_change(_owner(meta)):
        raise NotFoundError(f"no stream with id {stream_id[:64]!r}")
    token, expires = state.auth.share_token(stream_id, body.ttl_seconds if body else None)
    status_url = str(request.url_for("get_stream", stream_id=stream_id).path)
    return ShareLink(
        id=stream_id,
        token=token,
        expires_at=datetime.fromtimestamp(expires, UTC),
        status_url=f"{status_url}?token={token}",
        events_url=f"{status_url}/events?token={token}",
    )


@router.get(
    "/{stream_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, 204: {"description": "Nothing follows the offset."}},
)
async def read_stream_events(
    stream_id: str,
    state: StateDep,
    caller: CallerDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    offset: Annotated[str | None, Query(description="Entry id to resume after; `Last-Event-ID` wins.")] = None,
    token: Annotated[str | None, Query(description="A share link's token (read-only access to this stream).")] = None,
) -> Response:
    """The stream's events as SSE: replay after the offset, then live, until a terminal event."""
    info, _ = await _info(state, stream_id, caller)
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
    slot = await state.admission.open_sse(caller.limit_key)
    stream = SseStream(
        state.store,
        state.hub,
        stream_id,
        after,
        initial,
        s.heartbeat_seconds,
        s.sse_retry_ms,
        max_lifetime_seconds=s.sse_max_lifetime_seconds,
        on_close=lambda: state.admission.close_sse(caller.limit_key, slot),
    )
    return SseHandoff(stream)


@router.post("/{stream_id}/cancel", status_code=202, response_model=CancelAccepted)
async def cancel_stream(stream_id: str, state: StateDep, caller: CallerDep) -> CancelAccepted:
    """Stop the answer (idempotent): a queued one never calls the model, a running one stops its upstream."""
    meta = await state.store.meta(stream_id) if is_stream_id(stream_id) else {}
    if not meta or not caller.may_change(_owner(meta)):
        raise NotFoundError(f"no stream with id {stream_id[:64]!r}")
    result = await state.store.cancel(stream_id)
    if result == CancelResult.MISSING:
        raise NotFoundError(f"no stream with id {stream_id!r}")
    CANCEL_REQUESTS.labels(result.value).inc()
    log.info("cancel requested: %s", result.value)
    return CancelAccepted(id=stream_id, status=result.value)
