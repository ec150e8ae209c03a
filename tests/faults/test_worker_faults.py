"""Fault scenarios 2 and 3: workers killed with SIGKILL or paused with SIGSTOP mid-answer.

Result that must hold: every stream ends with the exact text of one upstream response (the deltas after the
last `reset`), or with an explicit `error`; never spliced text, never a stream left `running`.
"""

import asyncio
import signal
import time

import pytest
from redis.asyncio import Redis

from tests.conftest import wait_until
from tests.faults.conftest import FaultStack, demo_records, percentile, read_to_end
from tests.sse_client import assemble

TOKENS = 150
MISSES_PER_POINT = 3


async def _wait_for_progress(redis: Redis, stack: FaultStack, stream_id: str, chars: int) -> int | None:
    """Wait until the stream has `chars` characters; returns the pid of the worker writing it, or None when the
    answer ended before this poll saw it get there (a busy machine can miss a point near the end)."""
    meta_key = stack.keys.meta(stream_id)

    async def reached() -> bool:
        status, written, worker = await redis.hmget(meta_key, ["status", "chars", "worker"])  # type: ignore[misc]
        progress[:] = [status, written, worker]
        return status not in (None, b"queued", b"running") or (
            status == b"running" and bool(worker) and int(written or 0) >= chars
        )

    progress: list[bytes | None] = []
    await wait_until(reached, f"stream {stream_id} reaches {chars} characters", within_s=60, poll_s=0.005)
    status, _, worker = progress
    if status != b"running" or worker is None:
        return None
    return int(worker.decode().split(":")[1])


async def _time_to_reset(redis: Redis, stack: FaultStack, stream_id: str, killed_at: float) -> float:
    key = stack.keys.events(stream_id)
    last = b"0-0"
    while True:
        reply = await redis.xread({key: last}, block=1000)
        for _key, entries in reply or []:
            for entry_id, fields in entries:
                last = entry_id
                if fields[b"t"] in (b"reset", b"error", b"done", b"cancelled"):
                    return time.monotonic() - killed_at
        if time.monotonic() - killed_at > 60:
            raise AssertionError("no reset within 60 s of the kill")


@pytest.mark.timeout(900)
async def test_kill_9_worker_at_first_token_middle_and_end(fault_stack: FaultStack, fault_redis: Redis) -> None:
    stack, redis = fault_stack, fault_redis
    outcomes: dict[str, int] = {"exact": 0, "error": 0, "wrong": 0}
    reset_times: list[float] = []
    missed = 0
    async with stack.client("a", timeout=30) as client:
        for point, fraction in (("first token", 0.0), ("middle", 0.5), ("end", 0.95)) * 10:
            for _ in range(MISSES_PER_POINT + 1):
                model = f"chatrelay-demo?tokens={TOKENS}&delay_ms=8&seed={len(reset_times)}"
                created = await client.post(
                    "/api/streams", json={"messages": [{"role": "user", "content": point}], "model": model}
                )
                stream_id = created.json()["id"]
                # Expected length from a first complete read is unknown until the end; the demo's tokens
                # average about 6 characters, so aim by characters written.
                pid = await _wait_for_progress(redis, stack, stream_id, max(1, int(fraction * TOKENS * 5)))
                if pid is not None:
                    break
                missed += 1  # the answer ended first: no kill point in it, so another answer takes its place
            assert pid is not None, f"{MISSES_PER_POINT + 1} answers in a row ended before the {point} was seen"
            victim = stack.worker_by_pid(pid)
            assert victim is not None, f"no worker with pid {pid}"
            reader = asyncio.create_task(read_to_end(client, stream_id))
            stack.kill_worker(victim)
            killed_at = time.monotonic()
            stack.start_worker()  # keep two workers
            reset_times.append(await _time_to_reset(redis, stack, stream_id, killed_at))
            events = await reader
            records = await demo_records(stack, stream_id)
            if events[-1].event == "error":
                outcomes["error"] += 1
            elif events[-1].event == "done" and assemble(events) == records[-1]["sent_text"]:
                outcomes["exact"] += 1
            else:
                outcomes["wrong"] += 1
    print(
        f"\n[fault 2] kill -9 x{len(reset_times)}: exact {outcomes['exact']}, explicit error {outcomes['error']}, "
        f"wrong {outcomes['wrong']}; kill->reset p50 {percentile(reset_times, 50):.2f} s, "
        f"max {max(reset_times):.2f} s; answers that ended before their kill point was seen (replaced) {missed}"
    )
    assert outcomes["wrong"] == 0
    # About 5-7 s with the default lease timings (5 s TTL, checked every 2 s). The 15 s target is read off the
    # printed figure of a run on a quiet machine (the README's reliability table); this bound is one that a loaded
    # machine meets, and still fails a takeover that does not happen.
    assert max(reset_times) <= 30


@pytest.mark.timeout(300)
async def test_sigstop_worker_until_takeover_then_sigcont_writes_nothing(
    fault_stack: FaultStack, fault_redis: Redis
) -> None:
    stack, redis = fault_stack, fault_redis
    async with stack.client("b", timeout=30) as client:
        created = await client.post(
            "/api/streams",
            json={"messages": [{"role": "user", "content": "pause"}], "model": "chatrelay-demo?tokens=300&delay_ms=8"},
        )
        stream_id = created.json()["id"]
        pid = await _wait_for_progress(redis, stack, stream_id, 200)
        assert pid is not None, "the answer ended before a third of it was seen"
        victim = stack.worker_by_pid(pid)
        assert victim is not None
        stack.kill_worker(victim, signal.SIGSTOP)
        paused_at = time.monotonic()
        waited = await _time_to_reset(redis, stack, stream_id, paused_at)

        async def second_attempt_writing() -> bool:
            status, attempt, chars = await redis.hmget(meta_key, ["status", "attempt", "chars"])  # type: ignore[misc]
            return status == b"running" and attempt == b"2" and int(chars or 0) > 0

        # Once the new attempt writes, wake the old one up: it still holds buffered upstream tokens.
        meta_key = stack.keys.meta(stream_id)
        await wait_until(second_attempt_writing, "the second attempt writes text", within_s=60)
        log_before = len(stack.group.log_text(victim))
        stack.kill_worker(victim, signal.SIGCONT)
        events = await read_to_end(client, stream_id)

        async def woken_worker_fenced() -> bool:
            woken = stack.group.log_text(victim)[log_before:]
            return any(stream_id in line and "fenced off" in line for line in woken.splitlines())

        # Its stale writes have been tried (and refused) once it says so.
        await wait_until(woken_worker_fenced, "the woken worker logs that it was fenced off", within_s=60)

    entries = await redis.xrange(stack.keys.events(stream_id))
    types = [fields[b"t"].decode() for _, fields in entries]
    reset_at = types.index("reset")
    between = types[reset_at + 1 : types.index("start", reset_at)]
    after_end = types[types.index(events[-1].event, reset_at) + 1 :]
    stale = [t for t in between + after_end if t == "delta"]
    records = await demo_records(stack, stream_id)
    print(f"\n[fault 3] SIGSTOP until takeover ({waited:.2f} s), then SIGCONT: stale writes accepted {len(stale)}")
    assert stale == []
    assert events[-1].event == "done"
    assert assemble(events) == records[-1]["sent_text"]
    assert len(records) == 2
    stack.kill_worker(victim, signal.SIGKILL)
    stack.start_worker()
