"""Fault scenarios 9 and 10: one owner opening 2,000 idle SSE connections is capped while another owner's answer
streams as usual; a reader that stops reading is dropped after the send timeout and its resources released."""

import asyncio
import contextlib
import itertools
import socket
import statistics
import time
from urllib.parse import urlsplit

import httpx
import psutil
from redis.asyncio import Redis

from tests.conftest import API_KEY, wait_until
from tests.faults.conftest import FaultStack, demo_records, read_to_end
from tests.sse_client import assemble, iter_sse

IDLE = 2000
CAP = 500  # CHATRELAY_MAX_SSE_CONNECTIONS_PER_OWNER of the fault stack


async def _raw_get(
    api: str, path: str, rcvbuf: int | None = None
) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a connection and send a GET as the API-key owner; (status, reader, writer) once the status line is in."""
    url = urlsplit(api)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: it sets the TCP window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (url.hostname, url.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {API_KEY}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    status_line = await reader.readline()
    return int(status_line.split()[1]), reader, writer


async def _timed_answer(client: httpx.AsyncClient) -> tuple[float, float, bool]:
    """(time to first token, median gap between deltas, exact) of one 100-token answer read live."""
    started = time.monotonic()
    created = await client.post(
        "/api/streams",
        json={"messages": [{"role": "user", "content": "x"}], "model": "chatrelay-demo?tokens=100&delay_ms=10"},
    )
    stream_id = created.json()["id"]
    arrivals: list[float] = []
    text: list[str] = []
    async with client.stream("GET", f"/api/streams/{stream_id}/events") as response:
        async for item in iter_sse(response):
            if isinstance(item, str):
                continue
            if item.event == "delta":
                arrivals.append(time.monotonic())
                text.append(item.json["text"])
            if item.event in ("done", "error", "cancelled"):
                break
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    exact = "".join(text) == str((await demo_records(FaultStack_of[client], stream_id))[-1]["sent_text"])
    return arrivals[0] - started, statistics.median(gaps), exact


FaultStack_of: dict[httpx.AsyncClient, FaultStack] = {}


async def test_idle_connections_of_one_owner_are_capped(fault_stack: FaultStack, fault_redis: Redis) -> None:
    stack = fault_stack
    api = stack.apis["a"]
    async with stack.client("a") as owner, httpx.AsyncClient(base_url=api, timeout=60) as other_owner:
        FaultStack_of[other_owner] = stack
        # A stream that stays open and silent: the upstream stalls after one token.
        created = await owner.post(
            "/api/streams",
            json={"messages": [{"role": "user", "content": "x"}], "model": "chatrelay-demo?tokens=50&stall_after=1"},
        )
        idle_id = created.json()["id"]
        baseline = await _timed_answer(other_owner)

        results = await asyncio.gather(
            *(_raw_get(api, f"/api/streams/{idle_id}/events") for _ in range(IDLE)), return_exceptions=True
        )
        opened = [r for r in results if isinstance(r, tuple)]
        accepted = sum(1 for status, _, _ in opened if status == 200)
        refused = sum(1 for status, _, _ in opened if status == 429)
        failed = len(results) - len(opened)
        held = await fault_redis.zcard(stack.keys.owner_sse("key:faults"))
        loaded = await _timed_answer(other_owner)
        for _, _, writer in opened:
            writer.close()

        async def slots_released() -> bool:
            return int(await fault_redis.zcard(stack.keys.owner_sse("key:faults"))) == 0

        released_in = await wait_until(slots_released, "the closed connections give their slots back", within_s=30)
        await owner.post(f"/api/streams/{idle_id}/cancel", json={})
    print(
        f"\n[fault 9] {IDLE} idle SSE connections from one owner: {accepted} accepted, {refused} refused with 429, "
        f"{failed} failed; slots held {held}, all released {released_in:.2f} s after closing. Another owner's "
        f"100-token answer: first token {baseline[0] * 1000:.0f} ms before / {loaded[0] * 1000:.0f} ms during, "
        f"median token gap {baseline[1] * 1000:.1f} ms before / {loaded[1] * 1000:.1f} ms during"
    )
    assert accepted == CAP
    assert refused == IDLE - CAP
    assert failed == 0
    assert held == CAP
    assert baseline[2]
    assert loaded[2]
    # "Normal latency": the demo upstream sends a token every 10 ms; the answer keeps that pace.
    assert loaded[1] < 0.05


def _api_pid(stack: FaultStack, api: str) -> int:
    port = urlsplit(stack.apis[api]).port
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return conn.pid
    raise AssertionError(f"no process listens on {stack.apis[api]}")


def _still_open(api_process: psutil.Process, ports: set[int]) -> int:
    """How many of the connections from these client ports the API process still holds."""
    return sum(1 for c in api_process.net_connections("tcp") if c.raddr and c.raddr.port in ports)


async def test_a_reader_that_stops_reading_is_dropped(fault_stack: FaultStack, fault_redis: Redis) -> None:
    stack = fault_stack
    api_process = psutil.Process(_api_pid(stack, "a"))
    async with stack.client("a") as owner:
        created = await owner.post(
            "/api/streams",
            json={"messages": [{"role": "user", "content": "x"}], "model": "chatrelay-demo?tokens=80000&delay_ms=0"},
        )
        big_id = created.json()["id"]
        events = await read_to_end(owner, big_id, deadline_s=120)
        size = sum(len(e.data) for e in events)
        rss_before = api_process.memory_info().rss
        slots = stack.keys.owner_sse("key:faults")

        # Replay the whole answer to readers whose sockets take almost nothing and that never read.
        started = time.monotonic()
        stalled = [await _raw_get(stack.apis["a"], f"/api/streams/{big_id}/events", rcvbuf=4096) for _ in range(10)]
        assert all(status == 200 for status, _, _ in stalled)
        peak_rss = api_process.memory_info().rss
        ports = {writer.get_extra_info("sockname")[1] for _, _, writer in stalled}

        # Dropped: the API holds none of the connections any more and has given back their slots. (The relay
        # may finish first, the whole answer handed to the connection's buffers; the last send then waits.)
        dropped_after = None
        while time.monotonic() - started < 60:
            if not _still_open(api_process, ports) and await fault_redis.zcard(slots) == 0:
                dropped_after = time.monotonic() - started
                break
            peak_rss = max(peak_rss, api_process.memory_info().rss)
            await asyncio.sleep(0.1)
        rss_after = api_process.memory_info().rss
        # What each stalled reader can still read is what the kernel had buffered: then the connection ends (closed
        # or reset by the server), short of the answer's end.
        truncated = 0
        for _, reader, writer in stalled:
            received = b""
            with contextlib.suppress(ConnectionResetError):
                while chunk := await asyncio.wait_for(reader.read(1 << 20), 5):
                    received += chunk
            truncated += b"event: done" not in received
            writer.close()
        # The API still serves: the same answer, read normally, is exact.
        again = await read_to_end(owner, big_id, deadline_s=60)
        assert assemble(again) == assemble(events)
    print(
        f"\n[fault 10] 10 readers of a {size / 1e6:.1f} MB answer that never read: dropped "
        f"{dropped_after if dropped_after is None else round(dropped_after, 1)} s after the request "
        "(send timeout 2 s), "
        f"cut short {truncated}/10; API RSS {rss_before / 2**20:.0f} MiB before, "
        f"{peak_rss / 2**20:.0f} MiB peak, {rss_after / 2**20:.0f} MiB after"
    )
    assert dropped_after is not None
    assert truncated >= 1


async def test_a_live_reader_that_stops_reading_is_dropped_without_slowing_others(
    fault_stack: FaultStack, fault_redis: Redis
) -> None:
    # Live events reach a waiting connection straight from the hub (`api.direct_write`); once a reader's buffers
    # are full, the connection's own task takes over with the send timeout. Readers that stop reading mid-answer
    # are dropped while the answer still streams, and a reader of the same answer gets it exactly.
    stack = fault_stack
    api_process = psutil.Process(_api_pid(stack, "a"))
    async with stack.client("a") as owner:
        created = await owner.post(
            "/api/streams",
            json={"messages": [{"role": "user", "content": "x"}], "model": "chatrelay-demo?tokens=20000&delay_ms=1"},
        )
        stream_id = created.json()["id"]
        path = f"/api/streams/{stream_id}/events"
        started = time.monotonic()
        stalled = [await _raw_get(stack.apis["a"], path, rcvbuf=4096) for _ in range(5)]
        assert all(status == 200 for status, _, _ in stalled)
        ports = {writer.get_extra_info("sockname")[1] for _, _, writer in stalled}
        reading = asyncio.create_task(read_to_end(owner, stream_id, deadline_s=120))

        dropped_after = None
        while not reading.done():
            if not _still_open(api_process, ports):
                dropped_after = time.monotonic() - started
                break
            await asyncio.sleep(0.1)
        events = await reading
        answer_s = time.monotonic() - started
        for _, _, writer in stalled:
            writer.close()
        [record] = await demo_records(stack, stream_id)
        sent = record["sent_text"]
    print(
        "\n[fault 10b] 5 live readers that stop reading mid-answer: dropped "
        f"{dropped_after and round(dropped_after, 1)} s "
        f"after they connected, while the {answer_s:.1f} s answer streamed on; the reader alongside got it exact: "
        f"{assemble(events) == sent}"
    )
    assert dropped_after is not None, "the stalled readers were still connected when the answer ended"
    assert assemble(events) == sent
    assert await fault_redis.zcard(stack.keys.owner_sse("key:faults")) == 0
