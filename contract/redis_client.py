"""How every chatrelay process connects to Redis."""

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def connect(url: str) -> "Redis":
    """A client with bytes replies (stored payloads are relayed as they are) and bounded retries.

    redis-py 5 does not retry by default; five retries with backoff (1.5 s in all) ride out a blip or a quick
    Redis restart, and anything longer surfaces as an error the caller maps (503 in the API; a worker's
    failed write leaves its lease to expire, and the stream is retried).
    """
    client: Redis = Redis.from_url(
        url,
        decode_responses=False,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=5),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=30,
        socket_connect_timeout=5,
    )
    return client
