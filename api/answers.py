"""Starting an answer, whichever surface asked for it: admission, the stored request and status, the job."""

import contextlib
import logging
import time
from typing import Any

import orjson
from redis.exceptions import RedisError

from api.deps import AppState
from contract.chat_request import ChatRequest
from contract.ids import new_stream_id
from contract.logs import bind_stream
from contract.queue import enqueue_generation
from contract.store import NewStream

log = logging.getLogger("chatrelay.api")


async def start_answer(state: AppState, owner: str, body: ChatRequest, stored: dict[str, Any]) -> str:
    """Queue an answer to `body` (stored as `stored`, already checked against the limits) for `owner`; returns its
    stream id. Raises the admission errors (429, 503) before anything is stored."""
    stream_id = new_stream_id()
    bind_stream(stream_id)
    await state.admission.admit(owner, stream_id)
    model = body.model or state.settings.openai_model
    try:
        await state.store.create(
            NewStream(
                stream_id=stream_id,
                request_json=orjson.dumps(stored),
                model=model,
                created_at_ms=int(time.time() * 1000),
                owner=owner,
                demo=state.settings.demo_upstream,
            )
        )
    except BaseException:
        with contextlib.suppress(RedisError):
            await state.admission.release_active(owner, stream_id)
        raise
    await enqueue_generation(state.queue, state.store.keys, stream_id, attempt=1)
    log.info("stream created and queued (model %s, %d messages)", model, len(body.messages))
    return stream_id
