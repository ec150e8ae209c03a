"""Figures for `chatrelay stats`, read from the indexes and the meta hashes in Redis (no metrics server needed)."""

import math
import time
from collections import Counter

import orjson
from pydantic import BaseModel
from redis.asyncio import Redis

from contract.keys import Keys

_CHUNK = 500
_FIELDS = ("status", "created_at", "first_token_at", "finished_at", "error")


class Percentiles(BaseModel):
    """Milliseconds; None when there is no sample."""

    count: int
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None


class Stats(BaseModel):
    queue_depth: int  # jobs waiting for a worker (a job leaves arq's queue once its generation began)
    queued: int
    running: int
    window_seconds: float
    done: int  # finished within the window, by how they ended
    error: int
    cancelled: int
    errors_by_code: dict[str, int]
    ttft_ms: Percentiles  # created -> first text, for streams whose first text came within the window


def percentiles(values: list[float]) -> Percentiles:
    """Nearest-rank percentiles."""
    if not values:
        return Percentiles(count=0)
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return Percentiles(count=len(ordered), p50=rank(50), p90=rank(90), p99=rank(99), max=ordered[-1])


async def _metas(redis: "Redis", keys: Keys, ids: list[bytes]) -> list[list[bytes | None]]:
    found: list[list[bytes | None]] = []
    for start in range(0, len(ids), _CHUNK):
        async with redis.pipeline(transaction=False) as pipe:
            for raw in ids[start : start + _CHUNK]:
                pipe.hmget(keys.meta(raw.decode()), list(_FIELDS))
            found += await pipe.execute()
    return found


async def collect(redis: "Redis", keys: Keys, window_seconds: float, lookback_seconds: float) -> Stats:
    """Stats over the last `window_seconds`. A stream that ended in the window was created at most
    `lookback_seconds` before the window began (time in the queue plus its attempts), so older ones are not read."""
    now_ms = int(time.time() * 1000)
    since_ms = now_ms - int(window_seconds * 1000)
    queue_depth = int(await redis.zcard(keys.queue))
    active = await _metas(redis, keys, await redis.zrange(keys.active, 0, -1))
    statuses = Counter(m[0] for m in active)
    recent_ids: list[bytes] = await redis.zrangebyscore(keys.recent, since_ms - int(lookback_seconds * 1000), "+inf")
    ended: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    ttft: list[float] = []
    for status, created, first_token, finished, error in await _metas(redis, keys, recent_ids):
        if created and first_token and int(first_token) >= since_ms:
            ttft.append(float(int(first_token) - int(created)))
        if status is None or finished is None or int(finished) < since_ms:
            continue
        ended[status.decode()] += 1
        if error:
            codes[str(orjson.loads(error).get("code", "unknown"))] += 1
    return Stats(
        queue_depth=queue_depth,
        queued=statuses[b"queued"],
        running=statuses[b"running"],
        window_seconds=window_seconds,
        done=ended["done"],
        error=ended["error"],
        cancelled=ended["cancelled"],
        errors_by_code=dict(codes.most_common()),
        ttft_ms=percentiles(ttft),
    )
