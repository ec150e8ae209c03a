"""`python -m bench --quick` end to end, as CI's smoke test of the benchmark: it runs the three designs (chatrelay,
the naive app, the peer `resumable-stream`), every answer equals the upstream text, and the results hold every
figure the issues ask for. No timing assertions: the figures depend on the machine."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli.processes import ROOT


@pytest.mark.timeout(600)
def test_bench_quick_run_is_exact_and_reports_every_figure(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=580,  # about 100 s on an idle 2-core machine; 9 minutes seen on a shared one (load average 15)
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((tmp_path / "quick.json").read_text())
    assert result["void"] is False
    assert result["mismatches"] == 0
    for design in ("chatrelay", "naive", "peer"):
        points = result["sweep"]["points"][design]
        headline = next(p for p in points if p["target_concurrency"] == 100)
        # chatrelay answers every chat; the designs it is compared with may fail some on a busy machine (the
        # naive app under load, the peer's 1 s resume wait): their errors are figures of the table, not a fault.
        if design == "chatrelay":
            assert headline["errors"] == 0, headline["examples_of_errors"]
        assert headline["errors"] < headline["chats"], headline["examples_of_errors"]
        assert headline["added_latency_ms"]["n"] > 0
        assert {"p50", "p99", "max"} <= set(headline["added_latency_ms"])
        assert {"enqueue", "queue_wait", "worker_start", "first_relay", "overhead"} <= set(headline["ttft_ms"])
        assert headline["cpu_us_per_token"]["demo"] > 0
        assert "largest_k" in result["sweep"]["largest_k"][design]
        assert result["idle_sse"][design]["connections"] > 0
    reasoning = result["reasoning_profile"]
    assert reasoning["errors"] == 0, reasoning["examples_of_errors"]
    assert reasoning["added_latency_ms"]["n"] > 0
    assert reasoning["cpu_us_per_token"]["api"] > 0
    chatrelay = next(p for p in result["sweep"]["points"]["chatrelay"] if p["target_concurrency"] == 100)
    assert {"api", "worker-1", "redis"} <= set(chatrelay["cpu_us_per_token"])
    assert chatrelay["redis_commands"]["per_chat"] > 0
    assert result["steady_streaming"]["chatrelay"]["cpu_us_per_token"]["api"] > 0
    assert result["steady_streaming"]["naive"]["tokens_in_window"] > 0
    peer = next(p for p in result["sweep"]["points"]["peer"] if p["target_concurrency"] == 100)
    assert {"peer", "redis"} <= set(peer["cpu_us_per_token"])
    assert set(peer["redis_commands"]["by_command_per_chat"]) <= {"incr", "set", "get", "subscribe", "unsubscribe"}
    steady_peer = result["steady_streaming"]["peer"]
    assert steady_peer["exact"] > 0
    assert steady_peer["exact"] + steady_peer["failed"] == steady_peer["chats"]
    assert steady_peer["cpu_us_per_token"]["peer"] > 0
    assert result["peer"]["answer"]["exact"] is True
    assert result["peer"]["answer"]["resume_after_done_status"] == 422  # the library keeps no finished answer
    assert set(result["peer"]["resume"]) == {"start", "middle", "end", "wrong_first_events"}
    assert result["peer"]["resume"]["wrong_first_events"] == 0
    # A storm client may fail (the library's 1 s wait for the producer's answer), never get wrong text.
    peer_storm = result["peer"]["storm"]
    assert peer_storm["exact"] > 0
    assert peer_storm["exact"] + peer_storm["failed"] == peer_storm["clients"]
    assert result["idle_sse"]["peer"]["open_at_measurement"] == result["idle_sse"]["peer"]["connections"]
    memory = result["redis_memory_per_chat"]
    assert memory["exact"] is True
    assert memory["bytes"] > 0
    assert set(result["resume"]) == {"start", "middle", "end"}
    assert result["storm"]["exact"] == result["storm"]["clients"]
    assert result["idle_sse"]["chatrelay"]["ended_with_cancelled"] == result["idle_sse"]["chatrelay"]["connections"]
    for surface in ("chatrelay-responses", "chatrelay-ui-stream"):
        load, steady = result["surfaces"][surface]["load"], result["surfaces"][surface]["steady_streaming"]
        assert load["errors"] == 0, load["examples_of_errors"]
        assert load["added_latency_ms"]["n"] > 0
        assert load["cpu_us_per_token"]["api"] > 0
        assert steady["exact"] == steady["chats"]
        assert steady["cpu_us_per_token"]["api"] > 0
    table = (tmp_path / "quick.md").read_text()
    assert "chatrelay-responses: API CPU per token, steady streaming" in table
    assert "| figure | target | chatrelay | peer (resumable-stream) | naive | ÷ peer | ÷ naive | met? |" in table
    assert (tmp_path / "quick_latency_vs_k.png").stat().st_size > 0
