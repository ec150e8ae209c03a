"""ASGI middleware: the stream id on every log line of a request about a stream, and request durations.

SSE event responses (`.../events`) pass straight through: they last as long as an answer (which would skew
the duration histogram), and wrapping their `send` would add a call to every chunk of the hot path.
"""

import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import observe_request
from contract.logs import bind_stream

_STREAM_PATH = re.compile(r"^/api/streams/([A-Za-z0-9_-]{16,64})(?:/|$)")


class ObserveMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        match = _STREAM_PATH.match(path)
        if match is not None:
            bind_stream(match[1])  # this request's task only: uvicorn runs each request in its own task
        if path.endswith("/events"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            # The route template (`/api/streams/{stream_id}`), never the raw path: one series per route.
            template = getattr(route, "path", "") or "other"
            observe_request(scope["method"], template, status, started)
