"""Fault scenario 4: Redis restarts mid-answer (append-only persistence on). While it is down the API refuses new
work with `503` and `Retry-After` and `readyz` fails; no process crashes; every stream ends exact or with an
explicit `error`; the service carries on without restarts."""

import asyncio
import time

from tests.faults.conftest import FaultStack, demo_records, read_to_end
from tests.sse_client import assemble, read_events

DOWN_S = 5.0
CHAT = {"messages": [{"role": "user", "content": "x"}]}


async def test_redis_restart_mid_answer(fault_stack: FaultStack) -> None:
    stack = fault_stack
    async with stack.client("b", timeout=60) as b:
        ids = []
        for i in range(20):
            created = await b.post("/api/streams", json={**CHAT, "model": f"chatrelay-demo?tokens=300&seed={i}"})
            ids.append(created.json()["id"])
        readers = [asyncio.create_task(read_to_end(b, sid, deadline_s=90)) for sid in ids]
        # One more reader of the first stream that does not resume on its own: what a client sees.
        held = asyncio.create_task(read_events(b, f"/api/streams/{ids[0]}/events"))
        await asyncio.sleep(1.0)

        stack.stop_redis()
        down_at = time.monotonic()
        await asyncio.sleep(0.5)
        refused = await b.post("/api/streams", json=CHAT)
        not_ready = [(await b.get(f"{url}/readyz")).status_code for url in stack.apis.values()]
        await asyncio.sleep(DOWN_S - (time.monotonic() - down_at))
        stack.start_redis()
        back_at = time.monotonic()

        # Recovered: both API processes ready and a new answer streams end to end.
        while True:
            ready = [(await b.get(f"{url}/readyz")).status_code for url in stack.apis.values()]
            if ready == [200, 200]:
                break
            await asyncio.sleep(0.1)
        probe = await b.post("/api/streams", json={**CHAT, "model": "chatrelay-demo?tokens=5&delay_ms=1"})
        probe_events = await read_to_end(b, probe.json()["id"], deadline_s=30)
        recovered_in = time.monotonic() - back_at
        results = await asyncio.gather(*readers)
        ended_at = time.monotonic()
        _, held_events, _ = await held
        held_rest = await read_to_end(b, ids[0], deadline_s=30, after=held_events[-1].id)

    # The held response ended with a retryable error that carries no id of its own; resuming from the last
    # real event gives the rest, exact.
    assert held_events[-1].event == "error"
    assert held_events[-1].json["code"] == "redis_unavailable"
    assert held_events[-1].json["retryable"] is True
    assert held_events[-1].id == held_events[-2].id
    assert assemble(held_events[:-1] + held_rest) == (await demo_records(stack, ids[0]))[-1]["sent_text"]

    exact = errors = 0
    for sid, events in zip(ids, results, strict=True):
        if events[-1].event == "error":
            errors += 1
        elif assemble(events) == (await demo_records(stack, sid))[-1]["sent_text"]:
            exact += 1
    crashed = [name for name, proc in stack.group.procs.items() if proc.poll() is not None]
    print(
        f"\n[fault 4] Redis down {DOWN_S:.1f} s mid-answer: POST during outage -> {refused.status_code} "
        f"(Retry-After {refused.headers.get('retry-after')}), readyz {not_ready}; 20 streams exact {exact}, "
        f"explicit error {errors}; recovered (both APIs ready and a new answer streamed) {recovered_in:.2f} s after "
        f"Redis was back; all 20 streams ended {ended_at - back_at:.2f} s after; crashed processes {len(crashed)}"
    )
    assert crashed == [], "\n".join(f"--- {name}\n{stack.group.log_text(name)[-3000:]}" for name in crashed)
    assert refused.status_code == 503
    assert refused.headers.get("retry-after")
    assert refused.json()["error"]["code"] == "unavailable"
    assert not_ready == [503, 503]
    assert exact + errors == 20
    assert probe_events[-1].event == "done"
