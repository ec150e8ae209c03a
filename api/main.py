"""The API process: `uvicorn api.main:app --timeout-graceful-shutdown 5`."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from api.body_limit import BodyLimitMiddleware
from api.deps import AppState
from api.errors import NotFoundError, install_error_handlers
from api.hub import StreamHub
from api.routes import health, streams
from contract.keys import Keys
from contract.queue import enqueue_generation, job_queue
from contract.recovery import LeaseMonitor
from contract.redis_client import connect
from contract.settings import Settings, get_settings
from contract.store import StreamStore

log = logging.getLogger("chatrelay.api")

FRONTEND_DIST = Path(__file__).resolve().parent.parent / "frontend" / "dist"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    keys = Keys(settings.key_prefix)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect(settings.redis_url)
        queue = job_queue(redis, keys)
        store = StreamStore(redis, keys, settings.stream_ttl_seconds)
        hub = StreamHub(redis, keys, outage_grace_seconds=settings.redis_outage_grace_seconds)
        await hub.start()

        async def retry(stream_id: str, attempt: int) -> None:
            await enqueue_generation(queue, keys, stream_id, attempt)

        # API processes watch leases too, so a stream whose last worker died still ends or gets retried.
        monitor = LeaseMonitor(store, retry, settings.lease_check_seconds, settings.max_attempts)
        monitor_task = asyncio.create_task(monitor.run(), name="lease-monitor")
        app.state.chatrelay = AppState(settings, store, queue, hub)
        if settings.demo_upstream:
            log.warning("DEMO MODE: answers come from the local demo model, not from OpenAI")
        try:
            yield
        finally:
            monitor_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor_task
            await hub.stop()
            await redis.aclose()

    app = FastAPI(
        title="chatrelay",
        summary="Streams LLM chat answers that survive reloads, network drops and redeploys.",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(streams.router)

    @app.api_route("/api/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def api_not_found(path: str) -> None:
        """Unknown `/api/*` paths are JSON 404s, never the SPA shell."""
        raise NotFoundError(f"no API route /api/{path}")

    if (FRONTEND_DIST / "index.html").is_file():
        app.frontend("/", directory=FRONTEND_DIST)
    return app


app = create_app()
