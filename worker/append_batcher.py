"""One Redis round trip for the stream appends of every generation in the worker process (issue 5).

Each `AnswerWriter` coalesces its own tokens; this does the same across streams. An append requested while no
batch is in flight goes out at once (one event-loop iteration later, so the appends requested in the same
iteration go together); the appends requested while a batch is in flight go together in the next one, as one
pipeline of append scripts. 100 answers at 30 tokens/s then cost one round trip per write latency instead of
3,000 a second. There is deliberately no timer: under light load a batch holds one append and waits for nothing.
A batch holds at most one append per running generation (`max_jobs`).

Per-stream order holds because a writer waits for its append before it asks for the next one. Each caller gets
its own result: an append whose script failed raises in its caller only, a connection error in every caller of
that batch.
"""

import asyncio
from collections.abc import Sequence

from contract.store import Append, AppendResult, StreamStore
from worker.metrics import APPEND_BATCH_SIZE

_Queued = tuple[Append, "asyncio.Future[AppendResult]"]


class AppendBatcher:
    def __init__(self, store: StreamStore) -> None:
        self._store = store
        self._queued: list[_Queued] = []
        self._task: asyncio.Task[None] | None = None

    async def append(
        self,
        stream_id: str,
        attempt: int,
        chars: int,
        entries: Sequence[tuple[bytes, bytes]],
        offset: int = -1,
        counts: Sequence[tuple[str, int]] = (),
    ) -> AppendResult:
        """`StreamStore.append`, sent with the other appends of its batch."""
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        self._queued.append((Append(stream_id, attempt, chars, entries, offset, counts), future))
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="append-batcher")
        try:
            return await future
        except asyncio.CancelledError:
            # Cancelled just as its batch answered: mark an error as seen, or asyncio logs it as never retrieved.
            if future.done() and not future.cancelled():
                future.exception()
            raise

    async def _run(self) -> None:
        try:
            while self._queued:
                # An append whose caller was cancelled before its batch left (an aborted writer) is not sent.
                batch = [(append, future) for append, future in self._queued if not future.done()]
                self._queued = []
                if batch:
                    await self._send(batch)
        finally:
            self._task = None
            for _, future in self._queued:  # only when this task itself was cancelled (the loop is closing)
                future.cancel()
            self._queued = []

    async def _send(self, batch: list[_Queued]) -> None:
        APPEND_BATCH_SIZE.observe(len(batch))
        results: Sequence[AppendResult | Exception]
        try:
            results = await self._store.append_many([append for append, _ in batch])
        except Exception as exc:
            results = [exc] * len(batch)
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue  # its caller was cancelled while the batch was in flight; the others still get theirs
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
