"""`GET /metrics`: this API process's Prometheus metrics (not in the OpenAPI schema)."""

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from redis.exceptions import RedisError

from api.deps import StateDep
from api.metrics import QUEUE_DEPTH, STREAMS
from contract.metrics import REDIS_ERRORS

router = APIRouter(include_in_schema=False)


async def _refresh_from_redis(state: StateDep) -> None:
    redis, keys = state.store.redis, state.store.keys
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.queue)
        pipe.zrange(keys.active, 0, -1)
        depth, active = await pipe.execute()
    statuses: list[bytes | None] = []
    if active:
        async with redis.pipeline(transaction=False) as pipe:
            for raw in active:
                pipe.hget(keys.meta(raw.decode()), "status")
            statuses = await pipe.execute()
    QUEUE_DEPTH.set(depth)
    for status in ("queued", "running"):
        STREAMS.labels(status).set(sum(1 for s in statuses if s == status.encode()))


@router.get("/metrics")
async def get_metrics(state: StateDep) -> Response:
    """Prometheus text exposition of this process's metrics."""
    try:
        await _refresh_from_redis(state)
    except RedisError:
        REDIS_ERRORS.labels("metrics").inc()  # the gauges keep their last values; the scrape still answers
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
