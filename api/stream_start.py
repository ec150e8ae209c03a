"""Starting an answer: the one path from a validated chat request to a queued stream, for every surface that
creates streams (`POST /api/streams`, `POST /v1/responses`, `POST /v1/chat/completions`)."""

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from redis.exceptions import RedisError

from api.auth import Caller
from api.deps import AppState
from api.errors import NotFoundError
from contract.ids import new_stream_id
from contract.logs import bind_stream
from contract.queue import enqueue_generation
from contract.store import NewStream

log = logging.getLogger("chatrelay.api")


async def start_stream(
    state: AppState,
    caller: Caller,
    stored: dict[str, Any],
    prepare: Callable[[str], Awaitable[None]] | None = None,
) -> tuple[str, str, int]:
    """Admit, store and enqueue the answer to `stored` (a request `api.chat_limits.check_chat` accepted); returns
    the stream id, its model and its creation time (ms). `prepare` runs with the new id before the stream exists
    (a surface's own record of the request, so that no reader finds the stream without it)."""
    if caller.owner is None:
        raise NotFoundError("a share link only reads its own stream")
    stream_id = new_stream_id()
    bind_stream(stream_id)
    await state.admission.admit(caller.owner, stream_id)
    model = stored.get("model") or state.settings.openai_model
    created_at_ms = int(time.time() * 1000)
    try:
        if prepare is not None:
            await prepare(stream_id)
        await state.store.create(
            NewStream(
                stream_id=stream_id,
                request_json=orjson.dumps(stored),
                model=model,
                created_at_ms=created_at_ms,
                owner=caller.owner,
                demo=state.settings.demo_upstream,
            )
        )
    except BaseException:
        with contextlib.suppress(RedisError):
            await state.admission.release_active(caller.owner, stream_id)
        raise
    await enqueue_generation(state.queue, state.store.keys, stream_id, attempt=1)
    log.info("stream created and queued (model %s, %d messages)", model, len(stored["messages"]))
    return stream_id, model, created_at_ms
