"""Both HTTP transports of the SDK stream an answer exactly and end a dropped upstream with the same error code:
`aiohttp` (the default, which the rest of the suite runs on) and `httpx` (CHATRELAY_UPSTREAM_HTTP_CLIENT)."""

import secrets

import httpx
import pytest

from cli.processes import free_port
from tests.conftest import ADMIN_KEY, AUTH, Stack, upstream_record, wait_until
from tests.sse_client import assemble, read_events

TRICKY = "chatrelay-demo?tokens=120&delay_ms=1&tricky=1"
DROPPED = "chatrelay-demo?tokens=60&delay_ms=1&disconnect_after=30"


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_each_upstream_transport_relays_exactly_and_reports_a_drop(stack: Stack, transport: str) -> None:
    # Its own key prefix, so only this worker serves this API process.
    env = {
        "CHATRELAY_KEY_PREFIX": f"http-{transport}-" + secrets.token_hex(4),
        "CHATRELAY_WORKER_METRICS_PORT": "0",
        "CHATRELAY_UPSTREAM_HTTP_CLIENT": transport,
    }
    stack.group.start_worker(f"worker-{transport}", env)
    api = stack.group.start_api(free_port(), f"api-{transport}", env)
    try:
        async with httpx.AsyncClient(base_url=api, timeout=30, headers=AUTH) as client:
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}

            async def registered() -> bool:
                return bool((await client.get("/api/workers", headers=admin)).json()["workers"])

            await wait_until(registered, f"the {transport} worker registers", within_s=60)
            results = {}
            for model in (TRICKY, DROPPED):
                body = {"messages": [{"role": "user", "content": "x"}], "model": model}
                created = await client.post("/api/streams", json=body)
                stream_id = created.json()["id"]
                _, events, _ = await read_events(client, f"/api/streams/{stream_id}/events")
                results[model] = (stream_id, events)
        stream_id, events = results[TRICKY]
        assert events[-1].event == "done"
        assert assemble(events) == (await upstream_record(stack, stream_id))["sent_text"]
        _, dropped = results[DROPPED]
        assert dropped[-1].event == "error"
        assert dropped[-1].json["code"] == "upstream_disconnected"
    finally:
        stack.group.stop(f"api-{transport}")
        stack.group.stop(f"worker-{transport}")
