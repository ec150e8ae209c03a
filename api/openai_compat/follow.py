"""Reading a whole stream, and waiting for its end, for the `/v1` requests that answer once (no `stream`).

The wait follows the stream through the process's one hub (`api.hub`), like an SSE connection, so a thousand
waiting requests cost no more Redis reads than a thousand readers; it only looks for the terminal entry and reads
the stream once at the end.
"""

import asyncio

from api.hub import StreamHub
from contract.status import TERMINAL_STATUSES
from contract.store import RawEntry, StreamStore, is_terminal_entry

_PAGE = 1000
_TERMINAL = frozenset(s.value.encode() for s in TERMINAL_STATUSES)


async def read_all(store: StreamStore, stream_id: str) -> list[RawEntry]:
    entries: list[RawEntry] = []
    after = b"0-0"
    while True:
        page = await store.read_after(stream_id, after, count=_PAGE)
        entries += page
        if len(page) < _PAGE:
            return entries
        after = page[-1][0]


async def _ended(store: StreamStore, stream_id: str) -> bool:
    """The status and the terminal event are written in one script, so the status tells whether it is stored."""
    status = await store.redis.hget(store.keys.meta(stream_id), "status")  # type: ignore[misc]
    return status is None or status in _TERMINAL


async def wait_for_end(store: StreamStore, hub: StreamHub, stream_id: str, timeout_seconds: float) -> bool:
    """Until the stream's terminal event is stored (True), or `timeout_seconds` pass (False)."""
    key = store.keys.events(stream_id).encode()
    # Subscribed before the status is read: a terminal event stored after that read comes through the hub.
    sub, _cursor = hub.subscribe(key, await store.last_entry_id(stream_id))
    try:
        async with asyncio.timeout(timeout_seconds):
            if await _ended(store, stream_id):
                return True
            while True:
                await sub.wait()
                entries, sub.entries = sub.entries, []
                if any(is_terminal_entry(fields) for _id, fields in entries):
                    return True
                if sub.overflowed or sub.outage:
                    sub.overflowed = sub.outage = False
                    if await _ended(store, stream_id):
                        return True
                if sub.heartbeat_due:  # nothing to send: only keeps the hub's ticker from waking this every tick
                    sub.heartbeat_due = False
                    sub.last_sent = asyncio.get_running_loop().time()
    except TimeoutError:
        return False
    finally:
        hub.unsubscribe(sub)
