"""Who may read what: browser sessions, API keys, admin keys, CSRF checks, CORS, and the admission limits."""

import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from cli.processes import free_port
from tests.conftest import ADMIN_KEY, API_KEY, AUTH, Stack, create_stream, upstream_record, wait_until
from tests.sse_client import assemble, read_events

CHAT = {"messages": [{"role": "user", "content": "hi"}], "model": "chatrelay-demo?tokens=5&delay_ms=1"}
LONG = {"messages": [{"role": "user", "content": "hi"}], "model": "chatrelay-demo?tokens=2000&delay_ms=20"}
ALLOWED_ORIGIN = "https://app.example"


@dataclass
class ExtraApis:
    strict: str  # keys only, a CORS origin, 2 active streams per owner, SSE responses end after 1 s
    no_worker: str  # a key prefix no worker serves, so answers stay queued; the queue takes 2


@pytest.fixture(scope="module")
def extra(stack: Stack) -> ExtraApis:
    strict = stack.group.start_api(
        free_port(),
        "api-strict",
        {
            "CHATRELAY_ALLOW_ANONYMOUS": "false",
            "CHATRELAY_CORS_ORIGINS": ALLOWED_ORIGIN,
            "CHATRELAY_MAX_ACTIVE_STREAMS_PER_OWNER": "2",
            "CHATRELAY_SSE_MAX_LIFETIME_SECONDS": "1",
        },
    )
    no_worker = stack.group.start_api(
        free_port(),
        "api-queue-limit",
        {"CHATRELAY_KEY_PREFIX": "noworker-" + secrets.token_hex(4), "CHATRELAY_MAX_QUEUE_DEPTH": "2"},
    )
    return ExtraApis(strict, no_worker)


@pytest.fixture
async def browser(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credentials but a cookie jar, as a browser tab."""
    async with httpx.AsyncClient(base_url=stack.api_a, timeout=30) as c:
        yield c


async def test_a_browser_gets_a_signed_session_that_owns_its_streams(browser: httpx.AsyncClient, stack: Stack) -> None:
    created = await browser.post("/api/streams", json=CHAT)
    assert created.status_code == 202
    cookie = created.headers["set-cookie"]
    assert cookie.startswith("chatrelay_session=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/"} <= attributes
    assert "secure" not in attributes  # plain http here
    stream_id = created.json()["id"]
    # The same session reads it through the other API process (replicas share the signing secret).
    async with httpx.AsyncClient(base_url=stack.api_b, timeout=30, cookies=browser.cookies) as same_session_b:
        _, events, _ = await read_events(same_session_b, f"/api/streams/{stream_id}/events")
    assert assemble(events) == (await upstream_record(stack, stream_id))["sent_text"]
    status = (await browser.get(f"/api/streams/{stream_id}")).json()
    assert status["owner"].startswith("session:")
    # A forged cookie is a new session, not the old one.
    session_id = browser.cookies["chatrelay_session"].split(".")[0]
    async with httpx.AsyncClient(
        base_url=stack.api_a, timeout=30, cookies={"chatrelay_session": f"{session_id}.forged"}
    ) as forger:
        response = await forger.get(f"/api/streams/{stream_id}")
        assert response.status_code == 404
        renewed = await forger.post("/api/streams", json=CHAT)
        assert renewed.status_code == 202
        assert renewed.cookies["chatrelay_session"].split(".")[0] != session_id


async def test_the_cookie_is_secure_behind_https(browser: httpx.AsyncClient) -> None:
    # uvicorn trusts X-Forwarded-Proto from 127.0.0.1, as from a TLS-terminating proxy in front of it.
    created = await browser.post("/api/streams", json=CHAT, headers={"X-Forwarded-Proto": "https"})
    assert created.status_code == 202
    assert "secure" in {p.strip().lower() for p in created.headers["set-cookie"].split(";")}


async def test_keys_list_their_own_streams_and_an_admin_key_sees_all(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, stack: Stack
) -> None:
    by_key = await create_stream(client, model="chatrelay-demo?tokens=5&delay_ms=1")
    by_browser = (await browser.post("/api/streams", json=CHAT)).json()["id"]
    key_list = {s["id"] for s in (await client.get("/api/streams", params={"status": "all"})).json()["streams"]}
    browser_list = {s["id"] for s in (await browser.get("/api/streams", params={"status": "all"})).json()["streams"]}
    assert by_key in key_list
    assert by_browser not in key_list
    assert by_browser in browser_list
    assert by_key not in browser_list
    async with httpx.AsyncClient(
        base_url=stack.api_b, timeout=30, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ) as admin:
        admin_list = {s["id"] for s in (await admin.get("/api/streams", params={"status": "all"})).json()["streams"]}
        assert {by_key, by_browser} <= admin_list
        assert (await admin.get(f"/api/streams/{by_browser}")).json()["owner"].startswith("session:")
        assert (await admin.post(f"/api/streams/{by_browser}/cancel", json={})).status_code == 202


async def test_a_wrong_key_is_401_not_anonymous(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_a, headers={"Authorization": "Bearer not-a-key"}) as c:
        response = await c.post("/api/streams", json=CHAT)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_csrf_needs_json_and_an_allowed_origin(client: httpx.AsyncClient, stack: Stack) -> None:
    form = await client.post("/api/streams", content=b"x=1", headers={"Content-Type": "text/plain"})
    assert form.status_code == 415
    assert form.json()["error"]["code"] == "unsupported_media_type"
    no_type = await client.post(f"/api/streams/{await create_stream(client)}/cancel")
    assert no_type.status_code == 415
    foreign = await client.post("/api/streams", json=CHAT, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert foreign.json()["error"]["code"] == "forbidden_origin"
    own = await client.post("/api/streams", json=CHAT, headers={"Origin": stack.api_a})
    assert own.status_code == 202
    # Behind a proxy the browser's origin is the proxy's host, which the proxy passes on.
    proxied = await client.post(
        "/api/streams", json=CHAT, headers={"Origin": "https://chat.example", "X-Forwarded-Host": "chat.example"}
    )
    assert proxied.status_code == 202


async def test_anonymous_use_can_be_switched_off_and_cors_allows_listed_origins(extra: ExtraApis) -> None:
    async with httpx.AsyncClient(base_url=extra.strict, timeout=30) as anonymous:
        refused = await anonymous.post("/api/streams", json=CHAT)
        assert refused.status_code == 401
        assert "API key is required" in refused.json()["error"]["message"]
        preflight = await anonymous.options(
            "/api/streams",
            headers={
                "Origin": ALLOWED_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        assert preflight.headers["access-control-allow-credentials"] == "true"
    async with httpx.AsyncClient(base_url=extra.strict, timeout=30, headers=AUTH) as keyed:
        created = await keyed.post("/api/streams", json=CHAT, headers={"Origin": ALLOWED_ORIGIN})
        assert created.status_code == 202
        assert created.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        assert (
            await keyed.post("/api/streams", json=CHAT, headers={"Origin": "https://evil.example"})
        ).status_code == 403


async def test_active_streams_per_owner_are_limited(extra: ExtraApis) -> None:
    async with httpx.AsyncClient(
        base_url=extra.strict, timeout=30, headers={"Authorization": f"Bearer {API_KEY}"}
    ) as keyed:
        # The limit counts the owner's queued and running streams, whichever replica created them: wait for the
        # short ones earlier tests started to end.
        async def none_active() -> bool:
            return not (await keyed.get("/api/streams")).json()["streams"]

        await wait_until(none_active, "the owner's earlier streams end", within_s=60)
        first = (await keyed.post("/api/streams", json=LONG)).json()["id"]
        second = (await keyed.post("/api/streams", json=LONG)).json()["id"]
        third = await keyed.post("/api/streams", json=LONG)
        assert third.status_code == 429
        assert third.json()["error"]["code"] == "too_many_requests"
        assert int(third.headers["retry-after"]) > 0
        await keyed.post(f"/api/streams/{first}/cancel", json={})

        async def first_cancelled() -> bool:
            return bool((await keyed.get(f"/api/streams/{first}")).json()["status"] == "cancelled")

        await wait_until(first_cancelled, "the first stream is cancelled")
        fourth = await keyed.post("/api/streams", json=LONG)
        assert fourth.status_code == 202
        for sid in (second, fourth.json()["id"]):
            await keyed.post(f"/api/streams/{sid}/cancel", json={})


async def test_sse_responses_end_at_their_maximum_lifetime_and_resume_exactly(extra: ExtraApis, stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=extra.strict, timeout=30, headers=AUTH) as keyed:
        # A 6 s answer: longer than the 1 s lifetime even when a busy machine is slow to cut the response.
        created = await keyed.post("/api/streams", json={**CHAT, "model": "chatrelay-demo?tokens=300&delay_ms=20"})
        stream_id = created.json()["id"]

        async def writing() -> bool:
            return bool((await keyed.get(f"/api/streams/{stream_id}")).json()["chars"] > 0)

        # Read once text is coming, so the response's one second holds deltas however late the worker started.
        await wait_until(writing, "the answer is being written")
        started = time.monotonic()
        status, first, _ = await read_events(keyed, f"/api/streams/{stream_id}/events")
        lasted = time.monotonic() - started
        assert status == 200
        assert first[-1].event == "delta"  # cut at the lifetime, not at the end of the answer
        assert 0.9 < lasted < 5, lasted  # about 1 s; the upper bound is room for a loaded machine
        events = list(first)
        while events[-1].event != "done":
            _, more, _ = await read_events(keyed, f"/api/streams/{stream_id}/events", last_event_id=events[-1].id)
            events += more
    assert assemble(events) == (await upstream_record(stack, stream_id))["sent_text"]


async def test_a_full_queue_is_503_with_retry_after(extra: ExtraApis) -> None:
    async with httpx.AsyncClient(base_url=extra.no_worker, timeout=30, headers=AUTH) as keyed:
        assert (await keyed.post("/api/streams", json=CHAT)).status_code == 202
        assert (await keyed.post("/api/streams", json=CHAT)).status_code == 202
        full = await keyed.post("/api/streams", json=CHAT)
    assert full.status_code == 503
    assert full.json()["error"]["code"] == "queue_full"
    assert int(full.headers["retry-after"]) > 0
