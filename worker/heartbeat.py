"""This worker's entry in the worker registry (`contract.workers`): job counts and a periodic heartbeat."""

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator

from redis.exceptions import RedisError

from contract.workers import WorkerRegistry, WorkerState

log = logging.getLogger("chatrelay.worker")


class JobCounter:
    """Generations running now and finished since the worker started (any outcome)."""

    def __init__(self) -> None:
        self.running = 0
        self.done = 0

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self.done += 1


class Heartbeat:
    """Refreshes the worker's registry entry every `interval` seconds; `stop` removes the entry."""

    def __init__(
        self, registry: WorkerRegistry, worker_id: str, jobs: JobCounter, max_jobs: int, interval: float, ttl: float
    ) -> None:
        self.registry = registry
        self.worker_id = worker_id
        self.jobs = jobs
        self.max_jobs = max_jobs
        self.interval = interval
        self.ttl = ttl
        self.started_at_ms = int(time.time() * 1000)
        self._task: asyncio.Task[None] | None = None

    def _state(self) -> WorkerState:
        return WorkerState(
            worker_id=self.worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at_ms=self.started_at_ms,
            jobs_running=self.jobs.running,
            jobs_done=self.jobs.done,
            max_jobs=self.max_jobs,
        )

    async def start(self) -> None:
        # The first beat before taking jobs, so the worker is listed as soon as it is ready.
        await self.registry.heartbeat(self._state(), self.ttl)
        self._task = asyncio.create_task(self._run(), name="worker-heartbeat")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.registry.heartbeat(self._state(), self.ttl)
            except RedisError as exc:
                log.warning("worker heartbeat failed (%s); next try in %.1f s", type(exc).__name__, self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError):
            await self.registry.remove(self.worker_id)
