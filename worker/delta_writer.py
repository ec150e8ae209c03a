"""Adaptive coalescing of model tokens into stream writes.

A token goes out at once when no write is in flight; tokens that arrive while a write is in flight go out
together in the next one. A fast model therefore costs one write per write latency, not per token, and a slow
model's tokens are never held back. An optional window (`CHATRELAY_COALESCE_WINDOW_MS`) waits that long before
each write to batch harder. The writes of all writers in the process share round trips (`AppendBatcher`).
"""

import asyncio
import contextlib

from contract.events import encode_delta
from contract.store import AppendResult
from worker.append_batcher import AppendBatcher


class DeltaWriter:
    def __init__(self, appends: AppendBatcher, stream_id: str, attempt: int, window_ms: float) -> None:
        self._appends = appends
        self._stream_id = stream_id
        self._attempt = attempt
        self._window = window_ms / 1000
        self._pending: list[str] = []
        self._has_pending = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._run())
        self.written_chars = 0
        self.writes = 0
        # Set when Redis refused a write: the attempt was fenced off or the stream was cancelled.
        self.stopped: AppendResult | None = None

    def add(self, text: str) -> None:
        if text and self.stopped is None:
            self._pending.append(text)
            self._has_pending.set()

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._has_pending.clear()
                await self._has_pending.wait()
                continue
            if self._window and not self._closing:
                await asyncio.sleep(self._window)
            text = "".join(self._pending)
            self._pending.clear()
            result = await self._appends.append(
                self._stream_id, self._attempt, len(text), [encode_delta(text)], offset=self.written_chars
            )
            if result != AppendResult.OK:
                self.stopped = result
                return
            self.written_chars += len(text)
            self.writes += 1

    async def close(self) -> None:
        """Write what is pending and stop. Raises what the writes raised (a Redis error)."""
        self._closing = True
        self._has_pending.set()
        await self._task

    async def abort(self) -> None:
        """Stop without writing what is pending (cancel, fencing)."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    @property
    def finished(self) -> bool:
        """The writer stopped early: refused by Redis (see `stopped`) or failed (`close` raises it)."""
        return self._task.done()
