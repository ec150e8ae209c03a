"""Server-Sent Events framing and the relay loop of one SSE connection.

Stored payloads are framed as they are: `id:` is the Redis entry id, `event:` the type, `data:` the one-line
JSON the worker stored. Heartbeats are comment lines and carry no `id:`: an id on a frame that is not in the
stream would make a reconnecting client skip real events (NVIDIA aiq#272).

Other surfaces (OpenAI's Responses and Chat Completions under `/v1`) relay the same stored entries through the
same loop, hub and send path with a `Framing` of their own: a second framing, not a second reader.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio
from redis.exceptions import RedisError
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from api.direct_write import direct_writer
from api.hub import StreamHub, Subscription, entry_key
from api.metrics import SSE_CONNECTIONS, SSE_DIRECT, SSE_ENDED, SSE_LIVE, SSE_REPLAYED, SSE_RESUMES
from contract.ids import EntryId
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


class Framing(Protocol):
    """How one surface turns the stored entries of a stream into the bytes of its response. It sees every entry
    once, in stream order, from the response's first entry on; it may keep state (sequence numbers, item ids)."""

    def opening(self) -> bytes:
        """What the response starts with, before any entry."""
        ...

    def frame(self, entry: RawEntry) -> tuple[bytes, bool]:
        """The bytes for one entry (maybe none), and whether the response ends after them."""
        ...

    def outage(self) -> bytes:
        """The last bytes when Redis stays unreachable past the grace period (the response then ends)."""
        ...


class NativeFraming:
    """chatrelay's own protocol: one SSE event per entry, `id:` the entry id, ended by the terminal event."""

    __slots__ = ("retry_ms",)

    def __init__(self, retry_ms: int) -> None:
        self.retry_ms = retry_ms

    def opening(self) -> bytes:
        return retry_frame(self.retry_ms)

    def frame(self, entry: RawEntry) -> tuple[bytes, bool]:
        return frame(entry), is_terminal_entry(entry[1])

    def outage(self) -> bytes:
        return REDIS_UNAVAILABLE


class SseStream:
    """One SSE response's body: replay `initial` (already read after the client's offset), the rest of the stored
    stream, then follow it live through the hub until a terminal event, the maximum connection lifetime, the
    client going away, or a long Redis outage. Counted in the metrics, with one log line and `on_close` (the
    connection slot given back) however it ends.

    It runs on the server's own `send` in the app's outermost layer (`api.main.ChatrelayApp`), after the route
    and every middleware have returned: an open connection then holds this object, its subscription and two
    small tasks, not a middleware stack, a task group and generators, and a token is one call to `send`.
    """

    def __init__(
        self,
        store: StreamStore,
        hub: StreamHub,
        stream_id: str,
        after: bytes,
        initial: list[RawEntry],
        heartbeat_seconds: float,
        retry_ms: int,
        max_lifetime_seconds: float = float("inf"),
        on_close: Callable[[], Awaitable[None]] | None = None,
        framing: Framing | None = None,
    ) -> None:
        self.store = store
        self.hub = hub
        self.stream_id = stream_id
        self.after = after
        self.initial = initial
        self.heartbeat_seconds = heartbeat_seconds
        self.retry_ms = retry_ms
        self.max_lifetime_seconds = max_lifetime_seconds
        self.on_close = on_close
        self.framing: Framing = framing if framing is not None else NativeFraming(retry_ms)
        self._gone = False
        self._sub: Subscription | None = None
        self._last_key: EntryId = (0, 0)  # the last event sent
        self._deadline = float("inf")
        self._end_reason: str | None = None  # set when a direct write sent the end (terminal event, lifetime)
        self._direct: Callable[[bytes], bool] | None = None
        self._unsent: list[bytes] = []  # framed on the direct path but not written (see `write_live`)

    async def run(self, send: Send, receive: Receive, raw_send: Send | None = None) -> None:
        """Serve the response on `send` (the server's, with the send timeout); `raw_send`, the server's own, lets
        the hub write live events straight to the connection while this task waits (`api.direct_write`)."""
        self._direct = direct_writer(raw_send) if raw_send is not None else None
        SSE_CONNECTIONS.inc()
        if self.after != b"0-0":
            SSE_RESUMES.inc()
        # The client's disconnect arrives through `receive`; uvicorn's `send` to a closed connection just returns.
        watcher = asyncio.ensure_future(_until_disconnect(receive))
        watcher.add_done_callback(self._client_gone)
        reason = "closed"
        try:
            reason = await self._serve(send)
            if not self._gone:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()
            # Shielded: when the server cancels this task (shutdown), the slot must still be given back.
            with anyio.CancelScope(shield=True):
                if self.on_close is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await self.on_close()
            SSE_CONNECTIONS.dec()
            SSE_ENDED.labels(reason).inc()
            log.info("SSE response ended (%s) after offset %s", reason, self.after.decode())

    def _client_gone(self, _watcher: "asyncio.Future[None]") -> None:
        self._gone = True
        if self._sub is not None:
            self._sub.wake()

    async def _serve(self, send: Send) -> str:
        """Send the events; returns why the response ended (the `reason` label of SSE_ENDED)."""
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + self.max_lifetime_seconds
        framing = self.framing
        await _send_chunk(send, framing.opening())
        last = self.after
        page = self.initial
        # Replay in pages until caught up with what is stored.
        while page:
            if self._gone:
                return "closed"
            SSE_REPLAYED.inc(len(page))
            # One write per page, not per event: a storm of resumes replays thousands of events per client.
            chunk, last, ended = _frames(framing, page, last)
            await _send_chunk(send, chunk)
            if ended:
                return "terminal"
            page = await self.store.read_after(self.stream_id, last) if len(page) >= 1000 else []

        key = self.store.keys.events(self.stream_id).encode()
        sub, cursor = self.hub.subscribe(key, last)
        self._sub = sub
        try:
            self._last_key = entry_key(last) if last != b"0-0" else (0, 0)
            if entry_key(cursor) > self._last_key:
                # The hub is ahead of us: read the gap ourselves; the subscription holds what comes after the cursor.
                gap = [
                    e
                    for e in await self.store.read_after(self.stream_id, last, count=100_000)
                    if entry_key(e[0]) <= entry_key(cursor)
                ]
                if gap:
                    SSE_REPLAYED.inc(len(gap))
                    chunk, last, ended = _frames(framing, gap, last)
                    await _send_chunk(send, chunk)
                    if ended:
                        return "terminal"
                    self._last_key = entry_key(last)
            if self._direct is not None:
                sub.direct = self.write_live
            while True:
                if self._gone:
                    return "closed"
                if self._unsent:
                    # Framed by the hub's direct path, which could not write them: sent here, with the send timeout.
                    chunk, self._unsent = b"".join(self._unsent), []
                    await _send_chunk(send, chunk)
                    sub.last_sent = loop.time()
                    continue
                if self._end_reason is not None:
                    return self._end_reason
                if sub.entries:
                    # Everything the hub read since the last send goes out in one write.
                    entries, sub.entries = sub.entries, []
                    chunk, last_key, ended, count = _live_frames(framing, entries, self._last_key)
                    # Past every entry framed, even one without bytes: the framing must see each entry once.
                    self._last_key = last_key
                    if chunk:
                        SSE_LIVE.inc(count)
                        await _send_chunk(send, chunk)
                        sub.last_sent = loop.time()
                    if ended:
                        return "terminal"
                elif sub.overflowed:
                    return "overflow"  # too slow: the client resumes from its last event id without a gap
                elif sub.outage:
                    await _send_chunk(send, framing.outage())
                    return "redis_unavailable"
                elif sub.heartbeat_due:
                    sub.heartbeat_due = False
                    await _send_chunk(send, HEARTBEAT)
                    sub.last_sent = loop.time()
                else:
                    await sub.wait()
                    continue
                if loop.time() >= self._deadline:
                    return "lifetime"
        finally:
            sub.direct = None
            self._sub = None
            self.hub.unsubscribe(sub)

    def write_live(self, entries: list[RawEntry]) -> bool:
        """The hub's direct path: frame live entries and write them now, from the hub's task, while this response's
        task waits. When the connection cannot take a write now, the bytes are left for the task to send (the
        framing has taken the entries in and may keep state, so they are never framed twice)."""
        assert self._direct is not None
        assert self._sub is not None
        chunk, last_key, ended, count = _live_frames(self.framing, entries, self._last_key)
        if not count:
            return True
        self._last_key = last_key
        now = asyncio.get_running_loop().time()
        if chunk:
            if self._direct(chunk):
                SSE_DIRECT.inc(count)
                self._sub.last_sent = now
            else:
                self._unsent.append(chunk)
                self._sub.wake()
        if ended or now >= self._deadline:
            # The task ends the response (the final chunk, the slot, the log line).
            self._end_reason = "terminal" if ended else "lifetime"
            self._sub.wake()
        return True


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_chunk(send: Send, chunk: bytes) -> None:
    await send({"type": "http.response.body", "body": chunk, "more_body": True})


def _live_frames(framing: Framing, entries: list[RawEntry], last_key: EntryId) -> tuple[bytes, EntryId, bool, int]:
    """Frames of live entries after `last_key` (earlier ones were sent from the gap read) up to the one that ends
    the response: the bytes, the last id framed, whether it ended, and how many entries were framed."""
    frames: list[bytes] = []
    ended = False
    count = 0
    for entry in entries:
        entry_id = entry_key(entry[0])
        if entry_id <= last_key:
            continue
        chunk, ended = framing.frame(entry)
        frames.append(chunk)
        count += 1
        last_key = entry_id
        if ended:
            break
    return b"".join(frames), last_key, ended, count


def _frames(framing: Framing, entries: list[RawEntry], last: bytes) -> tuple[bytes, bytes, bool]:
    """Frames of stored entries up to the one that ends the response: the bytes, the last entry id, and whether
    it ended."""
    frames: list[bytes] = []
    for entry in entries:
        chunk, ended = framing.frame(entry)
        frames.append(chunk)
        last = entry[0]
        if ended:
            return b"".join(frames), last, True
    return b"".join(frames), last, False


SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    # nginx and other proxies: pass each event on at once.
    (b"x-accel-buffering", b"no"),
]


class SseHandoff(Response):
    """The events route's response: it sends the status line and headers through the middlewares (CORS adds its
    headers, the access log notes the status) and leaves the body to the app's outermost layer, which runs the
    `SseStream` on the server's own `send` once the route and the middlewares have returned. Its headers are
    `SSE_HEADERS` (and the route's `extra_headers`), or the route's own `headers` (another protocol's), sent as they
    are."""

    def __init__(
        self,
        stream: SseStream,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(status_code=200)
        self.stream = stream
        self.extra_headers = extra_headers or []
        self.sse_headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = self.sse_headers or (SSE_HEADERS + self.extra_headers if self.extra_headers else SSE_HEADERS)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        handoff: list[SseStream] = scope[HANDOFF_SCOPE_KEY]
        handoff.append(self.stream)


# The list in the ASGI scope through which `SseHandoff` passes its stream out to `ChatrelayApp`.
HANDOFF_SCOPE_KEY = "chatrelay.sse"
