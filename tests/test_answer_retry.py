"""A retried attempt after reasoning and a partial tool call: the stream's message is exactly the second
attempt's, read whole and across the `reset`. Its own stack, since the test kills a worker."""

import os
import secrets
import signal
from collections.abc import Iterator

import httpx
import pytest
from redis.asyncio import Redis

from cli.processes import ProcessGroup, free_port
from contract.keys import Keys
from contract.redis_client import connect
from tests.conftest import API_KEY, AUTH
from tests.sse_client import SseEvent, assemble_message, read_events, sent_message


@pytest.fixture(scope="module")
def retry_stack() -> Iterator[tuple[ProcessGroup, str, str, str, Keys]]:
    group = ProcessGroup()
    try:
        redis_url = group.start_redis(free_port())
        # Slow enough that the first attempt is still mid-call when its worker is killed, however busy the machine.
        demo_url = group.start_demo(free_port(), delay_ms=150, ttft_ms=0)
        prefix = "retry-" + secrets.token_hex(4)
        group.env.update(
            REDIS_URL=redis_url,
            CHATRELAY_KEY_PREFIX=prefix,
            OPENAI_BASE_URL=demo_url,
            OPENAI_API_KEY="sk-retry-" + secrets.token_hex(8),
            OPENAI_MODEL="chatrelay-demo",
            CHATRELAY_API_KEYS=f"tests:{API_KEY}",
            # A lost worker is noticed within a few seconds, not the default's.
            CHATRELAY_LEASE_TTL_SECONDS="2",
            CHATRELAY_LEASE_RENEW_SECONDS="0.5",
            CHATRELAY_LEASE_CHECK_SECONDS="0.5",
        )
        group.start_worker("retry-worker-1")
        group.start_worker("retry-worker-2")
        api = group.start_api(free_port(), "retry-api")
        yield group, redis_url, demo_url.removesuffix("/v1"), api, Keys(prefix)
    finally:
        group.stop_all()


async def _writer_pid(redis: Redis, keys: Keys, stream_id: str) -> int:
    worker = await redis.hget(keys.meta(stream_id), "worker")  # type: ignore[misc]
    assert worker, "no worker holds the stream"
    return int(worker.decode().split(":")[1])


@pytest.mark.timeout(180)
async def test_retry_after_reasoning_and_a_partial_tool_call_keeps_only_the_second_attempt(
    retry_stack: tuple[ProcessGroup, str, str, str, Keys],
) -> None:
    group, redis_url, demo_url, api, keys = retry_stack
    redis = connect(redis_url)
    try:
        async with httpx.AsyncClient(base_url=api, timeout=60, headers=AUTH) as client:
            body = {
                "messages": [{"role": "user", "content": "weather in Paris?"}],
                "model": "chatrelay-demo?scene=tool_call",
            }
            created = await client.post("/api/streams", json=body)
            assert created.status_code == 202, created.text
            stream_id = created.json()["id"]
            url = f"/api/streams/{stream_id}/events"
            # Read until the first attempt has streamed reasoning and part of its tool call's arguments.
            first: list[SseEvent] = []
            for _ in range(200):
                _, got, _ = await read_events(client, url, last_event_id=first[-1].id if first else None, stop_after=1)
                first += got
                if any(e.event == "tool_call" and e.json["arguments"] for e in first):
                    break
            assert any(e.event == "reasoning" for e in first)
            pid = await _writer_pid(redis, keys, stream_id)
            victim = next(name for name, proc in group.procs.items() if proc.pid == pid)
            os.kill(group.procs[victim].pid, signal.SIGKILL)
            group.procs.pop(victim).wait()

            _, rest, _ = await read_events(client, url, last_event_id=first[-1].id)
            _, whole, _ = await read_events(client, url)
            message = (await client.get(f"/api/streams/{stream_id}/message")).json()
        async with httpx.AsyncClient(base_url=demo_url) as demo:
            records = [r for r in (await demo.get("/_demo/requests")).json() if r["stream_id"] == stream_id]
    finally:
        await redis.aclose()

    assert [e.event for e in rest].count("reset") == 1
    assert rest[-1].event == "done"
    assert len(records) == 2
    partial, second = sent_message(records[0]), sent_message(records[1])
    assert partial["reasoning"]
    assert partial["tool_calls"], "the first attempt had not reached its tool call"
    assert assemble_message(first + rest) == assemble_message(whole) == second
    assert message["attempt"] == 2
    calls = message["message"]["tool_calls"]
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        (c["id"], c["name"], c["arguments"]) for c in second["tool_calls"]
    ]
    assert message["message"]["reasoning"] == second["reasoning"]
