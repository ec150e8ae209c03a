"""Prometheus metrics after a known workload: the API's `/metrics` and the worker's own port count what was done.

Counters are per process and the stack is shared by every test, so each test waits until nothing is queued or
running, scrapes, runs its workload and compares the differences (summed over both API processes).
"""

import secrets
import signal

import httpx
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from cli.processes import free_port
from tests.conftest import AUTH, Stack, create_stream, wait_until
from tests.sse_client import read_events

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 when there are none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def wait_idle(redis: Redis, stack: Stack) -> None:
    """Streams other tests left running end first, so they do not count in our differences."""

    async def idle() -> bool:
        worker = await scrape(stack.worker_metrics)
        return await redis.zcard(stack.keys.active) == 0 and value(worker, "chatrelay_jobs_running") == 0

    await wait_until(idle, "nothing queued or running", within_s=60)


async def status_of(client: httpx.AsyncClient, stream_id: str) -> dict[str, object]:
    response = await client.get(f"/api/streams/{stream_id}")
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


async def test_metrics_count_a_known_workload(
    client: httpx.AsyncClient, client_b: httpx.AsyncClient, stack: Stack, redis: Redis
) -> None:
    await wait_idle(redis, stack)
    apis = (f"{stack.api_a}/metrics", f"{stack.api_b}/metrics")
    before_api = [await scrape(url) for url in apis]
    before_worker = await scrape(stack.worker_metrics)
    status_polls = 0

    # Three answers read whole, one read in two halves (resumed on the other API process), one error: six reads.
    whole = [await create_stream(client, model=f"chatrelay-demo?tokens=30&delay_ms=2&seed={i}") for i in range(3)]
    received = 0
    for stream_id in whole:
        _, events, _ = await read_events(client, f"/api/streams/{stream_id}/events")
        assert events[-1].event == "done"
        received += len(events)
    resumed = await create_stream(client, model="chatrelay-demo?tokens=80&delay_ms=5")
    _, first, _ = await read_events(client, f"/api/streams/{resumed}/events", stop_after=5)

    async def has_status(stream_id: str, status: str, with_text: bool = False) -> bool:
        # Every poll is a request the route's histogram counts, checked below.
        nonlocal status_polls
        status_polls += 1
        info = await status_of(client, stream_id)
        return info["status"] == status and (not with_text or (isinstance(info["chars"], int) and info["chars"] > 0))

    # Resumed once it has ended, so the rest is all replayed from storage.
    await wait_until(lambda: has_status(resumed, "done"), "the resumed answer ends", poll_s=0.02)
    _, rest, _ = await read_events(client_b, f"/api/streams/{resumed}/events", last_event_id=first[-1].id)
    assert rest[-1].event == "done"
    failed = await create_stream(client, model="chatrelay-demo?status=400")
    _, events, _ = await read_events(client, f"/api/streams/{failed}/events")
    assert events[-1].json["code"] == "upstream_rejected"

    # One cancelled while its answer streams, through the other API process.
    cancelled = await create_stream(client, model="chatrelay-demo?tokens=3000&delay_ms=5")
    await wait_until(lambda: has_status(cancelled, "running", with_text=True), "the answer streams", poll_s=0.02)
    response = await client_b.post(f"/api/streams/{cancelled}/cancel", json={})
    assert response.json()["status"] == "requested"
    await wait_until(lambda: has_status(cancelled, "cancelled"), "the answer is cancelled", poll_s=0.02)
    await wait_idle(redis, stack)

    async def api_delta(name: str, **labels: str) -> float:
        after = [await scrape(url) for url in apis]
        return sum(value(a, name, **labels) - value(b, name, **labels) for a, b in zip(after, before_api, strict=True))

    async def connections_closed() -> bool:
        return await api_delta("chatrelay_sse_connections") == 0 and await api_delta("chatrelay_sse_ended_total") == 6

    await wait_until(connections_closed, "every SSE connection of the workload counted as ended")
    assert await api_delta("chatrelay_sse_ended_total", reason="terminal") == 5
    assert await api_delta("chatrelay_sse_ended_total", reason="closed") == 1  # the half read dropped mid-answer
    assert await api_delta("chatrelay_sse_resumes_total") == 1
    assert await api_delta("chatrelay_sse_events_total", source="replay") >= len(rest)
    # Live events reach waiting connections straight from the shared reader (`api.direct_write`).
    assert await api_delta("chatrelay_sse_events_total", source="direct") > 0
    # The dropped read may have been sent a few events it did not read; the others were read to the end.
    received += len(first) + len(rest) + len(events)
    assert received <= await api_delta("chatrelay_sse_events_total") <= received + 80
    assert await api_delta("chatrelay_cancel_requests_total", result="requested") == 1
    assert await api_delta("chatrelay_hub_lag_seconds_count") > 0
    route = "/api/streams/{stream_id}"
    assert await api_delta("chatrelay_http_request_duration_seconds_count", method="GET", route=route) == status_polls
    assert await api_delta("chatrelay_http_request_duration_seconds_count", method="POST", route="/api/streams") == 6
    after_api = await scrape(apis[0])
    assert not [labels for (name, labels) in after_api if name.startswith("chatrelay_http") and "events" in str(labels)]

    after = await scrape(stack.worker_metrics)

    def worker_delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before_worker, name, **labels)

    assert worker_delta("chatrelay_generation_duration_seconds_count", outcome="done") == 4
    assert worker_delta("chatrelay_generation_duration_seconds_count", outcome="error") == 1
    assert worker_delta("chatrelay_generation_duration_seconds_count", outcome="cancelled") == 1
    assert worker_delta("chatrelay_upstream_errors_total", code="upstream_rejected") == 1
    assert worker_delta("chatrelay_upstream_errors_total") == 1
    assert worker_delta("chatrelay_time_to_first_token_seconds_count") == 5  # the rejected one had no token
    assert worker_delta("chatrelay_tokens_per_second_count") == 4
    assert worker_delta("chatrelay_queue_wait_seconds_count") == 6
    assert worker_delta("chatrelay_cancels_total") == 1
    assert worker_delta("chatrelay_cancel_latency_seconds_count") == 1
    # Closed long before the 15 s answer's end, even on a loaded machine; fault scenario 6 prints the figure to
    # hold against the 250 ms target.
    assert 0 < worker_delta("chatrelay_cancel_latency_seconds_sum") < 10.0
    assert value(after, "chatrelay_jobs_running") == 0


async def test_metrics_queue_depth_and_streams_by_status(stack: Stack) -> None:
    # An API process on a key prefix no worker serves: its streams stay queued.
    url = stack.group.start_api(free_port(), "api-metrics-queued", {"CHATRELAY_KEY_PREFIX": "mq-" + stack.keys.prefix})
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10, headers=AUTH) as lonely:
            ids = [await create_stream(lonely, model="chatrelay-demo?tokens=5") for _ in range(3)]
            samples = await scrape(f"{url}/metrics")
            assert value(samples, "chatrelay_queue_depth") == 3
            assert value(samples, "chatrelay_streams", status="queued") == 3
            assert value(samples, "chatrelay_streams", status="running") == 0
            for stream_id in ids:
                assert (await lonely.post(f"/api/streams/{stream_id}/cancel", json={})).json()["status"] == "cancelled"
            samples = await scrape(f"{url}/metrics")
            assert value(samples, "chatrelay_streams", status="queued") == 0
            assert value(samples, "chatrelay_cancel_requests_total", result="cancelled") == 3
            # The route is served but not documented.
            assert "/metrics" not in (await lonely.get("/openapi.json")).json()["paths"]
    finally:
        stack.group.stop("api-metrics-queued")


async def test_metrics_count_a_lost_worker_and_its_retry(stack: Stack) -> None:
    # A worker and an API process of their own, with short leases, so the worker can be killed.
    env = {
        "CHATRELAY_KEY_PREFIX": "lost-" + secrets.token_hex(4),
        "CHATRELAY_LEASE_TTL_SECONDS": "1",
        "CHATRELAY_LEASE_RENEW_SECONDS": "0.2",
        "CHATRELAY_LEASE_CHECK_SECONDS": "0.2",
    }
    metrics_port = free_port()
    stack.group.start_worker("worker-lost", {**env, "CHATRELAY_WORKER_METRICS_PORT": str(metrics_port)})
    url = stack.group.start_api(free_port(), "api-lost", env)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10, headers=AUTH) as api:
            stream_id = await create_stream(api, model="chatrelay-demo?tokens=3000&delay_ms=5")

            async def running() -> bool:
                info = await status_of(api, stream_id)
                return info["status"] == "running" and isinstance(info["chars"], int) and info["chars"] > 0

            await wait_until(running, "the answer streams")
            worker = await scrape(f"http://127.0.0.1:{metrics_port}/metrics")
            assert value(worker, "chatrelay_jobs_running") == 1
            stack.group.stop("worker-lost", signal.SIGKILL)

            async def taken_over() -> bool:
                samples = await scrape(f"{url}/metrics")
                return value(samples, "chatrelay_lease_takeovers_total", outcome="retry") == 1

            await wait_until(taken_over, "the lost worker's stream is taken over")
            info = await status_of(api, stream_id)
            assert (info["status"], info["attempt"]) == ("queued", 2)
            samples = await scrape(f"{url}/metrics")
            assert value(samples, "chatrelay_lease_takeovers_total") == 1
            assert value(samples, "chatrelay_queue_depth") == 1
            await api.post(f"/api/streams/{stream_id}/cancel", json={})
    finally:
        stack.group.stop("worker-lost", signal.SIGKILL)
        stack.group.stop("api-lost")
