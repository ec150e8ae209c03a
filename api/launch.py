"""Starting an answer, for every surface that takes a chat (`POST /api/streams`, `POST /v1/responses`,
`POST /v1/chat/completions`, `POST /api/chat`): admission, the stream's record and its first job, in one Redis
round trip."""

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from api.auth import Caller
from api.deps import AppState
from api.errors import NotFoundError
from contract.ids import new_stream_id
from contract.logs import bind_stream
from contract.store import NewStream

log = logging.getLogger("chatrelay.api")


async def start_stream(
    state: AppState,
    caller: Caller,
    stored: dict[str, Any],
    prepare: Callable[[str], Awaitable[None]] | None = None,
) -> tuple[str, str, int]:
    """Queue an answer to `stored` (a request `api.chat_limits.check_chat` accepted) for the caller; returns the
    stream id, its model and its creation time (ms). `prepare` runs with the new id before the stream exists (a
    surface's own record of the request, with the stream's TTL, so that no reader finds the stream without it; a
    refused admission leaves it to expire). Raises the admission errors (429, 503) and `NotFoundError` for a
    share-link reader, who may only read."""
    if caller.owner is None:
        raise NotFoundError("a share link only reads its own stream")
    stream_id = new_stream_id()
    bind_stream(stream_id)
    model = stored.get("model") or state.settings.openai_model
    created_at_ms = int(time.time() * 1000)
    if prepare is not None:
        await prepare(stream_id)
    new = NewStream(
        stream_id=stream_id,
        request_json=orjson.dumps(stored),
        model=model,
        created_at_ms=created_at_ms,
        owner=caller.owner,
        demo=state.settings.demo_upstream,
    )
    await state.admission.admit_and_create(state.store, new)
    log.info("stream created and queued (model %s, %d messages)", model, len(stored["messages"]))
    return stream_id, model, created_at_ms
