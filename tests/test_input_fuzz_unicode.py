"""Fuzzing with what Schemathesis never generates: strings that are not valid Unicode (lone surrogates as JSON
escapes, raw bytes that are not UTF-8), out-of-range numbers and NaN, put anywhere in a valid chat request.
Every answer is a 4xx with a JSON error body, or a 202 for a body that stayed valid; never a 500."""

import random
from typing import Any

import httpx
import orjson

_BAD_STRINGS = [b'"\\ud800"', b'"a\\udfffb"', b'"\xed\xa0\x80"', b'"\xff\xfe"', b'"\xc3"', b'"ok\\udbff"']
_BAD_NUMBERS = [b"123456789012345678901234567890", b"-1e400", b"NaN", b"Infinity", b"1e999"]


def _valid_body(rng: random.Random) -> dict[str, Any]:
    return {
        "model": "chatrelay-demo?tokens=2&delay_ms=0",
        "messages": [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        ],
        "metadata": {"k": "v"},
        "stop": ["x"],
        "temperature": rng.choice([0.1, 1]),
        "extra_body": {"top_k": 3, "nested": {"a": ["b"]}},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    }


def _mutate(rng: random.Random) -> bytes:
    """A valid body serialized, with one string or number (or a key) replaced by a bad one."""
    raw = orjson.dumps(_valid_body(rng))
    spots = [i for i in range(len(raw)) if raw[i : i + 1] == b'"']
    starts = spots[0::2]
    if rng.random() < 0.7:
        i = rng.randrange(len(starts))
        start, end = starts[i], spots[2 * i + 1] + 1
        return raw[:start] + rng.choice(_BAD_STRINGS) + raw[end:]
    marker = b'"temperature":'
    at = raw.index(marker) + len(marker)
    end = raw.index(b",", at)
    return raw[:at] + rng.choice(_BAD_NUMBERS) + raw[end:]


async def test_invalid_text_and_numbers_anywhere_get_a_4xx(client: httpx.AsyncClient) -> None:
    rng = random.Random(2026)
    statuses: dict[int, int] = {}
    for _ in range(300):
        body = _mutate(rng)
        response = await client.post("/api/streams", content=body, headers={"Content-Type": "application/json"})
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code in (202, 400, 422), (body, response.text)
        if response.status_code != 202:
            assert response.json()["error"]["message"], body
        else:
            # Only a body whose mutation left it valid may be accepted: what was stored encodes as UTF-8.
            stream_id = response.json()["id"]
            assert (await client.post(f"/api/streams/{stream_id}/cancel")).status_code == 202
    print(f"\n[fuzz] 300 mutated bodies: {statuses}")
    assert statuses.get(422, 0) + statuses.get(400, 0) > 200
