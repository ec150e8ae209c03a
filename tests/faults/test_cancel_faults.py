"""Fault scenario 6: cancel 50 running and 50 queued streams through the API replica that did not create them.
Every running upstream request is closed (time from the cancel request to the upstream seeing the disconnect:
p50, max), no queued stream ever reaches the upstream, and nothing is written after a `cancelled` event."""

import asyncio
import time

import httpx
from redis.asyncio import Redis

from tests.conftest import wait_until
from tests.faults.conftest import FaultStack, demo_records, percentile, read_to_end
from tests.sse_client import assemble

RUNNING = 50  # the fault stack's two workers run 25 jobs each: these fill every slot
QUEUED = 50
LONG = {"messages": [{"role": "user", "content": "x"}], "model": "chatrelay-demo?tokens=5000&delay_ms=10"}


async def _wait_running(client: httpx.AsyncClient, stack: FaultStack, ids: list[str]) -> None:
    """Until every stream is running and its upstream request has sent at least one token."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        statuses = [(await client.get(f"/api/streams/{sid}")).json()["status"] for sid in ids]
        async with httpx.AsyncClient(base_url=stack.demo_url) as demo:
            records = (await demo.get("/_demo/requests")).json()
        sending = {r["stream_id"] for r in records if r["sent_text"]}
        if all(s == "running" for s in statuses) and sending >= set(ids):
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the first 50 streams did not all start")


async def test_cancel_running_and_queued_through_other_replica(fault_stack: FaultStack, fault_redis: Redis) -> None:
    stack = fault_stack
    async with (
        stack.client("b", timeout=60) as b,
        stack.client("a", timeout=60) as a,
    ):
        running = [(await b.post("/api/streams", json=LONG)).json()["id"] for _ in range(RUNNING)]
        await _wait_running(b, stack, running)
        queued = [(await b.post("/api/streams", json=LONG)).json()["id"] for _ in range(QUEUED)]
        assert {(await b.get(f"/api/streams/{sid}")).json()["status"] for sid in queued} == {"queued"}

        async def cancel(sid: str) -> tuple[float, httpx.Response]:
            sent_at = time.time()  # wall clock: the demo upstream stamps its disconnects with time.time() too
            return sent_at, await a.post(f"/api/streams/{sid}/cancel", json={})

        cancels = await asyncio.gather(*(cancel(sid) for sid in running + queued))
        assert {response.status_code for _, response in cancels} == {202}
        events = await asyncio.gather(*(read_to_end(b, sid, deadline_s=30) for sid in running + queued))

        async def upstreams_closed() -> bool:
            async with httpx.AsyncClient(base_url=stack.demo_url) as demo:
                records = (await demo.get("/_demo/requests")).json()
            closed = {r["stream_id"] for r in records if r["client_disconnected"]}
            return closed >= set(running)

        # The workers have let go of every upstream request; a late write from one would land in the second
        # after (a window for something that must not happen, not a stand-in for something that must).
        await wait_until(upstreams_closed, "every running answer's upstream request is closed", within_s=30)
        await asyncio.sleep(1.0)

    close_ms: list[float] = []
    for sid, (sent_at, _), stream_events in zip(running, cancels, events, strict=False):
        (record,) = await demo_records(stack, sid)
        assert record["client_disconnected"] is True, f"{sid}: upstream request not closed"
        assert record["finished"] is False
        close_ms.append((float(str(record["disconnected_at"])) - sent_at) * 1000)
        cancelled = stream_events[-1]
        assert cancelled.event == "cancelled"
        partial = assemble(stream_events)
        assert cancelled.json["chars"] == len(partial)
        assert str(record["sent_text"]).startswith(partial)
        assert cancelled.json["upstream_chunks"] > 0
    queued_reached_upstream = 0
    for sid, stream_events in zip(queued, events[RUNNING:], strict=True):
        assert [e.event for e in stream_events] == ["cancelled"]
        queued_reached_upstream += len(await demo_records(stack, sid))

    written_after_cancel = 0
    for sid in running + queued:
        entries = await fault_redis.xrange(stack.keys.events(sid))
        types = [fields[b"t"] for _, fields in entries]
        written_after_cancel += len(types) - 1 - types.index(b"cancelled")

    print(
        f"\n[fault 6] cancel {RUNNING} running + {QUEUED} queued through the other API replica: time to upstream "
        f"close p50 {percentile(close_ms, 50):.0f} ms, max {max(close_ms):.0f} ms (target 250 ms); queued streams "
        f"that reached the upstream {queued_reached_upstream}; entries written after `cancelled` "
        f"{written_after_cancel}"
    )
    assert queued_reached_upstream == 0
    assert written_after_cancel == 0
    # Correctness bound only (every request closed long before the end of its 50 s answer), loose enough for a
    # loaded machine; the figure to compare with the 250 ms target is the one printed above on a quiet machine.
    assert max(close_ms) < 10_000
