"""One Redis reader per API process, fanning stream entries out to the SSE connections that follow them.

A single task issues one `XREAD BLOCK` over every stream key this process's clients follow, instead of one
blocking read and one Redis connection per client (about 6x less CPU per event; see the field notes). A new
subscription interrupts the blocking read by writing to a small per-process wake stream that the read also
covers, so nobody waits for the block to time out.

Ordering contract: `subscribe` returns the hub's cursor for the key at registration. The subscriber's queue
receives every entry after that cursor; entries between the subscriber's own position and the cursor are
the subscriber's to read with XRANGE (`StreamStore.read_after`). Entries the subscriber already has are
skipped by comparing ids, so nothing is lost and nothing is delivered twice.
"""

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from api.metrics import HUB_LAG, REDIS_ERRORS_HUB
from contract.ids import EntryId
from contract.keys import Keys
from contract.store import RawEntry, is_terminal_entry

log = logging.getLogger(__name__)

_BLOCK_MS = 10_000
_COUNT = 500


def entry_key(entry_id: bytes) -> EntryId:
    """An entry id as Redis returns it (or as `contract.ids.parse_entry_id` validated it) as a comparable tuple;
    split by hand rather than by the validating regex, since this runs for every relayed event."""
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq)


class Subscription:
    """One SSE connection's view of one stream: the entries the hub read for it, and why it should wake.

    A list and one future, not an asyncio.Queue: this is held by every open connection (memory per idle
    connection) and touched by every relayed entry (CPU per token). `overflowed` means the reader fell too
    far behind: its connection ends and the client resumes from its last event id."""

    __slots__ = (
        "_waiter",
        "direct",
        "entries",
        "heartbeat_due",
        "key",
        "last_sent",
        "limit",
        "outage",
        "overflowed",
    )

    def __init__(self, key: bytes, limit: int, now: float) -> None:
        self.key = key
        self.limit = limit
        self.entries: list[RawEntry] = []
        self.overflowed = False
        self.heartbeat_due = False  # set by the hub's ticker after a heartbeat interval without a send
        self.outage = False  # set by the ticker once Redis has failed longer than the grace period
        self.last_sent = now  # loop time of the connection's last send; kept by its relay
        self._waiter: asyncio.Future[None] | None = None
        # The connection's own writer for live entries (`SseStream.write_live`): True when it sent them.
        self.direct: Callable[[list[RawEntry]], bool] | None = None

    def push(self, entries: list[RawEntry]) -> None:
        if (
            self.direct is not None
            and not self.entries
            and self._waiter is not None
            and not self._waiter.done()
            and self.direct(entries)
        ):
            return  # written at once, while the connection's task kept waiting
        if len(self.entries) + len(entries) > self.limit:
            self.overflowed = True
        else:
            self.entries += entries
        self.wake()

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Until the hub pushes an entry or sets a flag (or `wake` is called: the client went away)."""
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


class StreamHub:
    def __init__(
        self,
        redis: "Redis",
        keys: Keys,
        queue_size: int = 2000,
        outage_grace_seconds: float = 15.0,
        heartbeat_seconds: float = 15.0,
    ) -> None:
        self.redis = redis
        self.heartbeat_seconds = heartbeat_seconds
        self.queue_size = queue_size
        self.outage_grace_seconds = outage_grace_seconds
        self._failing_since: float | None = None
        self._wake_key = keys.hub_wake(secrets.token_hex(8)).encode()
        self._wake_cursor = b"0-0"
        self._subs: dict[bytes, set[Subscription]] = {}
        self._cursor: dict[bytes, bytes] = {}
        self._xread = _XreadCommand(self._wake_key)
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._wake_pending = False
        self.errors = 0

    @property
    def followed(self) -> int:
        return len(self._subs)

    def outage_exceeded(self) -> bool:
        """Redis has failed every read for longer than the grace period: followers should end their response
        (with a retryable error) rather than hold the connection open indefinitely."""
        since = self._failing_since
        return since is not None and asyncio.get_running_loop().time() - since > self.outage_grace_seconds

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="stream-hub")
        self._ticker = asyncio.create_task(self._tick(), name="stream-hub-ticker")

    async def stop(self) -> None:
        for task in (self._task, self._ticker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(RedisError):
            await self.redis.delete(self._wake_key)

    def subscribe(self, key: bytes, after: bytes) -> tuple[Subscription, bytes]:
        """Follow `key` live; returns the subscription and the hub's cursor for the key (see module doc)."""
        sub = Subscription(key, self.queue_size, asyncio.get_running_loop().time())
        subs = self._subs.get(key)
        if subs is None:
            self._subs[key] = {sub}
            self._set_cursor(key, after)
            self._wake()
        else:
            subs.add(sub)
        return sub, self._cursor[key]

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.key)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self._subs[sub.key]
            self._drop_cursor(sub.key)

    def _set_cursor(self, key: bytes, cursor: bytes) -> None:
        self._cursor[key] = cursor
        self._xread.set(key, cursor)

    def _drop_cursor(self, key: bytes) -> None:
        if self._cursor.pop(key, None) is not None:
            self._xread.drop(key)

    def _wake(self) -> None:
        if self._wake_pending:
            return
        self._wake_pending = True
        asyncio.get_running_loop().create_task(self._send_wake())

    async def _send_wake(self) -> None:
        self._wake_pending = False
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xadd(self._wake_key, {b"w": b"1"}, maxlen=8, approximate=False)
                pipe.expire(self._wake_key, 3600)
                await pipe.execute()
        except RedisError:
            log.warning("hub wake failed; the next read picks the new stream up within %d ms", _BLOCK_MS)

    async def _tick(self) -> None:
        """Flag the followers that are due a heartbeat or should give up on Redis: one pass over all of them a
        quarter of a heartbeat interval, instead of a timer per connection re-armed at every event. A heartbeat
        thus goes out after 7/8 to 9/8 of the interval of silence."""
        interval = self.heartbeat_seconds / 4
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            due = loop.time() - self.heartbeat_seconds + interval / 2
            outage = self.outage_exceeded()
            for subs in tuple(self._subs.values()):
                for sub in subs:
                    if outage:
                        sub.outage = True
                        sub.wake()
                    elif sub.last_sent <= due and not sub.entries:
                        sub.heartbeat_due = True
                        sub.wake()

    async def _run(self) -> None:
        # A connection of its own, fed pre-packed commands: redis-py's `xread` would re-encode every followed key
        # and cursor on every read, the largest cost of this loop (issue 5).
        pool = self.redis.connection_pool
        conn = await pool.get_connection("XREAD")
        backoff = 0.05
        try:
            while True:
                try:
                    await conn.send_packed_command(self._xread.packed(self._wake_cursor), check_health=False)
                    reply = await conn.read_response()
                    backoff = 0.05
                    self._failing_since = None
                except (RedisError, OSError) as exc:
                    await conn.disconnect()  # the next send reconnects
                    self.errors += 1
                    REDIS_ERRORS_HUB.inc()
                    if self._failing_since is None:
                        self._failing_since = asyncio.get_running_loop().time()
                    log.warning("hub read failed (%s); retrying in %.2f s", type(exc).__name__, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                self._dispatch(reply or [])
        finally:
            await conn.disconnect()
            await pool.release(conn)

    def _dispatch(self, reply: list[Any]) -> None:
        now_ms = time.time() * 1000
        for key, raw_entries in reply:
            if key == self._wake_key:
                self._wake_cursor = raw_entries[-1][0]
                continue
            subs = self._subs.get(key)
            if not subs or not raw_entries:
                continue
            # RESP2 entries are [id, [field, value, ...]]; the worker writes the fields t and d.
            entries: list[RawEntry] = [
                (entry_id, dict(zip(f[::2], f[1::2], strict=True))) for entry_id, f in raw_entries
            ]
            self._set_cursor(key, entries[-1][0])
            # One observation per key per read (its oldest entry), not per entry: this is the hot path.
            HUB_LAG.observe(max(0.0, now_ms - int(entries[0][0].split(b"-", 1)[0])) / 1000)
            for sub in tuple(subs):
                sub.push(entries)
            if is_terminal_entry(entries[-1][1]):
                # Nothing follows a terminal event: stop reading the key even if a subscriber lingers.
                self._subs.pop(key, None)
                self._drop_cursor(key)


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


_XREAD_OPTIONS = b"".join(
    _bulk(a) for a in (b"XREAD", b"COUNT", b"%d" % _COUNT, b"BLOCK", b"%d" % _BLOCK_MS, b"STREAMS")
)


class _XreadCommand:
    """`XREAD COUNT 500 BLOCK 10000 STREAMS <wake key> <keys...> <wake cursor> <cursors...>` in the Redis protocol,
    kept packed per key: a read joins cached pieces, and only the keys that moved are packed again."""

    def __init__(self, wake_key: bytes) -> None:
        self._wake_key = _bulk(wake_key)
        # Two dicts in the same insertion order, so their values line up as the command's keys and ids.
        self._keys: dict[bytes, bytes] = {}
        self._ids: dict[bytes, bytes] = {}

    def set(self, key: bytes, cursor: bytes) -> None:
        if key not in self._keys:
            self._keys[key] = _bulk(key)
        self._ids[key] = _bulk(cursor)

    def drop(self, key: bytes) -> None:
        self._keys.pop(key, None)
        self._ids.pop(key, None)

    def packed(self, wake_cursor: bytes) -> bytes:
        head = b"*%d\r\n" % (6 + 2 * (len(self._keys) + 1))
        return b"".join(
            (head, _XREAD_OPTIONS, self._wake_key, *self._keys.values(), _bulk(wake_cursor), *self._ids.values())
        )
