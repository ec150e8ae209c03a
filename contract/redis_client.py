"""How every chatrelay process connects to Redis."""

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def connect(url: str) -> "Redis":
    """A client with bytes replies (stored payloads are relayed as they are) and bounded retries.

    redis-py 5 does not retry by default; three retries with backoff ride out a short blip, and anything
    longer surfaces as an error the caller maps (503 in the API, an error event on a stream).
    """
    client: Redis = Redis.from_url(
        url,
        decode_responses=False,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=30,
        socket_connect_timeout=5,
    )
    return client
