"""The worker registry: which workers are alive and what they are doing, kept in Redis by their heartbeats.

Each worker keeps a hash (`Keys.worker`) that expires unless its heartbeat renews it, and its id in a sorted
set scored by the last heartbeat (`Keys.workers`). A killed worker stops renewing: its hash expires and readers
drop its index entry. A worker that stops gracefully removes both at once.
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel
from redis.asyncio import Redis

from contract.keys import Keys


class WorkerInfo(BaseModel):
    """One live worker, as `GET /api/workers` and `chatrelay workers` show it."""

    id: str
    host: str
    pid: int
    started_at: datetime
    last_heartbeat_at: datetime
    jobs_running: int
    jobs_done: int
    max_jobs: int | None = None


@dataclass(frozen=True, slots=True)
class WorkerState:
    """What a worker reports in one heartbeat."""

    worker_id: str
    host: str
    pid: int
    started_at_ms: int
    jobs_running: int
    jobs_done: int
    max_jobs: int


def _time(ms: bytes | None) -> datetime:
    return datetime.fromtimestamp(int(ms or 0) / 1000, UTC)


class WorkerRegistry:
    """Writes a worker's heartbeat and lists the live workers under one key prefix."""

    def __init__(self, redis: "Redis", keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def heartbeat(self, state: WorkerState, ttl_seconds: float) -> None:
        now_ms = int(time.time() * 1000)
        key = self.keys.worker(state.worker_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "host": state.host,
                    "pid": state.pid,
                    "started_at": state.started_at_ms,
                    "last_heartbeat_at": now_ms,
                    "jobs_running": state.jobs_running,
                    "jobs_done": state.jobs_done,
                    "max_jobs": state.max_jobs,
                },
            )
            pipe.pexpire(key, int(ttl_seconds * 1000))
            pipe.zadd(self.keys.workers, {state.worker_id: now_ms})
            await pipe.execute()

    async def remove(self, worker_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.worker(worker_id))
            pipe.zrem(self.keys.workers, worker_id)
            await pipe.execute()

    async def live(self) -> list[WorkerInfo]:
        """The workers whose heartbeat has not expired, oldest first; prunes index entries of expired ones."""
        ids: list[bytes] = await self.redis.zrange(self.keys.workers, 0, -1)
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for raw in ids:
                pipe.hgetall(self.keys.worker(raw.decode()))
            hashes: list[dict[bytes, bytes]] = await pipe.execute()
        # Expiry is decided by each worker's own hash TTL, so readers need no TTL setting of their own.
        gone = [raw for raw, fields in zip(ids, hashes, strict=True) if not fields]
        if gone:
            await self.redis.zrem(self.keys.workers, *gone)
        found = [
            WorkerInfo(
                id=raw.decode(),
                host=fields.get(b"host", b"").decode(),
                pid=int(fields.get(b"pid", b"0")),
                started_at=_time(fields.get(b"started_at")),
                last_heartbeat_at=_time(fields.get(b"last_heartbeat_at")),
                jobs_running=int(fields.get(b"jobs_running", b"0")),
                jobs_done=int(fields.get(b"jobs_done", b"0")),
                max_jobs=int(fields[b"max_jobs"]) if b"max_jobs" in fields else None,
            )
            for raw, fields in zip(ids, hashes, strict=True)
            if fields
        ]
        return sorted(found, key=lambda w: (w.started_at, w.id))
