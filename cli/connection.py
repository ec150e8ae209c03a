"""What the operating commands share: Redis from the settings (`REDIS_URL`, `CHATRELAY_KEY_PREFIX`), the key
schema and the stream store, and one place that turns an unreachable Redis into a short message."""

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError

from contract.keys import Keys
from contract.redis_client import connect
from contract.settings import Settings, get_settings
from contract.store import StreamStore


@dataclass(frozen=True, slots=True)
class Ops:
    settings: Settings
    redis: "Redis"
    keys: Keys
    store: StreamStore


@asynccontextmanager
async def open_ops() -> AsyncIterator[Ops]:
    settings = get_settings()
    redis = connect(settings.redis_url)
    keys = Keys(settings.key_prefix)
    try:
        yield Ops(settings, redis, keys, StreamStore(redis, keys, settings.stream_ttl_seconds))
    finally:
        await redis.aclose()


def run(command: Callable[[Ops], Awaitable[int]]) -> int:
    """Run an async command against Redis; exit status 1 with a message when Redis cannot be reached."""

    async def main() -> int:
        async with open_ops() as ops:
            return await command(ops)

    try:
        return asyncio.run(main())
    except RedisError as exc:
        print(f"chatrelay: Redis at {_without_password(get_settings().redis_url)} failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()
