"""Cancel requests pushed to this worker process.

The API publishes a stream id on `Keys.control` when a running stream is cancelled (and sets a flag in its
meta hash). One subscriber per worker process sets the event of the generation it runs, which closes the
upstream request at once. Pub/sub is fire-and-forget; the meta flag is the safety net: the next append of
that stream is refused, so a missed message delays the stop by one token at most.
"""

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from contract.metrics import REDIS_ERRORS
from worker.wake import wake_poll

log = logging.getLogger(__name__)


class CancelListener:
    """Also listens on the queue's wake channel (one pub/sub connection per worker for both)."""

    def __init__(self, redis: "Redis", channel: str, wake_channel: str | None = None) -> None:
        self._redis = redis
        self._channel = channel
        self._wake_channel = wake_channel.encode() if wake_channel else None
        self._events: dict[str, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cancel-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def register(self, stream_id: str) -> asyncio.Event:
        event = self._events[stream_id] = asyncio.Event()
        return event

    def unregister(self, stream_id: str) -> None:
        self._events.pop(stream_id, None)

    async def _run(self) -> None:
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel, *([self._wake_channel] if self._wake_channel else []))
                    async for message in pubsub.listen():
                        if message["channel"] == self._wake_channel:
                            wake_poll()
                            continue
                        event = self._events.get(message["data"].decode())
                        if event is not None:
                            event.set()
            except RedisError as exc:
                REDIS_ERRORS.labels("cancel_listener").inc()
                log.warning("cancel listener lost Redis (%s); resubscribing", type(exc).__name__)
                await asyncio.sleep(0.5)
