"""Admission limits kept in Redis, so they hold across every API replica.

- Active streams per owner: an owner's queued and running streams, counted in `Keys.owner_active`. A new
  stream is added and counted in the same script that creates and enqueues it (`StreamStore.create_and_enqueue`),
  so two concurrent requests can never both slip past the limit.
- Queue depth: the arq queue's length (answers waiting for a worker), read in that same script.
- SSE connections per owner: one member per open connection in `Keys.owner_sse`, scored by the time the
  connection's maximum lifetime ends (plus a minute), so slots of a crashed process lapse by themselves.
"""

import secrets
import time

from redis.asyncio import Redis

from api.errors import QueueFullError, TooManyRequestsError
from contract.keys import Keys
from contract.queue import JOB_EXPIRES_MS, first_job
from contract.status import TERMINAL_STATUSES
from contract.store import CreateResult, NewStream, StreamStore

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

    async def admit_and_create(self, store: StreamStore, new: NewStream) -> None:
        """`admit`, `StreamStore.create` and the enqueue of the first attempt in one round trip
        (`StreamStore.create_and_enqueue`); the owner's ended streams are pruned only when the count is at the
        limit, then it is tried once more."""
        job = first_job(new.stream_id, new.created_at_ms)
        owner_key = self.keys.owner_active(new.owner)
        for prune in (False, True):
            if prune:
                await self._prune_finished(new.owner)
            result, number = await store.create_and_enqueue(
                new, job, JOB_EXPIRES_MS, owner_key, self.max_queue_depth, self.max_active_per_owner
            )
            if result == CreateResult.OK:
                return
            if result == CreateResult.QUEUE_FULL:
                raise QueueFullError(
                    f"{number} answers are waiting for a worker, the most the queue takes; retry later", 5
                )
        raise TooManyRequestsError(
            f"at most {self.max_active_per_owner} answers may be queued or running at once for one owner; "
            "wait for one to finish or cancel one",
            2,
        )

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
