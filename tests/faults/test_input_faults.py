"""Fault scenario 8: Schemathesis against the OpenAPI schema, and hand-made malformed input, all answered 4xx."""

import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import API_KEY
from tests.faults.conftest import FaultStack

ST = Path(sys.executable).parent / "st"


@pytest.mark.timeout(240)
def test_schemathesis_finds_no_server_error(fault_stack: FaultStack, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(ST),
            "--no-color",
            "run",
            f"{fault_stack.apis['a']}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {API_KEY}",
            "--header",
            "Content-Type: application/json",
            "--max-examples",
            "15",
            "--seed",
            "8",
            "--generation-database",
            "none",
            "--request-timeout",
            "10",
            "--max-time",
            "45",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    lines = output.splitlines()
    # The summary's "Test cases:" line is followed by e.g. "3619 generated, 0 found ..." .
    cases = next((lines[i + 1].strip() for i, line in enumerate(lines[:-1]) if line.strip() == "Test cases:"), "?")
    print(f"\n[fault 8] schemathesis, every operation, check not_a_server_error: {cases}; exit {result.returncode}")
    assert result.returncode == 0, output[-4000:]


async def test_malformed_input_is_a_clear_4xx(fault_stack: FaultStack) -> None:
    stream_id = ""
    async with fault_stack.client("a", timeout=60) as client:
        created = await client.post(
            "/api/streams",
            json={"messages": [{"role": "user", "content": "x"}], "model": "chatrelay-demo?tokens=3&delay_ms=0"},
        )
        stream_id = created.json()["id"]
        json_header = {"Content-Type": "application/json"}
        one = {"role": "user", "content": "x"}
        cases: dict[str, httpx.Response] = {
            "malformed JSON": await client.post("/api/streams", content=b'{"messages": [', headers=json_header),
            "wrong types": await client.post("/api/streams", json={"messages": "hello", "temperature": "hot"}),
            "a JSON array": await client.post("/api/streams", json=[one]),
            "10 MB body": await client.post("/api/streams", content=b" " * 10_000_000, headers=json_header),
            "100,000 messages": await client.post(
                "/api/streams", content=orjson.dumps({"messages": [one] * 100_000}), headers=json_header
            ),
            "form content type": await client.post(
                "/api/streams", content=b"messages=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
            ),
            "foreign Origin": await client.post(
                "/api/streams", json={"messages": [one]}, headers={"Origin": "https://evil.example"}
            ),
            "bad Last-Event-ID": await client.get(
                f"/api/streams/{stream_id}/events",
                headers={b"Last-Event-ID": "not-an-id\u00e9".encode()},
            ),
            "huge ?offset=": await client.get(f"/api/streams/{stream_id}/events", params={"offset": "9" * 100_00}),
            "offset past the end": await client.get(
                f"/api/streams/{stream_id}/events", params={"offset": "99999999999999-0"}
            ),
            "huge ?limit=": await client.get("/api/streams", params={"limit": "9" * 400}),
            "bad API key": await client.get("/api/streams", headers={"Authorization": "Bearer nope"}),
        }
    rows = []
    for name, response in cases.items():
        body = response.json()
        rows.append(f"{name}: {response.status_code} {body['error']['code']}")
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text[:300])
        assert body["error"]["message"], name
    print("\n[fault 8] malformed input: " + "; ".join(rows))
