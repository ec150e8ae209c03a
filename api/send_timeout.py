"""A send timeout for SSE responses: a reader that stops reading is cut off instead of holding memory.

A client that stops reading (a frozen tab, a half-open connection) fills its socket buffers; the server's
`send` then waits for them to drain, forever. Wrapping the server's own `send` bounds that wait. On timeout
the connection is aborted (not closed: a close would wait for the very buffers that never drain), which
frees the buffered bytes at once; the server then reports the client as gone, so the response ends as for
any disconnect and the relay gives back its hub subscription and connection slot.
"""

import asyncio
import logging

from starlette.types import Message, Send

log = logging.getLogger("chatrelay.api.sse")


def _abort_connection(send: Send) -> bool:
    # uvicorn's `send` is a bound method of its request cycle, which holds the asyncio transport.
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    if abort is None:
        return False
    abort()
    return True


def with_send_timeout(send: Send, timeout_seconds: float) -> Send:
    gone = False

    async def send_or_drop(message: Message) -> None:
        nonlocal gone
        if gone:
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
