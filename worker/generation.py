"""One generation: call the model with `stream=True` and write its answer into the stream, fenced by attempt.

Outcomes, each ending the stream with exactly one terminal event written atomically with the status:
`done` (the model finished), `error` (the upstream failed; the partial text stays readable), `cancelled`
(a cancel request; the upstream HTTP request is closed at once). A `CancelledError` from outside (arq shutting
down on SIGTERM) writes nothing: arq re-queues the job and the next attempt starts with a `reset`.
"""

import asyncio
import contextlib
import logging
import time
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
import orjson
from redis.exceptions import RedisError

from contract.chat_request import upstream_body
from contract.events import DoneEvent, ErrorEvent, Usage, encode_event
from contract.logs import bind_stream
from contract.metrics import REDIS_ERRORS
from contract.queue import job_id
from contract.settings import Settings
from contract.status import StreamStatus
from contract.store import AppendResult, BeginResult, RenewResult, StreamStore, cancelled_event
from worker.answer_writer import AnswerWriter
from worker.append_batcher import AppendBatcher
from worker.chunks import Answer, StreamedError, take_chunk
from worker.control import CancelListener
from worker.metrics import (
    CANCEL_LATENCY,
    CANCELS,
    GENERATION_DURATION,
    JOBS_RUNNING,
    QUEUE_WAIT,
    TIME_TO_FIRST_TOKEN,
    TOKENS_PER_SECOND,
    UPSTREAM_ERRORS,
)
from worker.upstream import Scrubber, classify_error

log = logging.getLogger("chatrelay.worker")

STREAM_ID_HEADER = "X-Chatrelay-Stream-Id"


@dataclass(frozen=True, slots=True)
class WorkerDeps:
    settings: Settings
    store: StreamStore
    appends: AppendBatcher  # the process's one batcher of stream appends
    client: openai.AsyncOpenAI
    cancels: CancelListener
    scrub: Scrubber
    worker_id: str


async def _consume(
    deps: WorkerDeps, stream_id: str, request: dict[str, Any], model: str, writer: AnswerWriter, answer: Answer
) -> None:
    messages, options = upstream_body(request)
    # The SDK's raw streaming response, parsed here with orjson: building its typed chunk objects (and its
    # stdlib JSON) cost about a third of the worker's CPU per token. The SDK still does the rest: auth, Azure,
    # retries before the stream starts, HTTP status errors. Every option goes as `extra_body`, so it reaches the
    # upstream exactly as the client sent it, whatever this SDK version knows of it.
    # `async with` closes the HTTP response however we leave: the upstream sees the disconnect at once.
    async with deps.client.chat.completions.with_streaming_response.create(
        model=model,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={STREAM_ID_HEADER: stream_id},
        extra_body=options,
    ) as response:
        try:
            async for line in _sse_lines(response.http_response.aiter_bytes()):
                if not line.startswith(b"data:"):
                    continue  # blank separators, comments, `event:` lines
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    break
                if not payload:
                    continue
                try:
                    take_chunk(orjson.loads(payload), writer, answer)
                except StreamedError as exc:
                    raise openai.APIError(message=exc.message, request=response.http_request, body=exc.body) from None
                if writer.finished:
                    return
        except httpx2.TimeoutException as exc:
            raise openai.APITimeoutError(request=response.http_request) from exc
        except httpx2.TransportError as exc:
            raise openai.APIConnectionError(request=response.http_request) from exc
    if answer.finish_reason is None:
        raise openai.APIConnectionError(message="the stream ended without a finish reason", request=None)  # type: ignore[arg-type]


async def _sse_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Lines of an SSE body, split on CR, LF and CRLF only (not `iter_lines`: `str.splitlines` also splits at
    U+2028 and other characters that JSON carries unescaped)."""
    rest = b""
    async for chunk in chunks:
        lines = (rest + chunk).replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line
    if rest:
        yield rest


async def _keep_lease(deps: WorkerDeps, stream_id: str, attempt: int, cancel: asyncio.Event) -> RenewResult:
    """Renew the lease until told to stop; returns early with `fenced` when the attempt lost its stream."""
    settings = deps.settings
    lease_ms = int(settings.lease_ttl_seconds * 1000)
    while True:
        await asyncio.sleep(settings.lease_renew_seconds)
        try:
            result = await deps.store.renew(stream_id, attempt, deps.worker_id, lease_ms)
        except RedisError as exc:
            REDIS_ERRORS.labels("lease_renew").inc()
            log.warning("stream %s: lease renewal failed (%s)", stream_id, type(exc).__name__)
            continue
        if result == RenewResult.CANCEL:
            cancel.set()
        elif result == RenewResult.FENCED:
            return result


_ENDED = ("done", "error", "cancelled", "fenced")


async def generate(deps: WorkerDeps, stream_id: str, attempt: int) -> dict[str, Any]:
    """Run attempt `attempt` of a stream's generation; returns a small summary for arq's result."""
    bind_stream(stream_id)  # this job's task only: every line it logs carries the stream id
    started = time.monotonic()
    JOBS_RUNNING.inc()
    try:
        result = await _generate(deps, stream_id, attempt)
    finally:
        JOBS_RUNNING.dec()
    outcome = result["outcome"]
    if outcome in _ENDED:
        GENERATION_DURATION.labels(outcome).observe(time.monotonic() - started)
    if outcome == "error":
        UPSTREAM_ERRORS.labels(result["code"]).inc()
    if attempt == 1 and outcome in _ENDED:
        # After the answer, not before: a round trip before the upstream call would add to time to first token.
        with contextlib.suppress(RedisError, ValueError):
            meta = deps.store.keys.meta(stream_id)
            created, begun = await deps.store.redis.hmget(meta, ["created_at", "started_at"])  # type: ignore[misc]
            if created and begun:
                QUEUE_WAIT.observe(max(0, int(begun) - int(created)) / 1000)
    return result


async def _generate(deps: WorkerDeps, stream_id: str, attempt: int) -> dict[str, Any]:
    store, settings = deps.store, deps.settings
    request = await store.request(stream_id)
    if request is None:
        return {"outcome": "missing"}
    model = request.get("model") or settings.openai_model
    begun = await store.begin(stream_id, attempt, deps.worker_id, model, int(settings.lease_ttl_seconds * 1000))
    if begun != BeginResult.OK:
        log.info("stream %s attempt %d not started: %s", stream_id, attempt, begun.value)
        return {"outcome": begun.value}
    log.info("stream %s attempt %d started on %s (model %s)", stream_id, attempt, deps.worker_id, model)
    begun_at = time.monotonic()
    # arq keeps a running job in its queue until it ends and re-checks every queued id on every poll (WATCH,
    # EXISTS, ZSCORE, UNWATCH: four round trips per running job every 20 ms, most of the worker's and Redis's
    # CPU at 100 open chats; issue 5). Once begun, the lease decides this attempt's fate, never an arq re-run
    # (the begin script refuses those), so the job leaves the queue now.
    await store.redis.zrem(store.keys.queue, job_id(stream_id, attempt))

    cancel_requested = deps.cancels.register(stream_id)
    writer = AnswerWriter(deps.appends, stream_id, attempt, settings.coalesce_window_ms)
    answer = Answer()
    consume = asyncio.create_task(_consume(deps, stream_id, request, model, writer, answer))
    cancel_wait = asyncio.create_task(cancel_requested.wait())
    lease = asyncio.create_task(_keep_lease(deps, stream_id, attempt, cancel_requested))
    try:
        await asyncio.wait(
            {consume, cancel_wait, lease}, timeout=settings.generation_timeout_seconds, return_when=FIRST_COMPLETED
        )
    except asyncio.CancelledError:
        # arq is shutting down (SIGTERM) or timed the job out: write nothing, hand the lease back so another
        # worker takes the stream over now instead of when the lease expires.
        consume.cancel()
        await writer.abort()
        with contextlib.suppress(RedisError):
            await store.release(stream_id, attempt, deps.worker_id)
        raise
    finally:
        deps.cancels.unregister(stream_id)
        for task in (cancel_wait, lease, consume):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await consume
        with contextlib.suppress(asyncio.CancelledError):
            await lease
    upstream_closed_at, upstream_closed_wall = time.monotonic(), time.time()
    if answer.first_token_at is not None:
        TIME_TO_FIRST_TOKEN.observe(answer.first_token_at - begun_at)

    fenced = lease.done() and not lease.cancelled() and lease.result() == RenewResult.FENCED
    failure = consume.exception() if consume.done() and not consume.cancelled() else None
    timed_out = consume.cancelled() and not cancel_requested.is_set() and not fenced
    if fenced or cancel_requested.is_set() or writer.stopped is not None:
        await writer.abort()  # a cancelled or fenced attempt writes nothing more
    else:
        await writer.close()  # flush what the model sent before it finished or failed

    if fenced or writer.stopped == AppendResult.FENCED:
        log.warning("stream %s attempt %d was fenced off; wrote nothing more", stream_id, attempt)
        return {"outcome": "fenced"}
    if cancel_requested.is_set() or writer.stopped == AppendResult.CANCEL:
        chars = writer.written_chars
        event = cancelled_event(chars, answer.usage, answer.content_chunks)
        await store.finish(stream_id, attempt, StreamStatus.CANCELLED, event, {"chars": chars})
        CANCELS.inc()
        with contextlib.suppress(RedisError, ValueError, TypeError):
            requested_ms = await store.redis.hget(store.keys.meta(stream_id), "cancel_requested_at")  # type: ignore[misc]
            CANCEL_LATENCY.observe(max(0.0, upstream_closed_wall - int(requested_ms) / 1000))
        log.info("stream %s cancelled after %d chars", stream_id, chars)
        return {"outcome": "cancelled", "chars": chars}
    if failure is None and not timed_out:
        usage = Usage.model_validate(answer.usage) if answer.usage else None
        fields: dict[str, bytes | str | int] = {"finish_reason": answer.finish_reason or ""}
        if answer.usage:
            fields["usage"] = orjson.dumps(answer.usage)
        done = encode_event(DoneEvent(finish_reason=answer.finish_reason, usage=usage))
        await store.finish(stream_id, attempt, StreamStatus.DONE, done, fields)
        tokens = (answer.usage or {}).get("completion_tokens") or answer.content_chunks
        if answer.first_token_at is not None and tokens > 1 and upstream_closed_at > answer.first_token_at:
            TOKENS_PER_SECOND.observe((tokens - 1) / (upstream_closed_at - answer.first_token_at))
        log.info("stream %s done: %d chars in %d writes", stream_id, writer.written_chars, writer.writes)
        return {"outcome": "done", "chars": writer.written_chars}

    if failure is None:
        code, message = "generation_timeout", f"the answer took longer than {settings.generation_timeout_seconds:g} s"
    else:
        code, message = classify_error(failure)
    message = deps.scrub(message)
    error = encode_event(ErrorEvent(code=code, message=message))
    await store.finish(
        stream_id, attempt, StreamStatus.ERROR, error, {"error": orjson.dumps({"code": code, "message": message})}
    )
    log.warning("stream %s failed: %s (%s)", stream_id, code, message)
    return {"outcome": "error", "code": code}
