"""Workers take a new job the moment it is enqueued, not at their next poll.

arq polls its queue every `poll_delay`: at 20 ms that adds about 10-20 ms to every answer's time to first token
and costs CPU while idle. Every enqueue (`contract.queue.enqueue_generation`) also publishes on
`Keys.queue_wake`; each worker's pub/sub listener (`worker.control`) then cuts its poll loop's sleep short. The
poll itself stays, with a longer delay, as the safety net for a message lost while a worker resubscribes.
"""

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import arq.worker

_wake = asyncio.Event()


def wake_poll() -> None:
    _wake.set()


async def wakeable_poll(step: float = 0.5) -> AsyncGenerator[float, None]:
    """arq's `poll`, whose wait between iterations a `wake_poll()` ends early."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        # Cleared before the iteration: a wake that arrives while it runs is kept and starts the next one at once.
        _wake.clear()
        before = loop.time()
        yield before - start
        wait = max(0.0, step - (loop.time() - before))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await _wake.wait()


def install() -> None:
    """arq's main loop calls `poll` from its own module namespace, looked up at call time."""
    arq.worker.poll = wakeable_poll  # type: ignore[attr-defined]
