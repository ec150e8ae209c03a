"""Live SSE chunks written straight to the client's connection by the stream hub, without waking the
connection's task.

An idle SSE connection waits for its next event. When the hub reads one, the cheapest way out is the write
itself: waking the connection's task to call the server's `send` costs a scheduled task step, a message dict
and three coroutine layers per token, most of the API's CPU per relayed token after the syscall (issue 5).
So while the connection is in a state where uvicorn's `send` would do nothing but write (its httptools
protocol, a chunked response under way, the client there, the transport not paused for writing), the hub
writes the chunk the way that `send` does. In any other state the write is refused and the entries take the
task's path, with its send timeout (`api.send_timeout`).
"""

from collections.abc import Callable
from typing import Any

from starlette.types import Send

_HTTPTOOLS_CYCLE = "uvicorn.protocols.http.httptools_impl"
# What the writer reads of uvicorn's request cycle (uvicorn is pinned; checked once per connection).
_STATE = ("transport", "flow", "disconnected", "response_complete", "response_started", "chunked_encoding")


def direct_writer(send: Send) -> Callable[[bytes], bool] | None:
    """A function that writes one HTTP chunk now and says whether it did, or None when this server's `send`
    is not one it knows how to stand in for (the h11 protocol, another server, a test client)."""
    cycle: Any = getattr(send, "__self__", None)
    if type(cycle).__module__ != _HTTPTOOLS_CYCLE or not all(hasattr(cycle, name) for name in _STATE):
        return None  # another uvicorn than the pinned one: the task's path, as for any other server
    transport, flow = cycle.transport, cycle.flow

    def write(chunk: bytes) -> bool:
        if (
            flow.write_paused
            or cycle.disconnected
            or transport.is_closing()  # aborted by the send timeout, not yet reported lost
            or cycle.response_complete
            or not cycle.response_started
            or not cycle.chunked_encoding
        ):
            return False
        # uvicorn's chunked framing, as its `send` writes a body message with more_body=True.
        transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        return True

    return write
