"""Admission limits kept in Redis, so they hold across every API replica.

- Active streams per owner: an owner's queued and running streams, counted in `Keys.owner_active`. A new
  stream is added first and counted after, so two concurrent requests can never both slip past the limit.
- Queue depth: the arq queue's length (answers waiting for a worker), read in the same round trip.
- SSE connections per owner: one member per open connection in `Keys.owner_sse`, scored by the time the
  connection's maximum lifetime ends (plus a minute), so slots of a crashed process lapse by themselves.
"""

import secrets
import time

from redis.asyncio import Redis

from api.errors import QueueFullError, TooManyRequestsError
from contract.keys import Keys
from contract.status import TERMINAL_STATUSES

_TERMINAL = frozenset(status.value for status in TERMINAL_STATUSES)


class Admission:
    def __init__(
        self,
        redis: "Redis",
        keys: Keys,
        *,
        max_active_per_owner: int,
        max_queue_depth: int,
        max_sse_per_owner: int,
        sse_lifetime_seconds: float,
        ttl_seconds: int,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.max_active_per_owner = max_active_per_owner
        self.max_queue_depth = max_queue_depth
        self.max_sse_per_owner = max_sse_per_owner
        self.sse_slot_seconds = sse_lifetime_seconds + 60
        self.ttl_seconds = ttl_seconds

    async def _prune_finished(self, owner: str) -> None:
        key = self.keys.owner_active(owner)
        ids: list[bytes] = await self.redis.zrange(key, 0, -1)
        if not ids:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for raw in ids:
                pipe.hget(self.keys.meta(raw.decode()), "status")
            statuses: list[bytes | None] = await pipe.execute()
        finished = [
            raw for raw, status in zip(ids, statuses, strict=True) if status is None or status.decode() in _TERMINAL
        ]
        if finished:
            await self.redis.zrem(key, *finished)

    async def _claim(self, owner: str, stream_id: str) -> tuple[int, int]:
        """Add `stream_id` to the owner's active set; (queue depth, owner's count including it), one round trip."""
        key = self.keys.owner_active(owner)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zcard(self.keys.queue)
            pipe.zadd(key, {stream_id: time.time()})
            pipe.zcard(key)
            pipe.expire(key, self.ttl_seconds)
            depth, _, count, _ = await pipe.execute()
        return int(depth), int(count)

    async def admit(self, owner: str, stream_id: str) -> None:
        """Count `stream_id` as one of `owner`'s active streams, or raise: 503 when the queue is full, 429 when
        the owner has too many. Ended streams leave the owner's set only when the count reaches the limit (then
        they are pruned and it is counted again), so the usual admission is one round trip."""
        depth, count = await self._claim(owner, stream_id)
        if depth < self.max_queue_depth and count > self.max_active_per_owner:
            await self._prune_finished(owner)
            depth, count = await self._claim(owner, stream_id)
        if depth >= self.max_queue_depth or count > self.max_active_per_owner:
            await self.release_active(owner, stream_id)
            if depth >= self.max_queue_depth:
                raise QueueFullError(
                    f"{depth} answers are waiting for a worker, the most the queue takes; retry later", 5
                )
            raise TooManyRequestsError(
                f"at most {self.max_active_per_owner} answers may be queued or running at once for one owner; "
                "wait for one to finish or cancel one",
                2,
            )

    async def release_active(self, owner: str, stream_id: str) -> None:
        """Undo `claim_active` when the stream could not be created after all."""
        await self.redis.zrem(self.keys.owner_active(owner), stream_id)

    async def open_sse(self, owner: str) -> str:
        """Take one of `owner`'s SSE connection slots; returns the slot to give back, or raises 429."""
        key = self.keys.owner_sse(owner)
        slot = secrets.token_hex(8)
        now = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zadd(key, {slot: now + self.sse_slot_seconds})
            pipe.zcard(key)
            pipe.expire(key, int(self.sse_slot_seconds) + 1)
            _, _, count, _ = await pipe.execute()
        if count > self.max_sse_per_owner:
            await self.redis.zrem(key, slot)
            raise TooManyRequestsError(
                f"at most {self.max_sse_per_owner} event streams may be open at once for one owner; close one", 5
            )
        return slot

    async def close_sse(self, owner: str, slot: str) -> None:
        await self.redis.zrem(self.keys.owner_sse(owner), slot)
