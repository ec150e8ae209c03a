"""Fault scenario 7: another owner gets nothing of a stream, and a share link works until it expires."""

import asyncio
import time
from datetime import datetime

import httpx

from tests.faults.conftest import FaultStack, demo_records, read_to_end
from tests.sse_client import assemble, read_events

SHORT_TTL_S = 3


async def _attempts(stranger: httpx.AsyncClient, stream_id: str) -> list[httpx.Response]:
    """Every way to touch a stream: status, events (from the start and resumed), cancel, share link."""
    base = f"/api/streams/{stream_id}"
    return [
        await stranger.get(base),
        await stranger.get(f"{base}/events"),
        await stranger.get(f"{base}/events", headers={"Last-Event-ID": "0-1"}),
        await stranger.get(f"{base}/events", params={"offset": "0-1"}),
        await stranger.post(f"{base}/cancel", json={}),
        await stranger.post(f"{base}/links", json={}),
    ]


async def test_strangers_get_404_and_share_links_expire(fault_stack: FaultStack) -> None:
    stack = fault_stack
    async with (
        httpx.AsyncClient(base_url=stack.apis["a"], timeout=30) as browser,  # an anonymous session (cookie)
        httpx.AsyncClient(base_url=stack.apis["b"], timeout=30) as other_browser,
        httpx.AsyncClient(base_url=stack.apis["b"], timeout=30) as no_cookie,
        stack.client("b") as key_owner,
    ):
        created = await browser.post(
            "/api/streams",
            json={"messages": [{"role": "user", "content": "x"}], "model": "chatrelay-demo?tokens=300&delay_ms=5"},
        )
        assert created.status_code == 202
        assert browser.cookies.get("chatrelay_session")
        mine = created.json()["id"]
        by_key = (
            await key_owner.post(
                "/api/streams",
                json={"messages": [{"role": "user", "content": "y"}], "model": "chatrelay-demo?tokens=300&delay_ms=5"},
            )
        ).json()["id"]
        # A second browser (its own session), a client with no cookie at all, and an API-key owner, against the
        # session's stream; and the browsers against the key owner's stream. While running, and once finished.
        successes = attempts = 0
        for phase in ("running", "finished"):
            if phase == "finished":
                await read_to_end(browser, mine)
                await read_to_end(key_owner, by_key)
            for stranger, target in (
                (other_browser, mine),
                (no_cookie, mine),
                (key_owner, mine),
                (browser, by_key),
                (other_browser, by_key),
            ):
                for response in await _attempts(stranger, target):
                    attempts += 1
                    successes += response.status_code < 400
                    assert response.status_code == 404, response.text
                    assert response.json()["error"]["code"] == "not_found"
        listed = {
            s["id"] for s in (await other_browser.get("/api/streams", params={"status": "all"})).json()["streams"]
        }
        assert mine not in listed
        assert by_key not in listed
        assert (await browser.get(f"/api/streams/{mine}")).status_code == 200

        # The owner makes two links: one that outlives the checks below, however slowly they run, and a short one
        # whose expiry the test waits out meanwhile. A link expires on a whole second: the short one lives 2-3 s.
        short = (await browser.post(f"/api/streams/{mine}/links", json={"ttl_seconds": SHORT_TTL_S})).json()
        assert (await no_cookie.get(short["status_url"])).status_code == 200
        link = (await browser.post(f"/api/streams/{mine}/links", json={"ttl_seconds": 600})).json()
        # A client with no session reads the stream through the link, exactly.
        status, events, _ = await read_events(no_cookie, link["events_url"])
        assert status == 200
        sent = str((await demo_records(stack, mine))[-1]["sent_text"])
        assert assemble(events) == sent
        shared_status = await no_cookie.get(link["status_url"])
        assert shared_status.status_code == 200
        assert shared_status.json()["owner"] is None
        # Read-only: the token does not cancel, and it opens no other stream.
        assert (await no_cookie.post(f"/api/streams/{mine}/cancel?token={link['token']}", json={})).status_code == 404
        assert (await no_cookie.get(f"/api/streams/{by_key}?token={link['token']}")).status_code == 404
        tampered = link["token"][:-2] + ("AA" if not link["token"].endswith("AA") else "BB")
        assert (await no_cookie.get(f"/api/streams/{mine}?token={tampered}")).status_code == 404
        # Past its expiry by this machine's clock, which is the one the API checks it against.
        expires_at = datetime.fromisoformat(short["expires_at"]).timestamp()
        await asyncio.sleep(max(0.0, expires_at + 0.2 - time.time()))
        expired = await no_cookie.get(short["events_url"])
        assert expired.status_code == 401
        assert expired.json()["error"]["code"] == "link_expired"
    print(
        f"\n[fault 7] {attempts} reads, status checks, cancels and link requests by other owners: "
        f"{successes} succeeded; a share link read the stream exactly; a {SHORT_TTL_S} s one answered, then 401 "
        "link_expired"
    )
    assert successes == 0
