"""Writing and reading a stream in Redis: the one place that touches a stream's keys.

Every write that changes a stream after it was created runs as a Lua script, so the check and the write are
one atomic step in Redis itself:
- `append` and `finish` are fenced by the attempt number: a worker whose attempt is no longer the stream's
  current one (it was paused, partitioned or superseded) writes nothing.
- a terminal event, the status change, the TTL and the removal from the active index happen together, so no
  reader ever sees `done` on a stream whose status still says `running`.
"""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

from contract.events import TERMINAL_TYPE_BYTES, CancelledEvent, encode_event
from contract.keys import Keys
from contract.status import StreamStatus

# The attempt's counters in meta: `chars` counts the characters it wrote of every kind (text, reasoning, refusal,
# tool-call ids, names and arguments; the append fence counts on it), the others one kind each. Text characters
# are `chars` less the other three.
ANSWER_COUNTERS = ("chars", "reasoning_chars", "refusal_chars", "tool_chars", "tool_calls")

# Entry as XRANGE / XREAD return it: (entry id, {b"t": type, b"d": payload}).
RawEntry = tuple[bytes, dict[bytes, bytes]]

_NOW = "local _t = redis.call('TIME') local now = _t[1] * 1000 + math.floor(_t[2] / 1000)\n"
# KEYS of every script that can end a stream: 1 meta, 2 events, 3 active index, 4 request, 5 lease.
_FINISH_FN = """
local function finish(sid, status, etype, edata, ttl, now)
  redis.call('XADD', KEYS[2], '*', 't', etype, 'd', edata)
  redis.call('HSET', KEYS[1], 'status', status, 'finished_at', now)
  redis.call('ZREM', KEYS[3], sid)
  redis.call('DEL', KEYS[5])
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[4], ttl)
end
-- An attempt's counters in meta (see `ANSWER_COUNTERS`), zeroed when an attempt begins or is retried.
local _ZERO_COUNTS = {'chars', 0, 'reasoning_chars', 0, 'refusal_chars', 0, 'tool_chars', 0, 'tool_calls', 0}
local function is_terminal(status)
  return status == 'done' or status == 'error' or status == 'cancelled'
end
"""

# Start attempt ARGV[2] if it is the stream's current attempt and still queued.
# ARGV: sid, attempt, worker, model_json, ttl, lease_ms
_BEGIN = (
    _NOW
    + _FINISH_FN
    + """
local m = redis.call('HMGET', KEYS[1], 'status', 'attempt', 'cancel_requested')
if not m[1] then return 'missing' end
if is_terminal(m[1]) then return 'terminal' end
if m[2] ~= ARGV[2] then return 'superseded' end
if m[1] ~= 'queued' then return 'running' end
if m[3] == '1' then
  finish(ARGV[1], 'cancelled', 'cancelled', '{"chars":0,"usage":null,"upstream_chunks":0}', ARGV[5], now)
  return 'cancelled'
end
redis.call('HSET', KEYS[1], 'status', 'running', 'worker', ARGV[3], 'attempt_started_at', now, unpack(_ZERO_COUNTS))
redis.call('HSETNX', KEYS[1], 'started_at', now)
redis.call('SET', KEYS[5], ARGV[2] .. ':' .. ARGV[3], 'PX', ARGV[6])
redis.call('XADD', KEYS[2], '*', 't', 'start', 'd', '{"attempt":' .. ARGV[2] .. ',"model":' .. ARGV[4] .. '}')
return 'ok'
"""
)

# KEYS: meta, lease. ARGV: attempt, lease value, lease_ms.
_RENEW = """
local m = redis.call('HMGET', KEYS[1], 'status', 'attempt', 'cancel_requested')
if m[1] ~= 'running' or m[2] ~= ARGV[1] then return 'fenced' end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
if m[3] == '1' then return 'cancel' end
return 'ok'
"""

# KEYS: lease. ARGV: lease value. Let go of a lease on a graceful stop, so a takeover need not wait for it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 'ok'
"""

# A running stream whose lease expired lost its worker: retry as a new attempt (queued, after a `reset`),
# or end it (`cancelled` when a cancel was pending, `error` worker_lost past the last attempt).
# ARGV: sid, max_attempts, ttl, lost_error_json
_TAKEOVER = (
    _NOW
    + _FINISH_FN
    + """
local m = redis.call('HMGET', KEYS[1], 'status', 'attempt', 'cancel_requested', 'chars')
if m[1] ~= 'running' then return {'skip', 0} end
if redis.call('EXISTS', KEYS[5]) == 1 then return {'alive', 0} end
local attempt = tonumber(m[2])
if m[3] == '1' then
  local payload = '{"chars":' .. (m[4] or '0') .. ',"usage":null,"upstream_chunks":0}'
  finish(ARGV[1], 'cancelled', 'cancelled', payload, ARGV[3], now)
  return {'cancelled', attempt}
end
if attempt >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'error', ARGV[4])
  finish(ARGV[1], 'error', 'error', ARGV[4], ARGV[3], now)
  return {'lost', attempt}
end
attempt = attempt + 1
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempt', attempt, 'worker', '', unpack(_ZERO_COUNTS))
redis.call('HINCRBY', KEYS[1], 'lost_workers', 1)
redis.call('XADD', KEYS[2], '*', 't', 'reset', 'd', '{"attempt":' .. attempt .. '}')
return {'retry', attempt}
"""
)

# KEYS: meta, events. ARGV: attempt, chars added, the attempt's chars before this append (-1: unchecked), 1 on
# the attempt's first append (else 0), the number N of (counter, increment) pairs that follow, then those pairs,
# then (type, data) pairs. The offset makes a resent append harmless: the client resends a command whose reply
# was lost with the connection, and an append that already ran then finds its own chars counted and writes
# nothing. Every append adds at least one char (a tool call's first fragment counts its id and name), so
# "already counted" cannot be mistaken for "empty". A text-only append runs HMGET, XADD and HINCRBY: the per-token
# cost in Redis commands is what the benchmark counts.
_APPEND = """
local m = redis.call('HMGET', KEYS[1], 'status', 'attempt', 'cancel_requested', 'chars')
if m[1] ~= 'running' or m[2] ~= ARGV[1] then return 'fenced' end
if m[3] == '1' then return 'cancel' end
local offset = tonumber(ARGV[3])
if offset >= 0 then
  local chars = tonumber(m[4] or '0')
  if chars == offset + tonumber(ARGV[2]) then return 'ok' end
  if chars ~= offset then return 'fenced' end
end
local counters = 6 + 2 * tonumber(ARGV[5])
for i = counters, #ARGV, 2 do
  redis.call('XADD', KEYS[2], '*', 't', ARGV[i], 'd', ARGV[i + 1])
end
redis.call('HINCRBY', KEYS[1], 'chars', ARGV[2])
for i = 6, counters - 1, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
-- Time to first token for `chatrelay stats`: the first text of any attempt, once per stream.
if ARGV[4] == '1' then
  local t = redis.call('TIME')
  redis.call('HSETNX', KEYS[1], 'first_token_at', t[1] * 1000 + math.floor(t[2] / 1000))
end
return 'ok'
"""

# ARGV: sid, attempt, status, type, data, ttl, then (field, value) pairs to set on meta.
_FINISH = (
    _NOW
    + _FINISH_FN
    + """
local m = redis.call('HMGET', KEYS[1], 'status', 'attempt')
if m[1] ~= 'running' or m[2] ~= ARGV[2] then return 'fenced' end
for i = 7, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
finish(ARGV[1], ARGV[3], ARGV[4], ARGV[5], ARGV[6], now)
return 'ok'
"""
)

# ARGV: sid, ttl, control channel.
_CANCEL = (
    _NOW
    + _FINISH_FN
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if is_terminal(status) then return status end
redis.call('HSET', KEYS[1], 'cancel_requested', '1', 'cancel_requested_at', now)
if status == 'queued' then
  finish(ARGV[1], 'cancelled', 'cancelled', '{"chars":0,"usage":null,"upstream_chunks":0}', ARGV[2], now)
  return 'cancelled'
end
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 'requested'
"""
)


# Create a queued stream, admit it and enqueue its first attempt as an arq job, in one step: what took about ten
# round trips (admission, the create transaction, arq's WATCH / EXISTS / MULTI, the wake-up publish) is one.
# The job is exactly what arq's `enqueue_job` writes (its payload at `arq:job:<id>` with arq's expiry, the id in
# the queue's sorted set scored by the enqueue time), so arq's own workers run it; like arq, an id whose job or
# result exists is not enqueued again.
# KEYS: meta, request, active index, recent index, queue, owner's active set, arq job, arq result.
# ARGV: sid, created_ms, owner, model, demo, request_json, ttl, job payload, job expiry ms, max queue depth,
#       max active per owner, wake channel.
_CREATE = """
local depth = redis.call('ZCARD', KEYS[5])
if depth >= tonumber(ARGV[10]) then return {'queue_full', depth} end
redis.call('ZADD', KEYS[6], ARGV[2], ARGV[1])
local count = redis.call('ZCARD', KEYS[6])
if count > tonumber(ARGV[11]) then
  redis.call('ZREM', KEYS[6], ARGV[1])
  return {'owner_limit', count}
end
redis.call('EXPIRE', KEYS[6], ARGV[7])
redis.call('HSET', KEYS[1], 'status', 'queued', 'model', ARGV[4], 'attempt', 1, 'chars', 0, 'created_at', ARGV[2],
  'demo', ARGV[5], 'owner', ARGV[3])
redis.call('SET', KEYS[2], ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
-- The recent index keeps ids for as long as their streams live.
redis.call('ZREMRANGEBYSCORE', KEYS[4], 0, tonumber(ARGV[2]) - tonumber(ARGV[7]) * 1000)
if redis.call('EXISTS', KEYS[7], KEYS[8]) == 0 then
  redis.call('PSETEX', KEYS[7], ARGV[9], ARGV[8])
  redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
end
redis.call('PUBLISH', ARGV[12], '1')
return {'ok', count}
"""


class CreateResult(StrEnum):
    OK = "ok"
    QUEUE_FULL = "queue_full"  # the queue holds its maximum: nothing was written
    OWNER_LIMIT = "owner_limit"  # the owner has its maximum of queued and running streams: nothing was written


class BeginResult(StrEnum):
    OK = "ok"
    MISSING = "missing"
    TERMINAL = "terminal"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"  # a later attempt exists: this job is a stale re-run
    RUNNING = "running"  # this attempt already started (arq re-ran the job): the lease decides its fate


class RenewResult(StrEnum):
    OK = "ok"
    FENCED = "fenced"
    CANCEL = "cancel"


class TakeoverResult(StrEnum):
    SKIP = "skip"
    ALIVE = "alive"
    RETRY = "retry"
    LOST = "lost"
    CANCELLED = "cancelled"


class AppendResult(StrEnum):
    OK = "ok"
    FENCED = "fenced"
    CANCEL = "cancel"


class CancelResult(StrEnum):
    MISSING = "missing"
    REQUESTED = "requested"
    CANCELLED = "cancelled"
    DONE = "done"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Append:
    """The arguments of one `StreamStore.append`, for `StreamStore.append_many`."""

    stream_id: str
    attempt: int
    chars: int
    entries: Sequence[tuple[bytes, bytes]]
    offset: int = -1  # the attempt's chars before this append, when the caller tracks them (see `_APPEND`)
    # Increments of the per-kind counters in `ANSWER_COUNTERS` besides `chars` (which `chars` above feeds).
    counts: Sequence[tuple[str, int]] = ()


@dataclass(frozen=True, slots=True)
class NewStream:
    stream_id: str
    request_json: bytes
    model: str
    created_at_ms: int
    # Who may read and cancel it (`api.auth`): `key:<name>` or `session:<id>`.
    owner: str = ""
    demo: bool = False


def is_terminal_entry(fields: dict[bytes, bytes]) -> bool:
    return fields.get(b"t") in TERMINAL_TYPE_BYTES


class StreamStore:
    """Reads and writes streams under one key prefix."""

    def __init__(self, redis: "Redis", keys: Keys, ttl_seconds: int) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_seconds = ttl_seconds
        self._create = redis.register_script(_CREATE)
        self._begin = redis.register_script(_BEGIN)
        self._append = redis.register_script(_APPEND)
        self._finish = redis.register_script(_FINISH)
        self._cancel = redis.register_script(_CANCEL)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._takeover = redis.register_script(_TAKEOVER)

    def _stream_keys(self, stream_id: str) -> list[str]:
        k = self.keys
        return [k.meta(stream_id), k.events(stream_id), k.active, k.request(stream_id), k.lease(stream_id)]

    async def create_and_enqueue(
        self, new: NewStream, job: bytes, job_expires_ms: int, owner_active: str, max_queue: int, max_active: int
    ) -> tuple[CreateResult, int]:
        """Admit, record and enqueue a new stream in one round trip (see `_CREATE`); returns the result and the
        queue depth (`queue_full`) or the owner's count of active streams (otherwise)."""
        k, sid = self.keys, new.stream_id
        keys = [k.meta(sid), k.request(sid), k.active, k.recent, k.queue, owner_active]
        keys += [k.arq_job(sid), k.arq_result(sid)]
        args: list[bytes | str | int] = [sid, new.created_at_ms, new.owner, new.model, int(new.demo)]
        args += [new.request_json, self.ttl_seconds, job, job_expires_ms, max_queue, max_active, k.queue_wake]
        result, number = await self._create(keys=keys, args=args)
        return CreateResult(result.decode()), int(number)

    async def create(self, new: NewStream) -> None:
        """Record a queued stream: its meta hash, its request, and its place in the indexes."""
        k, sid = self.keys, new.stream_id
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                k.meta(sid),
                mapping={
                    "status": StreamStatus.QUEUED.value,
                    "model": new.model,
                    "attempt": 1,
                    "chars": 0,
                    "created_at": new.created_at_ms,
                    "demo": int(new.demo),
                    "owner": new.owner,
                },
            )
            pipe.set(k.request(sid), new.request_json)
            pipe.zadd(k.active, {sid: new.created_at_ms})
            pipe.zadd(k.recent, {sid: new.created_at_ms})
            # The recent index keeps ids for as long as their streams live.
            pipe.zremrangebyscore(k.recent, 0, new.created_at_ms - self.ttl_seconds * 1000)
            await pipe.execute()

    async def request(self, stream_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(self.keys.request(stream_id))
        if raw is None:
            return None
        result: dict[str, Any] = orjson.loads(raw)
        return result

    async def meta(self, stream_id: str) -> dict[bytes, bytes]:
        result: dict[bytes, bytes] = await self.redis.hgetall(self.keys.meta(stream_id))  # type: ignore[misc]
        return result

    async def begin(self, stream_id: str, attempt: int, worker: str, model: str, lease_ms: int) -> BeginResult:
        """Start `attempt` if it is the stream's current one and still queued; takes the lease."""
        result = await self._begin(
            keys=self._stream_keys(stream_id),
            args=[stream_id, attempt, worker, orjson.dumps(model), self.ttl_seconds, lease_ms],
        )
        return BeginResult(result.decode())

    async def renew(self, stream_id: str, attempt: int, worker: str, lease_ms: int) -> RenewResult:
        """Extend the lease of a running attempt; `cancel` when a cancel is pending (pub/sub safety net)."""
        k = self.keys
        result = await self._renew(
            keys=[k.meta(stream_id), k.lease(stream_id)], args=[attempt, f"{attempt}:{worker}", lease_ms]
        )
        return RenewResult(result.decode())

    async def release(self, stream_id: str, attempt: int, worker: str) -> None:
        await self._release(keys=[self.keys.lease(stream_id)], args=[f"{attempt}:{worker}"])

    async def takeover(self, stream_id: str, max_attempts: int) -> tuple[TakeoverResult, int]:
        """Act on a running stream whose lease expired (see `_TAKEOVER`); `alive` when it did not."""
        lost = orjson.dumps({"code": "worker_lost", "message": f"the worker stopped answering, {max_attempts} times"})
        result, attempt = await self._takeover(
            keys=self._stream_keys(stream_id), args=[stream_id, max_attempts, self.ttl_seconds, lost]
        )
        return TakeoverResult(result.decode()), int(attempt)

    def _append_call(self, append: Append) -> tuple[list[str], list[bytes | str | int]]:
        """KEYS and ARGV of `_APPEND`."""
        first = int(append.offset == 0)  # an attempt's first append: it is the one at offset 0
        args: list[bytes | str | int] = [append.attempt, append.chars, append.offset, first, len(append.counts)]
        for counter, increment in append.counts:
            args += [counter, increment]
        for event_type, data in append.entries:
            args += [event_type, data]
        return [self.keys.meta(append.stream_id), self.keys.events(append.stream_id)], args

    async def append(
        self,
        stream_id: str,
        attempt: int,
        chars: int,
        entries: Sequence[tuple[bytes, bytes]],
        offset: int = -1,
        counts: Sequence[tuple[str, int]] = (),
    ) -> AppendResult:
        """Append events of the running attempt; nothing is written when the attempt is fenced or cancelled, or
        when `offset` (the attempt's chars before this append) shows it was written already."""
        keys, args = self._append_call(Append(stream_id, attempt, chars, entries, offset, counts))
        result = await self._append(keys=keys, args=args)
        return AppendResult(result.decode())

    async def append_many(self, appends: Sequence[Append]) -> list[AppendResult | ResponseError]:
        """`append` for several streams in one round trip: a pipeline, not a transaction (each script is atomic on
        its own). A script that failed gives its error in its place; a connection error raises."""
        results: list[AppendResult | ResponseError] = [AppendResult.OK] * len(appends)
        todo = list(range(len(appends)))
        # EVALSHA, not the Script object called with `client=pipe`: redis-py then sends SCRIPT EXISTS before
        # every pipeline, a second round trip per batch. NOSCRIPT (Redis restarted or SCRIPT FLUSH) means the
        # script did not run, so those appends are sent again once after loading it.
        for retry in (False, True):
            async with self.redis.pipeline(transaction=False) as pipe:
                for i in todo:
                    keys, args = self._append_call(appends[i])
                    pipe.evalsha(self._append.sha, len(keys), *keys, *args)  # type: ignore[arg-type]
                replies = await pipe.execute(raise_on_error=False)
            for i, reply in zip(todo, replies, strict=True):
                results[i] = reply if isinstance(reply, ResponseError) else AppendResult(reply.decode())
            todo = [i for i, reply in zip(todo, replies, strict=True) if isinstance(reply, NoScriptError)]
            if not todo or retry:
                break
            await self.redis.script_load(_APPEND)
        return results

    async def finish(
        self,
        stream_id: str,
        attempt: int,
        status: StreamStatus,
        event: tuple[bytes, bytes],
        fields: dict[str, bytes | str | int] | None = None,
    ) -> bool:
        """Write the terminal event of the running attempt; False when the attempt was fenced off."""
        args: list[bytes | str | int] = [stream_id, attempt, status.value, event[0], event[1], self.ttl_seconds]
        for name, value in (fields or {}).items():
            args += [name, value]
        result = await self._finish(keys=self._stream_keys(stream_id), args=args)
        return bool(result == b"ok")

    async def cancel(self, stream_id: str) -> CancelResult:
        """Cancel a stream: at once when queued, through the worker (pub/sub and a meta flag) when running."""
        result = await self._cancel(
            keys=self._stream_keys(stream_id), args=[stream_id, self.ttl_seconds, self.keys.control]
        )
        return CancelResult(result.decode())

    async def delete(self, stream_id: str) -> None:
        """Remove a stream and everything kept with it. A worker still writing to it is fenced off (its scripts find
        no status), so cancel a running stream first to close its upstream request."""
        k = self.keys
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(k.meta(stream_id), k.events(stream_id), k.request(stream_id), k.lease(stream_id))
            pipe.delete(k.response(stream_id))
            pipe.zrem(k.active, stream_id)
            pipe.zrem(k.recent, stream_id)
            await pipe.execute()

    async def last_entry_id(self, stream_id: str) -> bytes:
        """The id of the stream's newest entry, b"0-0" when it has none."""
        newest: list[RawEntry] = await self.redis.xrevrange(self.keys.events(stream_id), count=1)
        return newest[0][0] if newest else b"0-0"

    async def read_after(self, stream_id: str, after: bytes, count: int = 1000) -> list[RawEntry]:
        """Entries strictly after `after` (an entry id, or b"0-0" for the start)."""
        entries: list[RawEntry] = await self.redis.xrange(
            self.keys.events(stream_id), min=b"(" + after, max=b"+", count=count
        )
        return entries

    async def read_from(self, stream_id: str, entry_id: bytes, count: int = 1000) -> list[RawEntry]:
        """The entry `entry_id` itself (first, if the stream still holds it) and up to `count` entries after it."""
        entries: list[RawEntry] = await self.redis.xrange(
            self.keys.events(stream_id), min=entry_id, max=b"+", count=count + 1
        )
        return entries

    async def last_reset(self, stream_id: str, page: int = 200) -> bytes | None:
        """The id of the stream's last `reset` entry (where its current attempt's answer begins), or None; read
        backwards from the end, so it costs about the current attempt's length."""
        key, before = self.keys.events(stream_id), b"+"
        while True:
            entries: list[RawEntry] = await self.redis.xrevrange(key, max=before, min=b"-", count=page)
            for entry_id, fields in entries:
                if fields.get(b"t") == b"reset":
                    return entry_id
            if len(entries) < page:
                return None
            before = b"(" + entries[-1][0]

    async def has_entry(self, stream_id: str, entry_id: bytes) -> bool:
        found = await self.redis.xrange(self.keys.events(stream_id), min=entry_id, max=entry_id, count=1)
        return bool(found)

    async def follow(self, stream_id: str, after: bytes = b"0-0", block_ms: int = 5000) -> AsyncIterator[RawEntry]:
        """Entries after `after`, then live ones, until a terminal event (for the CLI and tests; the API shares
        one reader per process instead, see `api.hub`)."""
        key = self.keys.events(stream_id)
        while True:
            reply = await self.redis.xread({key: after}, count=1000, block=block_ms)
            for _key, entries in reply or []:
                for entry_id, fields in entries:
                    after = entry_id
                    yield entry_id, fields
                    if is_terminal_entry(fields):
                        return


def cancelled_event(chars: int, usage: dict[str, Any] | None, upstream_chunks: int = 0) -> tuple[bytes, bytes]:
    return encode_event(
        CancelledEvent.model_validate({"chars": chars, "usage": usage, "upstream_chunks": upstream_chunks})
    )
