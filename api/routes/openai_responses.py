"""`/v1/responses`: OpenAI's Responses API in background mode, over chatrelay streams.

A response is a stream (`resp_<stream id>`), answered by a worker whatever happens to the connection: `stream`
relays its events live, `background` returns at once (`queued`), neither waits for the end. Any replica serves
`GET ...?stream=true[&starting_after=N]`, from the same stored entries with the same sequence numbers. Owners,
limits and admission are those of `/api`; another owner's response is a 404, like a missing one.
"""

import contextlib
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import ValidationError
from redis.exceptions import RedisError

from api.auth import Caller, CallerDep
from api.chat_limits import check_chat, first_unencodable
from api.deps import AppState, StateDep
from api.launch import start_stream
from api.openai_compat import records
from api.openai_compat.errors import OpenAIParamError, OpenAIRoute
from api.openai_compat.follow import read_all, wait_for_end
from api.openai_compat.responses_events import ResponseEvents, ResponsesFraming
from api.openai_compat.responses_request import (
    ResponsesRequest,
    chat_body,
    echo_fields,
    input_items,
    input_messages,
)
from api.routes.openai_common import find_stream, not_found
from api.sse import SseHandoff, SseStream
from contract.chat_request import ChatRequest
from contract.status import TERMINAL_STATUSES
from contract.store import CancelResult

router = APIRouter(prefix="/v1/responses", tags=["openai"], route_class=OpenAIRoute)

# How long `cancel` waits for the worker to close its upstream request and store the end.
_CANCEL_WAIT_SECONDS = 10.0


async def _response(
    state: AppState, caller: Caller, openai_id: str, change: bool = False
) -> tuple[str, records.ResponseRecord]:
    stream_id, _info = await find_stream(state, caller, openai_id, "resp_", "Response", change=change)
    record = await records.load(state.store.redis, state.store.keys, stream_id)
    if record is None:  # a stream created on `/api`, not a response
        raise not_found(f"Response with id '{openai_id[:64]}' not found.")
    return stream_id, record


async def _view(state: AppState, stream_id: str, record: records.ResponseRecord) -> ResponseEvents:
    """The Response as the stored entries make it so far."""
    view = ResponseEvents(stream_id, record.echo, emit=False)
    view.opening()
    for entry in await read_all(state.store, stream_id):
        view.feed(entry)
    return view


async def _history(state: AppState, caller: Caller, previous: str) -> list[dict[str, Any]]:
    """The conversation of the response `previous` continues: its own (its request's messages without its
    instructions) and its output, as the client was shown it."""
    param = "previous_response_id"
    stream_id, info = await find_stream(state, caller, previous, "resp_", "Previous response", param=param)
    if info.status not in TERMINAL_STATUSES:
        raise OpenAIParamError(param, f"the response {previous} is still {info.status.value}; wait for it to end")
    record = await records.load(state.store.redis, state.store.keys, stream_id)
    request = await state.store.request(stream_id)
    if record is None or request is None:
        raise not_found(f"Previous response with id '{previous}' not found.", param)
    view = await _view(state, stream_id, record)
    earlier: list[dict[str, Any]] = request["messages"][1 if record.instructions else 0 :]
    return earlier + input_messages(view.response()["output"], param)


def _sse(
    state: AppState, caller: Caller, stream_id: str, events: ResponseEvents, slot: str, initial: list[Any]
) -> SseHandoff:
    s = state.settings
    owner = caller.limit_key
    stream = SseStream(
        state.store,
        state.hub,
        stream_id,
        b"0-0",  # always from the first entry: the sequence numbers are counted from it
        initial,
        s.heartbeat_seconds,
        s.sse_retry_ms,
        max_lifetime_seconds=s.sse_max_lifetime_seconds,
        on_close=lambda: state.admission.close_sse(owner, slot),
        framing=ResponsesFraming(events),
    )
    return SseHandoff(stream)


@router.post("", response_model=None)
async def create_response(body: ResponsesRequest, state: StateDep, caller: CallerDep) -> Response | dict[str, Any]:
    """Create a response: its event stream with `stream`, the queued Response with `background`, else the
    finished Response."""
    # Beyond what `check_chat` sees (the Chat Completions request): the Response's echoed fields and input items.
    bad = first_unencodable(body.model_dump())
    if bad is not None:
        raise OpenAIParamError(*bad)
    history = await _history(state, caller, body.previous_response_id) if body.previous_response_id else []
    try:
        chat = ChatRequest.model_validate(chat_body(body, history))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise OpenAIParamError("input", f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    stored = check_chat(chat, state.settings)
    s = state.settings
    model = chat.model or s.openai_model
    record: records.ResponseRecord | None = None

    async def prepare(stream_id: str) -> None:
        nonlocal record
        echo = echo_fields(body, model, int(time.time()))
        record = records.ResponseRecord(echo, input_items(stream_id, body.input), bool(body.instructions))
        ttl = s.stream_ttl_seconds + int(
            s.generation_timeout_seconds
        )  # outlives the stream, whose TTL starts at its end
        await records.save(state.store.redis, state.store.keys, stream_id, record, ttl)

    owner = caller.limit_key
    slot = await state.admission.open_sse(owner) if body.stream else ""
    try:
        stream_id, _model, _created = await start_stream(state, caller, stored, prepare)
    except BaseException:
        if slot:
            with contextlib.suppress(RedisError):
                await state.admission.close_sse(owner, slot)
        raise
    assert record is not None
    if body.stream:
        return _sse(state, caller, stream_id, ResponseEvents(stream_id, record.echo), slot, [])
    if body.background:
        # The Response as created, as OpenAI answers it: queued, whatever a worker has begun since.
        queued = ResponseEvents(stream_id, record.echo, emit=False)
        queued.opening()
        return queued.response()
    await wait_for_end(state.store, state.hub, stream_id, s.generation_timeout_seconds + 60)
    return (await _view(state, stream_id, record)).response()


@router.get("/{response_id}", response_model=None)
async def retrieve_response(
    response_id: str,
    state: StateDep,
    caller: CallerDep,
    stream: Annotated[bool, Query(description="Relay the events (from the first, or after `starting_after`).")] = False,
    starting_after: Annotated[int | None, Query(ge=-1, description="A `sequence_number` to resume after.")] = None,
    include: Annotated[list[str] | None, Query(description="Accepted; nothing extra to include.")] = None,
    include_obfuscation: Annotated[bool | None, Query(description="Accepted; events carry no padding.")] = None,
) -> Response | dict[str, Any]:
    """The Response so far, or (`stream=true`) its events: replayed, then live until the end."""
    stream_id, record = await _response(state, caller, response_id)
    if not stream:
        return (await _view(state, stream_id, record)).response()
    slot = await state.admission.open_sse(caller.limit_key)
    try:
        initial = await state.store.read_after(stream_id, b"0-0")
    except BaseException:
        with contextlib.suppress(RedisError):
            await state.admission.close_sse(caller.limit_key, slot)
        raise
    events = ResponseEvents(stream_id, record.echo, -1 if starting_after is None else starting_after)
    return _sse(state, caller, stream_id, events, slot, initial)


@router.post("/{response_id}/cancel")
async def cancel_response(response_id: str, state: StateDep, caller: CallerDep) -> dict[str, Any]:
    """Stop the answer (idempotent; the worker closes its upstream request); the Response as it then is."""
    stream_id, record = await _response(state, caller, response_id, change=True)
    result = await state.store.cancel(stream_id)
    if result == CancelResult.MISSING:
        raise not_found(f"Response with id '{response_id[:64]}' not found.")
    if result == CancelResult.REQUESTED:
        await wait_for_end(state.store, state.hub, stream_id, _CANCEL_WAIT_SECONDS)
    return (await _view(state, stream_id, record)).response()


@router.delete("/{response_id}")
async def delete_response(response_id: str, state: StateDep, caller: CallerDep) -> dict[str, Any]:
    """Remove a response and its stream (a running one is cancelled first)."""
    stream_id, _record = await _response(state, caller, response_id, change=True)
    await state.store.cancel(stream_id)
    await state.store.delete(stream_id)
    return {"id": response_id, "object": "response", "deleted": True}


@router.get("/{response_id}/input_items")
async def list_input_items(
    response_id: str,
    state: StateDep,
    caller: CallerDep,
    after: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    include: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    """The response's input items, in OpenAI's list shape (newest first unless `order=asc`)."""
    _stream_id, record = await _response(state, caller, response_id)
    items = record.input if order == "asc" else record.input[::-1]
    if after is not None:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }
