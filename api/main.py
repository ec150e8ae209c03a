"""The API process: `uvicorn api.main:app --timeout-graceful-shutdown 5`."""

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from api.admission import Admission
from api.auth import Authenticator
from api.body_limit import BodyLimitMiddleware
from api.csrf import CsrfMiddleware
from api.deps import AppState
from api.errors import NotFoundError, install_error_handlers
from api.hub import StreamHub
from api.observe import ObserveMiddleware
from api.routes import chat, health, openai_chat, openai_common, openai_models, openai_responses, streams, workers
from api.routes.metrics import router as metrics_router
from api.send_timeout import with_send_timeout
from api.sse import HANDOFF_SCOPE_KEY, SseStream
from contract.keys import Keys
from contract.logs import setup_logging
from contract.queue import enqueue_generation, job_queue
from contract.recovery import LeaseMonitor
from contract.redis_client import connect
from contract.settings import Settings, get_settings
from contract.store import StreamStore

log = logging.getLogger("chatrelay.api")

FRONTEND_DIST = Path(__file__).resolve().parent.parent / "frontend" / "dist"


def _may_stream(path: str) -> bool:
    """The paths whose route may answer with an SSE handoff: the native events, OpenAI's surface, whose create and
    retrieve routes stream when the body or query says `stream` (never decided by `Accept`), and the AI SDK's chat
    (`POST /api/chat` and its resume)."""
    return path.endswith("/events") or path.startswith(("/v1/", "/api/chat"))


class ChatrelayApp(FastAPI):
    """FastAPI, with SSE event responses served in this outermost layer on the server's own `send`.

    The events route validates the request and sends the headers through the middlewares as any route does,
    then hands its `SseStream` out (`api.sse.SseHandoff`); the stream runs here once the middlewares have
    returned: no wrapper per middleware on every token, no frames held per connection, and the connection in
    reach of the send timeout (`api.send_timeout`) so a reader that stops reading can be cut off."""

    def __init__(self, *, send_timeout_seconds: float, socket_buffer_bytes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.send_timeout_seconds = send_timeout_seconds
        self.socket_buffer_bytes = socket_buffer_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _may_stream(scope["path"]):
            await super().__call__(scope, receive, send)
            return
        timed = with_send_timeout(send, self.send_timeout_seconds, self.socket_buffer_bytes)
        handoff: list[SseStream] = []
        scope[HANDOFF_SCOPE_KEY] = handoff
        await super().__call__(scope, receive, timed)
        for stream in handoff:
            await stream.run(timed, receive, raw_send=send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # Here, at import under uvicorn: after uvicorn configured its loggers, before it logs the server's start.
    setup_logging("api", settings.log_format, settings.log_level)
    keys = Keys(settings.key_prefix)
    auth = Authenticator(settings)  # here, not in the lifespan: a malformed key setting fails at startup

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect(settings.redis_url)
        queue = job_queue(redis, keys)
        store = StreamStore(redis, keys, settings.stream_ttl_seconds)
        hub = StreamHub(
            redis,
            keys,
            outage_grace_seconds=settings.redis_outage_grace_seconds,
            heartbeat_seconds=settings.heartbeat_seconds,
        )
        await hub.start()

        async def retry(stream_id: str, attempt: int) -> None:
            await enqueue_generation(queue, keys, stream_id, attempt)

        # API processes watch leases too, so a stream whose last worker died still ends or gets retried.
        monitor = LeaseMonitor(store, retry, settings.lease_check_seconds, settings.max_attempts)
        monitor_task = asyncio.create_task(monitor.run(), name="lease-monitor")
        admission = Admission(
            redis,
            keys,
            max_active_per_owner=settings.max_active_streams_per_owner,
            max_queue_depth=settings.max_queue_depth,
            max_sse_per_owner=settings.max_sse_connections_per_owner,
            sse_lifetime_seconds=settings.sse_max_lifetime_seconds,
            ttl_seconds=settings.stream_ttl_seconds,
        )
        app.state.chatrelay = AppState(settings, store, queue, hub, auth, admission)
        if settings.demo_upstream:
            log.warning("DEMO MODE: answers come from the local demo model, not from OpenAI")
        # What exists now (modules, the SDK's and pydantic's classes, settings) lives as long as the process: freeze
        # it out of the collector, whose full passes over it stalled every stream for 50-90 ms (issue 5, `make bench`).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            monitor_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor_task
            await hub.stop()
            await redis.aclose()

    app = ChatrelayApp(
        send_timeout_seconds=settings.sse_send_timeout_seconds,
        socket_buffer_bytes=settings.sse_socket_buffer_bytes,
        title="chatrelay",
        summary="Streams LLM chat answers that survive reloads, network drops and redeploys.",
        lifespan=lifespan,
    )
    cors_origins = frozenset(o.strip().rstrip("/") for o in settings.cors_origins.split(",") if o.strip())
    # Added innermost first: CORS answers preflights, then CSRF checks, then the body limit reads the body.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(CsrfMiddleware, allowed_origins=cors_origins)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=sorted(cors_origins),
            allow_credentials=True,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID", "X-Chatrelay-UI-Features"],
            expose_headers=["Retry-After", "x-chatrelay-stream-id"],
        )
    # Outermost: tags every line of a stream's request with its id, including uvicorn's access log line.
    app.add_middleware(ObserveMiddleware)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics_router)
    app.include_router(streams.router)
    app.include_router(chat.router)
    app.include_router(workers.router)
    # OpenAI's API under /v1 (`api.openai_compat`); the catch-all 404 after its routes.
    app.include_router(openai_responses.router)
    app.include_router(openai_chat.router)
    app.include_router(openai_models.router)
    app.include_router(openai_common.router)

    @app.api_route("/api/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def api_not_found(path: str) -> None:
        """Unknown `/api/*` paths are JSON 404s, never the SPA shell."""
        raise NotFoundError(f"no API route /api/{path}")

    if (FRONTEND_DIST / "index.html").is_file():
        app.frontend("/", directory=FRONTEND_DIST)
    return app


app = create_app()
