"""The `chatrelay` command line against the real stack: it reads Redis directly (REDIS_URL and the key prefix)."""

import asyncio
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis

from cli.dev import sdk_snippet
from contract.keys import Keys
from contract.status import StreamStatus
from contract.store import NewStream, StreamStore
from tests.conftest import API_KEY, Stack, create_stream, upstream_record
from tests.sse_client import assemble, read_events

CHATRELAY = str(Path(sys.executable).parent / "chatrelay")


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return orjson.loads(self.out)


async def chatrelay(stack: Stack, *args: str, env: dict[str, str] | None = None) -> Run:
    proc = await asyncio.create_subprocess_exec(
        CHATRELAY,
        *args,
        env={**stack.group.env, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


def _model(extra: str = "tokens=5") -> str:
    """A model name no other test uses, so `--model` isolates this test's streams."""
    return f"chatrelay-demo?{extra}&seed={secrets.randbelow(10**9)}"


async def test_streams_lists_with_filters_as_table_and_json(client: httpx.AsyncClient, stack: Stack) -> None:
    model = _model()
    ids = [await create_stream(client, model=model) for _ in range(3)]
    for stream_id in ids:
        await read_events(client, f"/api/streams/{stream_id}/events")

    listed = await chatrelay(stack, "streams", "--model", model, "--json")
    assert listed.code == 0, listed.err
    assert [s["id"] for s in listed.json["streams"]] == list(reversed(ids))
    assert all(s["status"] == "done" and s["chars"] > 0 for s in listed.json["streams"])
    assert listed.json["next_cursor"] is None

    first = await chatrelay(stack, "streams", "--model", model, "--limit", "2", "--json")
    assert [s["id"] for s in first.json["streams"]] == [ids[2], ids[1]]
    rest = await chatrelay(stack, "streams", "--model", model, "--cursor", first.json["next_cursor"], "--json")
    assert [s["id"] for s in rest.json["streams"]] == [ids[0]]

    mine = await chatrelay(stack, "streams", "--model", model, "--owner", "key:tests", "--max-age", "10m", "--json")
    assert len(mine.json["streams"]) == 3
    for args in (["--status", "running"], ["--owner", "someone-else"]):
        none = await chatrelay(stack, "streams", "--model", model, *args, "--json")
        assert none.json["streams"] == [], args

    table = await chatrelay(stack, "streams", "--model", model)
    assert table.code == 0
    header, *rows = table.out.splitlines()
    assert header.split()[:4] == ["ID", "STATUS", "MODEL", "CREATED"]
    assert [row.split()[0] for row in rows] == list(reversed(ids))
    assert all(row.split()[1] == "done" for row in rows)
    paged = await chatrelay(stack, "streams", "--model", model, "--limit", "1")
    assert paged.out.splitlines()[-1].startswith("more: chatrelay streams --cursor ")
    assert paged.out.splitlines()[-1].endswith(f":{ids[2]}")


async def test_show_prints_the_status_json_and_a_readable_view(client: httpx.AsyncClient, stack: Stack) -> None:
    stream_id = await create_stream(client, model=_model("tokens=12"))
    await read_events(client, f"/api/streams/{stream_id}/events")
    api = (await client.get(f"/api/streams/{stream_id}")).json()

    shown = await chatrelay(stack, "show", stream_id, "--json")
    assert shown.code == 0, shown.err
    assert shown.json == api
    assert shown.json["first_token_at"] is not None
    assert api["created_at"] <= shown.json["first_token_at"] <= api["finished_at"]

    readable = await chatrelay(stack, "show", stream_id)
    status_part, _, message_part = readable.out.partition("\n\n")
    skip = ("first", "finish", "tool")
    lines = dict(line.split(None, 1) for line in status_part.splitlines() if not line.startswith(skip))
    assert lines["status"] == "done"
    assert lines["chars"].split()[0] == str(api["chars"])
    assert message_part == "[answer]\n" + (await upstream_record(stack, stream_id))["sent_text"] + "\n"
    assert f"{api['usage']['prompt_tokens']} prompt + 12 completion" in readable.out

    missing = await chatrelay(stack, "show", "no-such-stream")
    assert missing.code == 1
    assert "no stream with id" in missing.err


async def test_tail_follows_live_text_exactly(client: httpx.AsyncClient, stack: Stack) -> None:
    # About 1.5 s of answer: tail starts while it is queued or running and follows it live.
    stream_id = await create_stream(client, model="chatrelay-demo?tokens=80&delay_ms=20")
    tailed = await chatrelay(stack, "tail", stream_id)
    sent = (await upstream_record(stack, stream_id))["sent_text"]
    assert tailed.code == 0, tailed.err
    assert tailed.out == sent  # piped: the text only, byte for byte
    assert "[done: stop]" in tailed.err
    assert "80 tokens" in tailed.err  # the exact count from the usage the upstream reported


async def test_tail_and_show_print_reasoning_and_tool_calls_apart(client: httpx.AsyncClient, stack: Stack) -> None:
    stream_id = await create_stream(client, model=_model("scene=parallel_tools&delay_ms=5"))
    tailed = await chatrelay(stack, "tail", stream_id)
    record = await upstream_record(stack, stream_id)
    weather, clock = record["sent_tool_calls"]
    calls = (
        f"[tool call] {weather['name']}({weather['arguments']})\n\n[tool call] {clock['name']}({clock['arguments']})"
    )
    assert tailed.code == 0, tailed.err
    assert tailed.out == f"[reasoning]\n{record['sent_reasoning']}\n\n[answer]\n{record['sent_text']}\n\n{calls}"
    shown = await chatrelay(stack, "show", stream_id)
    assert shown.code == 0, shown.err
    assert calls.replace(")\n\n", f")  id {weather['id']}\n\n", 1) in shown.out
    assert f"[reasoning]\n{record['sent_reasoning']}\n" in shown.out
    assert shown.out.endswith(f"[answer]\n{record['sent_text']}\n")


async def test_tail_from_an_offset_as_json_and_with_progress(client: httpx.AsyncClient, stack: Stack) -> None:
    stream_id = await create_stream(client, model="chatrelay-demo?tokens=40&delay_ms=2")
    _, events, _ = await read_events(client, f"/api/streams/{stream_id}/events")
    sent = (await upstream_record(stack, stream_id))["sent_text"]
    assert assemble(events) == sent
    cut = next(i for i, e in enumerate(events) if e.event == "delta")
    offset = events[cut].id
    assert offset is not None

    rest = await chatrelay(stack, "tail", stream_id, "--offset", offset)
    assert rest.code == 0, rest.err
    assert rest.out == sent.removeprefix(events[cut].json["text"])

    lines = [orjson.loads(line) for line in (await chatrelay(stack, "tail", stream_id, "--json")).out.splitlines()]
    assert [(line["id"], line["type"]) for line in lines] == [(e.id, e.event) for e in events]
    assert "".join(line["data"]["text"] for line in lines if line["type"] == "delta") == sent
    assert lines[-1]["data"]["finish_reason"] == "stop"

    drawn = await chatrelay(stack, "tail", stream_id, "--progress")
    assert "40 tokens" in drawn.out
    assert "tokens/s" in drawn.out
    assert "elapsed" in drawn.out
    assert "\x1b7" in drawn.out  # drawn below the text with the terminal's save/restore cursor

    ended = await chatrelay(stack, "tail", stream_id, "--offset", events[-1].id or "")
    assert ended.code == 0
    assert "nothing follows" in ended.err
    gone = await chatrelay(stack, "tail", stream_id, "--offset", "1-0")
    assert gone.code == 1
    assert (await chatrelay(stack, "tail", "no-such-stream")).code == 1


async def test_tail_says_when_an_attempt_starts_over(stack: Stack, redis: Redis) -> None:
    # A retried attempt, written through the store as a worker and a lease takeover would, under a prefix of
    # its own that no worker serves.
    keys = Keys(f"{stack.keys.prefix}-tail-{secrets.token_hex(3)}")
    store = StreamStore(redis, keys, ttl_seconds=600)
    sid = secrets.token_urlsafe(16)
    await store.create(NewStream(stream_id=sid, request_json=b"{}", model="m", created_at_ms=int(time.time() * 1000)))
    assert await store.begin(sid, 1, "w1", "m", lease_ms=1) == "ok"
    await store.append(sid, 1, 5, [(b"delta", b'{"text":"lost "}')])
    await asyncio.sleep(0.01)  # the 1 ms lease expires
    assert (await store.takeover(sid, max_attempts=2))[0] == "retry"
    assert await store.begin(sid, 2, "w2", "m", lease_ms=60_000) == "ok"
    await store.append(sid, 2, 5, [(b"delta", b'{"text":"kept."}')])
    await store.finish(sid, 2, StreamStatus.DONE, (b"done", b'{"finish_reason":"stop","usage":null}'))

    env = {"CHATRELAY_KEY_PREFIX": keys.prefix}
    tailed = await chatrelay(stack, "tail", sid, env=env)
    assert tailed.code == 0, tailed.err
    assert "reset: attempt 2 starts over" in tailed.err
    assert tailed.out == "lost kept."  # piped text cannot be taken back: stderr says where it starts over
    as_json = await chatrelay(stack, "tail", sid, "--json", env=env)
    types = [orjson.loads(line)["type"] for line in as_json.out.splitlines()]
    assert types == ["start", "delta", "reset", "start", "delta", "done"]
    drawn = await chatrelay(stack, "tail", sid, "--progress", env=env)
    assert "reset: attempt 2 starts over" in drawn.out


async def test_cancel_has_the_api_semantics(client: httpx.AsyncClient, stack: Stack) -> None:
    stream_id = await create_stream(client, model="chatrelay-demo?tokens=2000&delay_ms=5")
    await read_events(client, f"/api/streams/{stream_id}/events", stop_after=3)
    first = await chatrelay(stack, "cancel", stream_id, "--json")
    assert first.code == 0, first.err
    assert first.json == {"id": stream_id, "status": "requested"}
    _, events, _ = await read_events(client, f"/api/streams/{stream_id}/events")
    assert events[-1].event == "cancelled"
    again = await chatrelay(stack, "cancel", stream_id)
    assert again.code == 0
    assert again.out.strip() == f"{stream_id}: cancelled"  # idempotent: the final status
    assert (await upstream_record(stack, stream_id))["client_disconnected"] is True

    missing = await chatrelay(stack, "cancel", "no-such-stream", "--json")
    assert missing.code == 1
    assert "no stream with id" in missing.err


async def test_cancel_of_a_queued_stream_ends_it_at_once(stack: Stack, redis: Redis) -> None:
    keys = Keys(f"{stack.keys.prefix}-cancel-{secrets.token_hex(3)}")  # no worker serves it: it stays queued
    sid = "-" + secrets.token_urlsafe(16)[1:]  # one id in 64 starts with "-", which must not read as an option
    new = NewStream(stream_id=sid, request_json=b"{}", model="m", created_at_ms=int(time.time() * 1000))
    await StreamStore(redis, keys, ttl_seconds=600).create(new)
    env = {"CHATRELAY_KEY_PREFIX": keys.prefix}
    cancelled = await chatrelay(stack, "cancel", sid, env=env)
    assert cancelled.code == 0, cancelled.err
    assert cancelled.out.strip() == f"{sid}: cancelled"
    shown = await chatrelay(stack, "show", sid, "--json", env=env)
    assert shown.json["status"] == "cancelled"


async def test_workers_lists_the_stack_worker(stack: Stack) -> None:
    pid = stack.group.procs["worker-1"].pid
    listed = await chatrelay(stack, "workers", "--json")
    assert listed.code == 0, listed.err
    [worker] = [w for w in listed.json["workers"] if w["pid"] == pid]
    assert worker["id"].startswith(f"{worker['host']}:{pid}:")
    assert {"jobs_running", "jobs_done", "started_at", "last_heartbeat_at"} <= set(worker)
    table = await chatrelay(stack, "workers")
    assert table.out.splitlines()[0].split() == ["ID", "HOST", "PID", "UP", "HEARTBEAT", "RUNNING", "DONE"]
    assert any(line.split()[0] == worker["id"] for line in table.out.splitlines()[1:])
    empty = await chatrelay(stack, "workers", env={"CHATRELAY_KEY_PREFIX": "nobody-" + secrets.token_hex(3)})
    assert empty.out.strip() == "no live workers"


async def test_stats_counts_what_ended_and_time_to_first_token(client: httpx.AsyncClient, stack: Stack) -> None:
    before = (await chatrelay(stack, "stats", "--json")).json
    done = [await create_stream(client, model=_model()) for _ in range(3)]
    failed = await create_stream(client, model="chatrelay-demo?status=429")
    for stream_id in [*done, failed]:
        await read_events(client, f"/api/streams/{stream_id}/events")

    after = await chatrelay(stack, "stats", "--json")
    assert after.code == 0, after.err
    stats = after.json
    assert stats["done"] >= before["done"] + 3
    assert stats["error"] >= before["error"] + 1
    assert stats["errors_by_code"]["rate_limited"] >= 1
    assert stats["ttft_ms"]["count"] >= before["ttft_ms"]["count"] + 3
    assert 0 <= stats["ttft_ms"]["p50"] <= stats["ttft_ms"]["p90"] <= stats["ttft_ms"]["max"] < 10_000
    assert stats["workers"] >= 1
    assert stats["window_seconds"] == 3600
    assert isinstance(stats["queue_depth"], int)
    assert stats["running"] >= 0

    table = await chatrelay(stack, "stats", "--window", "10m")
    assert table.code == 0
    assert "ended, last 10m " in table.out
    assert "time to first token" in table.out
    assert "p50" in table.out


async def test_cli_help_and_dev_still_parse(stack: Stack) -> None:
    helped = await chatrelay(stack, "--help")
    for command in ("dev", "streams", "show", "tail", "cancel", "workers", "stats"):
        assert command in helped.out
    assert (await chatrelay(stack, "dev", "--help")).code == 0
    bad = await chatrelay(stack, "streams", "--cursor", "nonsense")
    assert bad.code == 2
    assert "cursor" in bad.err
    unreachable = await chatrelay(stack, "stats", env={"REDIS_URL": "redis://:hunter2@127.0.0.1:1/0"})
    assert unreachable.code == 1
    assert "hunter2" not in unreachable.err


def test_dev_prints_an_sdk_snippet_that_works(stack: Stack) -> None:
    """What `chatrelay dev` prints for OpenAI SDKs runs as it is, against a running service."""
    code = sdk_snippet(stack.api_a, API_KEY, "chatrelay-demo?echo=1&delay_ms=1")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "Hello!\n"
