"""A send timeout for SSE responses: a reader that stops reading is cut off instead of holding memory.

A client that stops reading (a frozen tab, a half-open connection) fills its socket buffers; the server's
`send` then waits for them to drain, forever. Wrapping the server's own `send` bounds that wait. On timeout
the connection is aborted (not closed: a close would wait for the very buffers that never drain), which
frees the buffered bytes at once; the server then reports the client as gone, so the response ends as for
any disconnect and the relay gives back its hub subscription and connection slot.
"""

import asyncio
import contextlib
import logging
import socket
from typing import Any

from starlette.types import Message, Send

log = logging.getLogger("chatrelay.api.sse")


def _transport(send: Send) -> Any:
    # uvicorn's `send` is a bound method of its request cycle, which holds the asyncio transport.
    return getattr(getattr(send, "__self__", None), "transport", None)


def _abort_connection(send: Send) -> bool:
    abort = getattr(_transport(send), "abort", None)
    if abort is None:
        return False
    abort()
    return True


def _limit_socket_buffer(send: Send, size: int) -> None:
    """Cap the kernel's send buffer of this connection. Linux grows it up to 4 MiB for a reader that does
    not read: kernel memory a stalled client would pin until the timeout, and bytes to fill before `send`
    even starts to wait. An answer streams far slower than 64 KiB per round trip, so this costs no speed."""
    sock = getattr(_transport(send), "get_extra_info", lambda _name: None)("socket")
    if sock is not None and size > 0:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


def with_send_timeout(send: Send, timeout_seconds: float, socket_buffer_bytes: int = 0) -> Send:
    gone = False
    _limit_socket_buffer(send, socket_buffer_bytes)
    # uvicorn's flow control: its `send` waits only while the transport is paused for writing. While it is not,
    # a send cannot block, so the timer (a scheduled callback per send) is skipped on the hot path.
    flow = getattr(getattr(send, "__self__", None), "flow", None)

    async def send_or_drop(message: Message) -> None:
        nonlocal gone
        if gone:
            return
        if flow is not None and not flow.write_paused:
            await send(message)
            return
        try:
            async with asyncio.timeout(timeout_seconds):
                await send(message)
        except TimeoutError:
            gone = True
            log.info("SSE reader accepted nothing for %.0f s: connection dropped", timeout_seconds)
            if not _abort_connection(send):
                raise
            # Let the server see the connection is lost, so it treats the response as ended by the client.
            for _ in range(3):
                await asyncio.sleep(0)

    return send_or_drop
