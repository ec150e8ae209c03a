"""Adaptive coalescing of what the model streams (text, reasoning, refusal, tool-call fragments) into stream writes.

A fragment goes out at once when no write is in flight; fragments that arrive while a write is in flight go out
together in the next one. A fast model therefore costs one write per write latency, not per token, and a slow
model's tokens are never held back. An optional window (`CHATRELAY_COALESCE_WINDOW_MS`) waits that long before
each write to batch harder. The writes of all writers in the process share round trips (`AppendBatcher`).

Consecutive fragments of one kind (of one tool call) merge into one event; a change of kind starts a new event,
so the stored order of kinds is the upstream's.
"""

import asyncio
import contextlib

from contract.events import encode_reasoning, encode_text, encode_tool_call
from contract.store import AppendResult
from worker.append_batcher import AppendBatcher

TEXT, REASONING, REFUSAL, TOOL_CALL = b"delta", b"reasoning", b"refusal", b"tool_call"
# The meta counter each kind feeds besides `chars` (`contract.store.ANSWER_COUNTERS`).
_COUNTER = {REASONING: "reasoning_chars", REFUSAL: "refusal_chars", TOOL_CALL: "tool_chars"}


class _Run:
    """Fragments of one kind (one tool call) waiting to be written as one event."""

    __slots__ = ("call_id", "field", "index", "kind", "name", "parts")

    def __init__(self, kind: bytes, index: int = 0, call_id: str | None = None, name: str | None = None) -> None:
        self.kind = kind
        self.index = index
        self.call_id = call_id
        self.name = name
        self.field: str | None = None  # reasoning: the upstream's delta field, on the attempt's first run
        self.parts: list[str] = []

    def encode(self) -> tuple[tuple[bytes, bytes], int]:
        """The run's entry and the characters it counts."""
        text = "".join(self.parts)
        if self.kind is TOOL_CALL:
            chars = len(text) + len(self.call_id or "") + len(self.name or "")
            return encode_tool_call(self.index, self.call_id, self.name, text), chars
        if self.field is not None:
            return encode_reasoning(text, self.field), len(text)
        return encode_text(self.kind, text), len(text)


class AnswerWriter:
    def __init__(self, appends: AppendBatcher, stream_id: str, attempt: int, window_ms: float) -> None:
        self._appends = appends
        self._stream_id = stream_id
        self._attempt = attempt
        self._window = window_ms / 1000
        self._pending: list[_Run] = []
        self._has_pending = asyncio.Event()
        self._closing = False
        self._calls_seen: set[int] = set()
        self._reasoning_named = False
        self._task = asyncio.create_task(self._run())
        self.written_chars = 0  # of every kind, as the meta hash's `chars`
        self.writes = 0
        # Set when Redis refused a write: the attempt was fenced off or the stream was cancelled.
        self.stopped: AppendResult | None = None

    def add(self, text: str) -> None:
        """Answer text (`delta.content`)."""
        self.add_text(TEXT, text)

    def add_text(self, kind: bytes, text: str) -> None:
        """Text of a text kind: `TEXT`, `REASONING` or `REFUSAL`."""
        if not text or self.stopped is not None:
            return
        pending = self._pending
        if pending and pending[-1].kind is kind:
            pending[-1].parts.append(text)
        else:
            run = _Run(kind)
            run.parts.append(text)
            pending.append(run)
        self._has_pending.set()

    def add_reasoning(self, text: str, field: str) -> None:
        """Reasoning text, from the delta field `field`; the attempt's first reasoning event records the name."""
        if not text or self.stopped is not None:
            return
        if self._reasoning_named:
            self.add_text(REASONING, text)
            return
        self._reasoning_named = True
        run = _Run(REASONING)
        run.field = field
        run.parts.append(text)
        self._pending.append(run)
        self._has_pending.set()

    def add_tool_call(self, index: int, call_id: str | None, name: str | None, arguments: str) -> None:
        """A `delta.tool_calls[]` fragment; its first one names the call (`id`, `name`)."""
        call_id, name = call_id or None, name or None
        if (call_id is None and name is None and not arguments) or self.stopped is not None:
            return
        pending = self._pending
        last = pending[-1] if pending else None
        if last is not None and last.kind is TOOL_CALL and last.index == index and call_id is None and name is None:
            last.parts.append(arguments)
        else:
            run = _Run(TOOL_CALL, index, call_id, name)
            run.parts.append(arguments)
            pending.append(run)
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
            runs, self._pending = self._pending, []
            entries: list[tuple[bytes, bytes]] = []
            chars = 0
            counts: dict[str, int] = {}
            new_calls: list[int] = []
            for run in runs:
                entry, run_chars = run.encode()
                entries.append(entry)
                chars += run_chars
                counter = _COUNTER.get(run.kind)
                if counter is not None:
                    counts[counter] = counts.get(counter, 0) + run_chars
                if run.kind is TOOL_CALL and run.index not in self._calls_seen and run.index not in new_calls:
                    new_calls.append(run.index)
            if new_calls:
                counts["tool_calls"] = len(new_calls)
            result = await self._appends.append(
                self._stream_id, self._attempt, chars, entries, offset=self.written_chars, counts=tuple(counts.items())
            )
            if result != AppendResult.OK:
                self.stopped = result
                return
            self._calls_seen.update(new_calls)
            self.written_chars += chars
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
