"""An arq worker that outlives a Redis restart.

arq's poll loop lets any Redis error escape its main task, so the process exits when Redis restarts (arq#435,
#498): a refused connect, a WATCH broken by a dropped connection, a finished job's bookkeeping failing. The
redis-py retry settings in `worker.main` absorb most single-command failures; this class catches what is left
at the one place every one of them passes through, waits with backoff and polls again. Running generations are
not touched: they hold their own Redis client and their lease, and `contract.recovery` deals with any that
could not write while Redis was away.
"""

import asyncio
import logging

import arq.worker
from redis.exceptions import RedisError

from contract.metrics import REDIS_ERRORS

log = logging.getLogger(__name__)

_BACKOFF_FIRST_S = 0.1
_BACKOFF_CAP_S = 2.0


class ResilientWorker(arq.worker.Worker):
    _redis_failures = 0

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except (RedisError, OSError) as exc:
            self._redis_failures += 1
            REDIS_ERRORS.labels("poll").inc()
            delay = min(_BACKOFF_CAP_S, _BACKOFF_FIRST_S * 2 ** (self._redis_failures - 1))
            if self._redis_failures == 1:
                log.warning("worker lost Redis (%s); polling again with backoff", type(exc).__name__)
            await asyncio.sleep(delay)
            return
        if self._redis_failures:
            log.warning("worker reached Redis again after %d failed polls", self._redis_failures)
            self._redis_failures = 0

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        # arq takes a concurrency slot (semaphore and job counter) before the pipeline that claims a job; when
        # that pipeline fails on a Redis error the slot would leak. Claim one job at a time and give it back.
        for job_id in job_ids:
            try:
                await super().start_jobs([job_id])
            except (RedisError, OSError):
                self.job_counter -= 1
                self.sem.release()
                raise


def install() -> None:
    """Make `arq worker.main.WorkerSettings` run this class: arq's CLI builds its worker through
    `arq.worker.create_worker`, which looks `Worker` up in its module at call time."""
    arq.worker.Worker = ResilientWorker  # type: ignore[misc]
