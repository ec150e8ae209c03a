"""Server-Sent Events framing and the relay loop of one SSE connection.

Stored payloads are framed as they are: `id:` is the Redis entry id, `event:` the type, `data:` the one-line
JSON the worker stored. Heartbeats are comment lines and carry no `id:`: an id on a frame that is not in the
stream would make a reconnecting client skip real events (NVIDIA aiq#272).
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable

import anyio
from redis.exceptions import RedisError
from starlette.responses import StreamingResponse
from starlette.types import Send

from api.hub import StreamHub, entry_key
from api.metrics import SSE_CONNECTIONS, SSE_ENDED, SSE_LIVE, SSE_REPLAYED, SSE_RESUMES
from contract.store import RawEntry, StreamStore, is_terminal_entry

log = logging.getLogger("chatrelay.api")

HEARTBEAT = b": keep-alive\n\n"
# Not a stored event, so no `id:`: the client's Last-Event-ID stays on the last real event and a later resume
# continues without a gap. `retryable` tells it the stream itself has not ended.
REDIS_UNAVAILABLE = (
    b'event: error\ndata: {"code":"redis_unavailable","message":"the event store is unreachable; resume from the '
    b'last event id later","retryable":true}\n\n'
)


def frame(entry: RawEntry) -> bytes:
    entry_id, fields = entry
    return b"id: " + entry_id + b"\nevent: " + fields[b"t"] + b"\ndata: " + fields[b"d"] + b"\n\n"


def retry_frame(retry_ms: int) -> bytes:
    return b"retry: " + str(retry_ms).encode() + b"\n\n"


async def relay(
    store: StreamStore,
    hub: StreamHub,
    stream_id: str,
    after: bytes,
    initial: list[RawEntry],
    heartbeat_seconds: float,
    retry_ms: int,
    max_lifetime_seconds: float = float("inf"),
    on_close: Callable[[], Awaitable[None]] | None = None,
) -> AsyncGenerator[bytes, None]:
    """`_relay`, counted in the metrics, ended after the maximum connection lifetime (the client resumes from its
    last event id), with one log line and `on_close` (the connection slot given back) however it ends."""
    SSE_CONNECTIONS.inc()
    if after != b"0-0":
        SSE_RESUMES.inc()
    reason, last = "closed", b""
    deadline = asyncio.get_running_loop().time() + max_lifetime_seconds
    inner = _relay(store, hub, stream_id, after, initial, heartbeat_seconds, retry_ms)
    try:
        async for chunk in inner:
            last = chunk
            yield chunk
            if asyncio.get_running_loop().time() >= deadline:
                reason = "lifetime"
                break
        else:
            reason = _end_reason(last)
    finally:
        # Shielded: after a disconnect this runs inside the cancelled request task, where any await would be
        # cancelled again before the hub subscription and the slot are given back.
        with anyio.CancelScope(shield=True):
            await inner.aclose()
            if on_close is not None:
                with contextlib.suppress(RedisError, OSError):
                    await on_close()
        SSE_CONNECTIONS.dec()
        SSE_ENDED.labels(reason).inc()
        log.info("SSE response ended (%s) after offset %s", reason, after.decode())


def _end_reason(last_chunk: bytes) -> str:
    if last_chunk == REDIS_UNAVAILABLE:
        return "redis_unavailable"
    at = last_chunk.rfind(b"\nevent: ")
    if at >= 0 and last_chunk[at + 8 :].split(b"\n", 1)[0] in (b"done", b"error", b"cancelled"):
        return "terminal"
    return "overflow"


async def _relay(
    store: StreamStore,
    hub: StreamHub,
    stream_id: str,
    after: bytes,
    initial: list[RawEntry],
    heartbeat_seconds: float,
    retry_ms: int,
) -> AsyncGenerator[bytes, None]:
    """Replay `initial` (already read after the client's offset), then the rest of the stream, then follow it
    live through the hub until a terminal event."""
    yield retry_frame(retry_ms)
    last = after
    page = initial
    # Replay in pages until caught up with what is stored.
    while page:
        SSE_REPLAYED.inc(len(page))
        # One write per page, not per event: a storm of resumes replays thousands of events per client (issue 5).
        replayed: list[bytes] = []
        ended = False
        for entry in page:
            replayed.append(frame(entry))
            last = entry[0]
            if is_terminal_entry(entry[1]):
                ended = True
                break
        yield b"".join(replayed)
        if ended:
            return
        page = await store.read_after(stream_id, last) if len(page) >= 1000 else []

    key = store.keys.events(stream_id).encode()
    sub, cursor = hub.subscribe(key, last)
    try:
        last_key = entry_key(last) if last != b"0-0" else (0, 0)
        if entry_key(cursor) > last_key:
            # The hub is ahead of us: read the gap ourselves; the queue holds what comes after the cursor.
            for entry in await store.read_after(stream_id, last, count=100_000):
                if entry_key(entry[0]) > entry_key(cursor):
                    break
                SSE_REPLAYED.inc()
                yield frame(entry)
                last, last_key = entry[0], entry_key(entry[0])
                if is_terminal_entry(entry[1]):
                    return
        queue = sub.queue
        while True:
            if sub.overflowed and queue.empty():
                return  # too slow: end here; the client resumes from its last event id without a gap
            entries: list[RawEntry] = []
            if queue.empty():
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for wraps every get in a new task.
                    async with asyncio.timeout(heartbeat_seconds):
                        entries.append(await queue.get())
                except TimeoutError:
                    if hub.outage_exceeded():
                        yield REDIS_UNAVAILABLE
                        return
                    yield HEARTBEAT
                    continue
            # Everything queued goes out in one write: under load, one send per hub read rather than per event.
            while not queue.empty():
                entries.append(queue.get_nowait())
            frames: list[bytes] = []
            ended = False
            for entry in entries:
                entry_id = entry_key(entry[0])
                if entry_id <= last_key:
                    continue
                frames.append(frame(entry))
                last_key = entry_id
                if is_terminal_entry(entry[1]):
                    ended = True
                    break
            if frames:
                SSE_LIVE.inc(len(frames))
                yield b"".join(frames)
            if ended:
                return
    finally:
        hub.unsubscribe(sub)


class SseResponse(StreamingResponse):
    """A StreamingResponse that closes its generator as soon as the response ends, however it ends.

    Starlette cancels the sending task when the client disconnects but leaves the generator to the garbage
    collector; the relay's `finally` (giving back the hub subscription and the owner's connection slot) must
    not wait for that.
    """

    media_type = "text/event-stream"

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                with anyio.CancelScope(shield=True):
                    await close()
