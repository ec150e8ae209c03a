"""The worker process: `arq worker.main.WorkerSettings`."""

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import socket
from typing import Any, ClassVar

import arq.cli
import uvloop
from arq import func
from arq.connections import RedisSettings
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from contract.jobs import GENERATE_JOB, deserialize_job, serialize_job
from contract.keys import Keys
from contract.logs import setup_logging
from contract.queue import enqueue_generation, job_queue
from contract.recovery import LeaseMonitor
from contract.redis_client import connect
from contract.settings import get_settings
from contract.store import StreamStore
from contract.workers import WorkerRegistry
from worker.append_batcher import AppendBatcher
from worker.control import CancelListener
from worker.generation import WorkerDeps, generate
from worker.heartbeat import Heartbeat, JobCounter
from worker.metrics import serve as serve_metrics
from worker.resilient import install as install_resilient_worker
from worker.upstream import Scrubber, UpstreamSettings, make_client
from worker.wake import install as install_wakeable_poll

log = logging.getLogger("chatrelay.worker")


async def generate_stream(ctx: dict[str, Any], stream_id: str, attempt: int = 1) -> dict[str, Any]:
    """The arq job: attempt `attempt` at generating the answer of `stream_id`."""
    deps: WorkerDeps = ctx["chatrelay"]
    jobs: JobCounter = ctx["jobs"]
    with jobs.track():
        return await generate(deps, stream_id, attempt)


async def startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    upstream = UpstreamSettings()
    # Again with the model key, so a line that quotes it is scrubbed (and after arq set up its logger).
    setup_logging("worker", settings.log_format, settings.log_level, secrets=upstream.secrets())
    serve_metrics(settings.worker_metrics_port)
    keys = Keys(settings.key_prefix)
    redis = connect(settings.redis_url)
    cancels = CancelListener(redis, keys.control, wake_channel=keys.queue_wake)
    await cancels.start()
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    store = StreamStore(redis, keys, settings.stream_ttl_seconds)
    queue = job_queue(redis, keys)

    async def retry(stream_id: str, attempt: int) -> None:
        await enqueue_generation(queue, keys, stream_id, attempt)

    monitor = LeaseMonitor(store, retry, settings.lease_check_seconds, settings.max_attempts)
    ctx["lease_monitor"] = asyncio.create_task(monitor.run(), name="lease-monitor")
    ctx["chatrelay"] = WorkerDeps(
        settings=settings,
        store=store,
        appends=AppendBatcher(store),
        client=make_client(upstream, settings.upstream_read_timeout_seconds),
        cancels=cancels,
        scrub=Scrubber(upstream.secrets()),
        worker_id=worker_id,
    )
    jobs = ctx["jobs"] = JobCounter()
    heartbeat = ctx["heartbeat"] = Heartbeat(
        WorkerRegistry(redis, keys),
        worker_id,
        jobs,
        max_jobs=settings.max_concurrent_jobs,
        interval=settings.worker_heartbeat_seconds,
        ttl=settings.worker_ttl_seconds,
    )
    await heartbeat.start()
    # What exists now (modules, the SDK's and pydantic's classes, settings) lives as long as the process: freeze
    # it out of the collector, whose full passes over it stalled every stream for 50-90 ms (issue 5, `make bench`).
    gc.collect()
    gc.freeze()
    target = "Azure OpenAI" if upstream.azure_openai_endpoint else (upstream.openai_base_url or "api.openai.com")
    log.info("worker %s ready: model %s at %s", worker_id, settings.openai_model, target)
    if settings.demo_upstream:
        log.warning("DEMO MODE: this worker talks to the local demo model, not to OpenAI")


async def shutdown(ctx: dict[str, Any]) -> None:
    deps: WorkerDeps | None = ctx.get("chatrelay")
    if deps is None:
        return
    heartbeat: Heartbeat = ctx["heartbeat"]
    await heartbeat.stop()  # a graceful stop leaves the registry at once
    monitor: asyncio.Task[None] = ctx["lease_monitor"]
    monitor.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await monitor
    await deps.cancels.stop()
    await deps.client.close()
    await deps.store.redis.aclose()


install_resilient_worker()
install_wakeable_poll()
# uvloop, as uvicorn runs the API: arq creates its loop after importing this module. The worker's work per token
# is mostly event-loop and socket overhead, which uvloop roughly halves (issue 5).
asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
_settings = get_settings()
setup_logging("worker", _settings.log_format, _settings.log_level)
# arq's CLI applies its own logging config after importing this module; this one leaves ours in place.
arq.cli.default_log_config = lambda verbose: {"version": 1, "incremental": True}  # type: ignore[attr-defined]
_redis_settings = RedisSettings.from_dsn(_settings.redis_url)
# arq exits when Redis goes away (arq#435); retrying with backoff for about half a minute rides out a Redis
# restart instead. Past that the process exits and its supervisor (compose, systemd) restarts it. OSError is
# listed because redis-py retries a refused connect (Redis not listening yet) only when told to: without it the
# first poll during a restart raises ConnectionRefusedError straight out of arq's main loop.
_redis_settings.retry = Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=20)
_redis_settings.retry_on_error = [RedisConnectionError, RedisTimeoutError, OSError]


class WorkerSettings:
    """arq reads its options from this class's attributes (entry point of the worker process)."""

    functions: ClassVar = [
        # Retries are ours (leases, `contract.recovery`); an arq re-run of an attempt that already started
        # is refused by the begin script, so arq can never create a second writer.
        func(generate_stream, name=GENERATE_JOB, max_tries=3),
    ]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = _redis_settings
    queue_name = Keys(_settings.key_prefix).queue
    job_serializer = serialize_job
    job_deserializer = deserialize_job
    health_check_key = Keys(_settings.key_prefix).worker_health(socket.gethostname())
    # arq polls its queue (0.5 s by default); every enqueue also wakes the poll at once (`worker.wake`).
    poll_delay = _settings.queue_poll_seconds
    max_jobs = _settings.max_concurrent_jobs
    job_timeout = int(_settings.generation_timeout_seconds) + 60
    keep_result = 60
    health_check_interval = 10
