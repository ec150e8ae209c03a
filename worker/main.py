"""The worker process: `arq worker.main.WorkerSettings`."""

import logging
import os
import secrets
import socket
from typing import Any, ClassVar

from arq import func
from arq.connections import RedisSettings

from contract.jobs import GENERATE_JOB, deserialize_job, serialize_job
from contract.keys import Keys
from contract.redis_client import connect
from contract.settings import get_settings
from contract.store import StreamStore
from worker.control import CancelListener
from worker.generation import WorkerDeps, generate
from worker.upstream import Scrubber, UpstreamSettings, make_client

log = logging.getLogger("chatrelay.worker")


async def generate_stream(ctx: dict[str, Any], stream_id: str) -> dict[str, Any]:
    """The arq job: one attempt at generating the answer of `stream_id`."""
    deps: WorkerDeps = ctx["chatrelay"]
    return await generate(deps, stream_id)


async def startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    upstream = UpstreamSettings()
    keys = Keys(settings.key_prefix)
    redis = connect(settings.redis_url)
    cancels = CancelListener(redis, keys.control)
    await cancels.start()
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    ctx["chatrelay"] = WorkerDeps(
        settings=settings,
        store=StreamStore(redis, keys, settings.stream_ttl_seconds),
        client=make_client(upstream, settings.upstream_read_timeout_seconds),
        cancels=cancels,
        scrub=Scrubber(upstream.secrets()),
        worker_id=worker_id,
    )
    target = "Azure OpenAI" if upstream.azure_openai_endpoint else (upstream.openai_base_url or "api.openai.com")
    log.info("worker %s ready: model %s at %s", worker_id, settings.openai_model, target)
    if settings.demo_upstream:
        log.warning("DEMO MODE: this worker talks to the local demo model, not to OpenAI")


async def shutdown(ctx: dict[str, Any]) -> None:
    deps: WorkerDeps | None = ctx.get("chatrelay")
    if deps is None:
        return
    await deps.cancels.stop()
    await deps.client.close()
    await deps.store.redis.aclose()


_settings = get_settings()


class WorkerSettings:
    """arq reads its options from this class's attributes (entry point of the worker process)."""

    functions: ClassVar = [
        # Our own attempts and fencing decide retries (worker.generation); arq re-runs only after SIGTERM.
        func(generate_stream, name=GENERATE_JOB, max_tries=_settings.max_attempts + 1),
    ]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(_settings.redis_url)
    queue_name = Keys(_settings.key_prefix).queue
    job_serializer = serialize_job
    job_deserializer = deserialize_job
    # arq polls its queue; 0.5 s by default would add up to half a second to time to first token.
    poll_delay = _settings.queue_poll_seconds
    max_jobs = _settings.max_concurrent_jobs
    job_timeout = int(_settings.generation_timeout_seconds) + 60
    keep_result = 60
    health_check_interval = 10
