"""Fault scenario 4: Redis restarts mid-answer (append-only persistence on). While it is down the API refuses new
work with `503` and `Retry-After` and `readyz` fails; no process crashes; every stream ends exact or with an
explicit `error`; the service carries on without restarts."""

import asyncio
import time

from tests.conftest import wait_until
from tests.faults.conftest import FaultStack, before_any_ends, demo_records, read_to_end
from tests.sse_client import SseEvent, assemble, read_events

DOWN_S = 5.0
CHAT = {"messages": [{"role": "user", "content": "x"}]}
# About 7.5 s an answer: still streaming when Redis goes down, however long getting 20 of them going took.
ANSWER = "chatrelay-demo?tokens=300&delay_ms=25"


async def test_redis_restart_mid_answer(fault_stack: FaultStack) -> None:
    stack = fault_stack
    async with stack.client("b", timeout=60) as b:
        ids = []
        for i in range(20):
            created = await b.post("/api/streams", json={**CHAT, "model": f"{ANSWER}&seed={i}"})
            ids.append(created.json()["id"])
        readers = [asyncio.create_task(read_to_end(b, sid, deadline_s=90)) for sid in ids]
        # One more reader of the first stream that does not resume on its own: what a client sees.
        held_has_text = asyncio.Event()

        def held_seen(event: SseEvent) -> None:
            if event.event == "delta":
                held_has_text.set()

        held = asyncio.create_task(read_events(b, f"/api/streams/{ids[0]}/events", on_event=held_seen))

        async def every_answer_has_text() -> bool:
            statuses = [(await b.get(f"/api/streams/{sid}")).json() for sid in ids]
            finished = [s["id"] for s in statuses if s["status"] not in ("queued", "running")]
            assert not finished, f"answers ended before Redis went down, so not mid-answer: {finished}"
            return all(s["chars"] > 0 for s in statuses)

        # Mid-answer: every answer has text stored and the held reader has seen some, however long that took.
        await wait_until(every_answer_has_text, "every answer has text stored", within_s=60)
        await before_any_ends(held_has_text, [held], lambda: "the held reader has no text yet", within_s=60)

        stack.stop_redis()
        down_at = time.monotonic()

        not_ready: list[int] = []

        async def both_not_ready() -> bool:
            not_ready[:] = [(await b.get(f"{url}/readyz")).status_code for url in stack.apis.values()]
            return not_ready == [503, 503]

        await wait_until(both_not_ready, "both API processes report Redis down on /readyz", within_s=10)
        refused = await b.post("/api/streams", json=CHAT)
        await asyncio.sleep(DOWN_S - (time.monotonic() - down_at))  # the outage itself: its length is the scenario
        stack.start_redis()
        back_at = time.monotonic()

        # Recovered: both API processes ready and a new answer streams end to end.
        async def both_ready() -> bool:
            return [(await b.get(f"{url}/readyz")).status_code for url in stack.apis.values()] == [200, 200]

        await wait_until(both_ready, "both API processes ready again after Redis came back", within_s=60)
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
    assert exact + errors == 20
    assert probe_events[-1].event == "done"
