"""Noticing lost workers: a running stream whose lease expired is retried as a new attempt or ended.

Every worker and every API process runs a `LeaseMonitor`; the takeover itself is one Lua script
(`StreamStore.takeover`), so when several monitors notice the same lost lease exactly one of them acts.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from contract.metrics import LEASE_TAKEOVERS, REDIS_ERRORS
from contract.store import StreamStore, TakeoverResult

log = logging.getLogger("chatrelay.recovery")

Enqueue = Callable[[str, int], Awaitable[None]]


class LeaseMonitor:
    def __init__(self, store: StreamStore, enqueue: Enqueue, interval: float, max_attempts: int) -> None:
        self.store = store
        self.enqueue = enqueue
        self.interval = interval
        self.max_attempts = max_attempts
        self.takeovers: dict[TakeoverResult, int] = {}

    async def run(self) -> None:
        while True:
            try:
                await self.check_once()
            except RedisError as exc:
                REDIS_ERRORS.labels("lease_monitor").inc()
                log.warning("lease check failed (%s); next try in %.1f s", type(exc).__name__, self.interval)
            await asyncio.sleep(self.interval)

    async def check_once(self) -> list[tuple[str, TakeoverResult, int]]:
        """Check every active stream once; returns what was done to those that lost their worker."""
        redis, keys = self.store.redis, self.store.keys
        ids = [raw.decode() for raw in await redis.zrange(keys.active, 0, -1)]
        if not ids:
            return []
        async with redis.pipeline(transaction=False) as pipe:
            for sid in ids:
                pipe.hget(keys.meta(sid), "status")
                pipe.exists(keys.lease(sid))
            replies = await pipe.execute()
        done: list[tuple[str, TakeoverResult, int]] = []
        for i, sid in enumerate(ids):
            status, has_lease = replies[2 * i], replies[2 * i + 1]
            if status != b"running" or has_lease:
                continue
            result, attempt = await self.store.takeover(sid, self.max_attempts)
            if result in (TakeoverResult.SKIP, TakeoverResult.ALIVE):
                continue
            self.takeovers[result] = self.takeovers.get(result, 0) + 1
            LEASE_TAKEOVERS.labels(result.value).inc()
            log.warning(
                "stream %s lost its worker: %s (attempt %d)", sid, result.value, attempt, extra={"stream_id": sid}
            )
            if result == TakeoverResult.RETRY:
                await self.enqueue(sid, attempt)
            done.append((sid, result, attempt))
        return done
