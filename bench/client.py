"""A small HTTP/1.1 client for the load: one asyncio `Protocol` per connection, which timestamps every SSE event
the moment its bytes arrive.

Why not httpx: at thousands of events per second its per-chunk cost in the load process (on the same two
cores as the servers) would show up as added latency of the designs under test, and 10,000 idle connections
through it cost the client more memory than the server. This client keeps a cookie jar of its own (the API's
anonymous session cookie), so all requests of one load client belong to one owner, as one httpx client's jar
would make them.
"""

import asyncio
import time
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import orjson

TERMINAL = frozenset({b"done", b"error", b"cancelled"})


class HttpError(Exception):
    """The server answered something unexpected or closed the connection early."""


@dataclass(slots=True)
class SseEvent:
    id: bytes | None
    event: bytes
    data: bytes
    at: float  # time.time() when the bytes that completed this event arrived


@dataclass
class Reply:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    events: list[SseEvent] = field(default_factory=list)
    sent_at: float = 0.0
    headers_at: float = 0.0
    complete: bool = False  # the body ended normally (last chunk, or a terminal SSE event)

    def json(self) -> object:
        return orjson.loads(self.body)


class _Connection(asyncio.Protocol):
    """One request and its response; the SSE body is parsed into `reply.events` as it arrives."""

    def __init__(self, request: bytes, stop_after: int | None) -> None:
        self.request = request
        self.stop_after = stop_after
        self.reply = Reply()
        loop = asyncio.get_running_loop()
        self.headers_done: asyncio.Future[None] = loop.create_future()
        self.finished: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self._head = b""
        self._in_body = False
        self._chunked = False
        self._length = -1
        self._raw = b""  # undecoded chunked body
        self._sse = b""
        self._is_sse = False
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.reply.sent_at = time.time()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if not self._in_body:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            self._parse_head(self._head[:end], now)
            data, self._head = self._head[end + 4 :], b""
            if self.finished.done():
                return
        if self._chunked:
            self._raw += data
            self._dechunk(now)
        else:
            self._feed(data, now)
            if self._length >= 0 and sum(map(len, self._body)) >= self._length:
                self._finish(complete=True)

    def _parse_head(self, head: bytes, now: float) -> None:
        lines = head.split(b"\r\n")
        self.reply.status = int(lines[0].split(b" ", 2)[1])
        self.reply.headers_at = now
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip()
            self.reply.headers.append((name, value))
            if name == b"transfer-encoding" and b"chunked" in value.lower():
                self._chunked = True
            elif name == b"content-length":
                self._length = int(value)
            elif name == b"content-type" and value.startswith(b"text/event-stream"):
                self._is_sse = True
        self._in_body = True
        self.headers_done.set_result(None)
        if self._length == 0 or self.reply.status in (204, 304):
            self._finish(complete=True)

    def _dechunk(self, now: float) -> None:
        raw = self._raw
        pos = 0
        while True:
            eol = raw.find(b"\r\n", pos)
            if eol < 0:
                break
            size = int(raw[pos:eol].split(b";", 1)[0], 16)
            if size == 0:
                self._raw = b""
                self._finish(complete=True)
                return
            start = eol + 2
            if len(raw) < start + size + 2:
                break
            self._feed(raw[start : start + size], now)
            if self.finished.done():
                return
            pos = start + size + 2
        self._raw = raw[pos:]

    def _feed(self, data: bytes, now: float) -> None:
        if not self._is_sse:
            self._body.append(data)
            return
        buf = self._sse + data
        events = self.reply.events
        while True:
            end = buf.find(b"\n\n")
            if end < 0:
                break
            block, buf = buf[:end], buf[end + 2 :]
            event_id: bytes | None = None
            event_type = b"message"
            data_lines: list[bytes] = []
            for line in block.split(b"\n"):
                name, _, value = line.partition(b": ")
                if name == b"data":
                    data_lines.append(value)
                elif name == b"event":
                    event_type = value
                elif name == b"id":
                    event_id = value
            if not data_lines:
                continue  # retry: and comment-only blocks carry no event
            events.append(SseEvent(event_id, event_type, b"\n".join(data_lines), now))
            if event_type in TERMINAL:
                self._finish(complete=True)
                return
            if self.stop_after is not None and len(events) >= self.stop_after:
                self._finish(complete=False)
                return
        self._sse = buf

    def _finish(self, complete: bool) -> None:
        if self.finished.done():
            return
        self.reply.complete = complete
        self.reply.body = b"".join(self._body)
        if not self.headers_done.done():
            self.headers_done.set_exception(HttpError("the connection closed before the response headers"))
        self.finished.set_result(None)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self._finish(complete=self._in_body and not self._chunked and self._length < 0 and not self._is_sse)

    def close(self) -> None:
        self._finish(complete=False)


class HttpClient:
    """Requests to one server, sharing a cookie jar. A new connection per request, as a browser tab's
    EventSource has; both designs pay the same connect cost."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.headers = dict(headers or {})  # sent with every request (the bench's API key)
        self.cookies: dict[bytes, bytes] = {}

    def _request(self, method: str, path: str, body: bytes | None, headers: dict[str, str] | None) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Accept: */*"]
        for name, value in {**self.headers, **(headers or {})}.items():
            lines.append(f"{name}: {value}")
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        head = ("\r\n".join(lines) + "\r\n").encode()
        if self.cookies:
            head += b"Cookie: " + b"; ".join(k + b"=" + v for k, v in self.cookies.items()) + b"\r\n"
        return head + b"\r\n" + (body or b"")

    def _keep_cookies(self, reply: Reply) -> None:
        for name, value in reply.headers:
            if name == b"set-cookie":
                pair = value.split(b";", 1)[0]
                key, _, val = pair.partition(b"=")
                self.cookies[key.strip()] = val.strip()

    async def open(
        self,
        method: str,
        path: str,
        json_body: object = None,
        headers: dict[str, str] | None = None,
        stop_after: int | None = None,
    ) -> _Connection:
        """Send a request; returns once the response headers arrived (the body keeps coming in)."""
        body = orjson.dumps(json_body) if json_body is not None else None
        conn = _Connection(self._request(method, path, body, headers), stop_after)
        loop = asyncio.get_running_loop()
        sent_at = time.time()
        await loop.create_connection(lambda: conn, self.host, self.port)
        conn.reply.sent_at = sent_at  # include the connect, as a browser's first request would
        await conn.headers_done
        self._keep_cookies(conn.reply)
        return conn

    async def fetch(
        self,
        method: str,
        path: str,
        json_body: object = None,
        headers: dict[str, str] | None = None,
        stop_after: int | None = None,
    ) -> Reply:
        """Send a request and read the whole response (an SSE one until its terminal event or `stop_after`)."""
        conn = await self.open(method, path, json_body, headers, stop_after)
        await conn.finished
        return conn.reply
