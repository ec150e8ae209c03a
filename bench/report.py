"""The run's results as JSON, a Markdown table (figure, target, chatrelay, the peer, naive, ratios, met?) and a
plot."""

from pathlib import Path
from typing import Any

from bench.load import CHATRELAY, DESIGNS, NAIVE, PEER
from bench.probes import dumps
from bench.run import HEADLINE_K, P99_LIMIT_MS

Row = tuple[str, str, str, str, str, str, str, str]
Cells = tuple[str, str, str]
# The table's columns; the two ratios are chatrelay's figure over the peer's and over the naive app's.
HEADER = ("figure", "target", CHATRELAY, "peer (resumable-stream)", NAIVE, "÷ peer", "÷ naive", "met?")


def _point(result: dict[str, Any], design: str, k: int = HEADLINE_K) -> dict[str, Any]:
    for point in result["sweep"]["points"].get(design, []):
        if point["target_concurrency"] == k:
            return dict(point)
    return {}


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _ratio(c: float | None, n: float | None) -> str:
    return "—" if c is None or n is None or n == 0 else f"{c / n:.2f}"


def _met(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


def _nums(values: "tuple[float | None, float | None, float | None] | list[float | None]", digits: int = 1) -> Cells:
    """chatrelay's, the peer's and the naive app's figure, formatted."""
    c, p, n = values
    return _num(c, digits), _num(p, digits), _num(n, digits)


def _row(figure: str, target: str, c: str, p: str, n: str, cp: str = "—", cn: str = "—", met: str = "—") -> Row:
    return (figure, target, c, p, n, cp, cn, met)


def _cpu(cpu: dict[str, float]) -> tuple[str, float | None]:
    """One design's CPU per token by process, and its total over its server processes."""
    if not cpu:
        return "—", None
    workers = sum(v for name, v in cpu.items() if name.startswith("worker"))
    if "api" in cpu:
        total = cpu["api"] + workers + cpu.get("redis", 0)
        return (
            f"API {_num(cpu['api'])}, worker {_num(workers)}, Redis {_num(cpu.get('redis'))}; total {_num(total)}",
            total,
        )
    if "peer" in cpu:
        total = cpu["peer"] + cpu.get("redis", 0)
        return f"Node {_num(cpu['peer'])}, Redis {_num(cpu.get('redis'))}; total {_num(total)}", total
    return _num(cpu.get("naive")), cpu.get("naive")


def rows(result: dict[str, Any]) -> list[Row]:
    c, p, n = _point(result, CHATRELAY), _point(result, PEER), _point(result, NAIVE)
    out: list[Row] = []
    for q, limit in (("p50", 2.0), ("p99", 10.0), ("max", None)):
        cv, pv, nv = (d.get("added_latency_ms", {}).get(q) for d in (c, p, n))
        # Issue 15: ahead of the peer too on the tail.
        rivals = [nv, pv] if q == "p99" else [nv]
        target = "—" if limit is None else f"≤ {limit:g} and ≤ naive" + (", peer" if q == "p99" else "")
        ok = None if limit is None or cv is None or None in rivals else cv <= limit and all(cv <= r for r in rivals)
        out.append(
            _row(
                f"added latency per token {q}, K={HEADLINE_K} x 30 tok/s (ms)",
                target,
                *_nums((cv, pv, nv), 2),
                _ratio(cv, pv),
                _ratio(cv, nv),
                _met(ok),
            )
        )
    ct, pt, nt = (d.get("ttft_ms", {}) for d in (c, p, n))
    co, po, no = (t.get("overhead", {}).get("p50") for t in (ct, pt, nt))
    ok = None if co is None or no is None else co - no <= 25
    out.append(
        _row(
            "TTFT overhead p50 (ms): time to first token minus the model's own",
            "≤ naive + 25",
            *_nums((co, po, no)),
            _ratio(co, po),
            _ratio(co, no),
            _met(ok),
        )
    )
    for stage, label in (
        ("enqueue", "POST → 202"),
        ("queue_wait", "202 → worker began"),
        ("worker_start", "worker began → upstream request"),
        ("first_relay", "upstream emit → client"),
    ):
        cv, pv, nv = (t.get(stage, {}).get("p50") for t in (ct, pt, nt))
        target = "≤ 20" if stage == "queue_wait" else "—"
        ok = None if stage != "queue_wait" or cv is None else cv <= 20
        out.append(_row(f"  TTFT stage p50: {stage} ({label}) (ms)", target, *_nums((cv, pv, nv)), "—", "—", _met(ok)))
    lk = result["sweep"]["largest_k"]
    ck, pk, nk = (lk.get(d, {}).get("largest_k") for d in (CHATRELAY, PEER, NAIVE))
    out.append(
        _row(
            f"largest K with p99 added latency ≤ {P99_LIMIT_MS:g} ms",
            "≥ 3 x naive, > peer",
            *_nums((ck, pk, nk), 0),
            _ratio(ck, pk),
            _ratio(ck, nk),
            _met(None if not nk or pk is None or ck is None else ck >= 3 * nk and ck > pk),
        )
    )
    steady = result["steady_streaming"]
    for label, cpus in (
        (f"K={HEADLINE_K} load, chats starting and ending", [d.get("cpu_us_per_token", {}) for d in (c, p, n)]),
        (
            f"steady streaming of {steady[CHATRELAY]['chats']} open chats",
            [steady.get(d, {}).get("cpu_us_per_token", {}) for d in (CHATRELAY, PEER, NAIVE)],
        ),
    ):
        (ccell, ctotal), (pcell, ptotal), (ncell, ntotal) = (_cpu(cpu) for cpu in cpus)
        api = cpus[0].get("api")
        out.append(
            _row(
                f"CPU per token (µs), {label}: by server process",
                "≤ 30 (API)",
                ccell,
                pcell,
                ncell,
                _ratio(ctotal, ptotal),  # all of a design's server processes against all of the other's
                _ratio(ctotal, ntotal),
                _met(None if api is None else api <= 30),
            )
        )
    native = result.get("native_profile") or c
    reasoning = result.get("reasoning_profile")
    if reasoning:
        # Same K and tokens as the headline point, half of each answer as reasoning events: against chatrelay's
        # own text-only point run just before it (the other designs relay no reasoning).
        rl, cl = reasoning.get("added_latency_ms", {}), native.get("added_latency_ms", {})
        out.append(
            _row(
                f"reasoning-heavy profile (half the tokens reasoning), K={HEADLINE_K}: added p50 / p99 (ms)",
                "as text-only",
                f"{_num(rl.get('p50'), 2)} / {_num(rl.get('p99'), 2)}",
                "—",
                f"chatrelay text-only: {_num(cl.get('p50'), 2)} / {_num(cl.get('p99'), 2)} (p99 ÷ text-only "
                f"{_ratio(rl.get('p99'), cl.get('p99'))})",
            )
        )
        ra, ca = reasoning.get("cpu_us_per_token", {}).get("api"), native.get("cpu_us_per_token", {}).get("api")
        out.append(
            _row(
                "  reasoning-heavy profile: API CPU per token under load (µs)",
                "as text-only",
                _num(ra),
                "—",
                f"chatrelay text-only: {_num(ca)} (÷ text-only {_ratio(ra, ca)})",
            )
        )
    for surface, figures in result.get("surfaces", {}).items():
        # A second framing of the same stream: against the native SSE's figures of the same run.
        load, relayed = figures["load"], figures["steady_streaming"]
        sl = load.get("added_latency_ms", {})
        cl = native.get("added_latency_ms", {})
        out.append(
            _row(
                f"{surface}, K={HEADLINE_K}: added p50 / p99 (ms)",
                "—",
                f"{_num(sl.get('p50'), 2)} / {_num(sl.get('p99'), 2)}",
                "—",
                f"native SSE: {_num(cl.get('p50'), 2)} / {_num(cl.get('p99'), 2)} (p99 ÷ native "
                f"{_ratio(sl.get('p99'), cl.get('p99'))})",
            )
        )
        for label, mine, theirs in (
            ("under load", load.get("cpu_us_per_token", {}), native.get("cpu_us_per_token", {})),
            (
                "steady streaming",
                relayed.get("cpu_us_per_token", {}),
                steady.get(CHATRELAY, {}).get("cpu_us_per_token", {}),
            ),
        ):
            sa, na = mine.get("api"), theirs.get("api")
            ratio = None if sa is None or not na else sa / na
            out.append(
                _row(
                    f"  {surface}: API CPU per token, {label} (µs)",
                    "≤ 1.2 x native",
                    _num(sa),
                    "—",
                    f"native SSE: {_num(na)} (÷ native {_ratio(sa, na)})",
                    met=_met(None if ratio is None else ratio <= 1.2),
                )
            )
    demo = [d.get("cpu_us_per_token", {}).get("demo") for d in (c, p, n)]
    out.append(_row("CPU per token: the demo upstream, the same in all (µs)", "—", *_nums(demo)))
    rc, rp = c.get("redis_commands", {}), p.get("redis_commands", {})
    ccmd, pcmd = (f"{_num(r.get('per_chat'))} ({_num(r.get('per_token'), 2)})" for r in (rc, rp))
    out.append(
        _row(
            "Redis commands per chat (per token)",
            "—",
            ccmd,
            pcmd,
            "0 (no Redis)",
            _ratio(rc.get("per_chat"), rp.get("per_chat")),
        )
    )
    mem = result["redis_memory_per_chat"]
    peer = result.get(PEER, {})
    pa = peer.get("answer", {})
    kib = mem["bytes"] / 1024
    out.append(
        _row(
            f"Redis memory per finished {mem['tokens']:,}-token answer ({mem['events']:,} events) (KiB)",
            "≤ 64",
            _num(kib),
            f"{_num(pa['redis_bytes_finished'] / 1024, 2)} (a `DONE` flag; the text is gone)" if pa else "—",
            "0 (nothing kept)",
            met=_met(kib <= 64),
        )
    )
    if pa:
        out.append(
            _row(
                f"  where a running {pa['tokens']:,}-token answer lives (KiB)",
                "—",
                "Redis (as above)",
                f"the producer's memory: {_num(pa['producer_holds_chars'] / 1024)}k characters of SSE text; Redis "
                f"{_num(pa['redis_bytes_running'] / 1024, 2)}",
                "the request's memory",
            )
        )
    idle = result["idle_sse"]
    ci, pi, ni = (idle[d]["bytes_per_connection"] / 1024 if d in idle else None for d in (CHATRELAY, PEER, NAIVE))
    counts = " / ".join(f"{idle[d]['connections']:,}" for d in (CHATRELAY, PEER, NAIVE) if d in idle)
    pr = idle.get(PEER, {}).get("redis_bytes_per_connection")
    out.append(
        _row(
            f"memory per open idle SSE connection (KiB), at {counts} connections",
            "≤ 25 at 10,000",
            _num(ci),
            "—" if pi is None else f"{_num(pi)} (+ Redis {_num(pr / 1024 if pr is not None else None)})",
            _num(ni),
            _ratio(ci, pi),
            _ratio(ci, ni),
            _met(ci is not None and ci <= 25 and idle[CHATRELAY]["connections"] >= 10_000),
        )
    )
    pres = peer.get("resume", {})
    for position in ("start", "middle", "end"):
        summary, ps = result["resume"].get(position, {}), pres.get(position, {})
        cv, pv = summary.get("p50"), ps.get("p50")
        out.append(
            _row(
                f"resume at the {position} of the answer: time to first replayed event p50 / p99 (ms)",
                "—",
                f"{_num(cv)} / {_num(summary.get('p99'))}",
                f"{_num(pv)} / {_num(ps.get('p99'))} (running answer only)" if ps else "—",
                "n/a: the answer is lost",
                _ratio(cv, pv),
            )
        )
    if pa:
        out.append(
            _row(
                "  resume once the answer has ended",
                "—",
                "as above (the stored events)",
                f"HTTP {pa['resume_after_done_status']}: the answer is gone",
                "n/a",
            )
        )
    storm, ps = result["storm"], peer.get("storm", {})
    fe, pfe = storm["first_event_ms"], ps.get("first_event_ms", {})
    out.append(
        _row(
            f"reconnect storm, {storm['clients']:,} clients at once: first event p50 / p99 / max (ms)",
            "≤ 500 / 1,500 (p50 / p99)",
            f"{_num(fe.get('p50'))} / {_num(fe.get('p99'))} / {_num(fe.get('max'))}",
            f"{_num(pfe.get('p50'))} / {_num(pfe.get('p99'))} / {_num(pfe.get('max'))}" if ps else "—",
            "n/a",
            _ratio(fe.get("p50"), pfe.get("p50")),
            met=_met(None if fe.get("p50") is None else fe["p50"] <= 500 and fe.get("p99", 1e9) <= 1500),
        )
    )
    out.append(
        _row(
            f"  storm: all {storm['events_each']} replayed events delivered to every client (ms); exact",
            "all exact",
            f"{_num(storm['all_done_ms'])}; {storm['exact']}/{storm['clients']}",
            f"{_num(ps['all_done_ms'])} ({ps['events_each']} events); {ps['exact']}/{ps['clients']}, "
            f"failed {ps['failed']}"
            if ps
            else "—",
            "n/a",
            _ratio(storm["all_done_ms"], ps.get("all_done_ms")),
            met=_met(storm["exact"] == storm["clients"]),
        )
    )
    points = result["sweep"]["points"]
    chats = {d: sum(pt["chats"] for pt in points.get(d, [])) for d in (CHATRELAY, PEER, NAIVE)}
    out.append(
        _row(
            "answers equal to the upstream text (a mismatch voids the run): mismatches; load chats",
            "all",
            f"mismatches {result['mismatches']} (all designs); {chats[CHATRELAY]:,}",
            f"{chats[PEER]:,}",
            f"{chats[NAIVE]:,}",
            met=_met(not result["void"]),
        )
    )
    return out


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    void = ", VOID: an answer differed from the upstream" if result["void"] else ""
    head = [
        f"# chatrelay vs the peer (resumable-stream) and the naive design ({result['plan']} run{void})",
        "",
        f"{m['cpus']} cores, {m['memory_gib']} GiB, {m['platform']}, Python {m['python']}; load average at the end "
        f"{m['load_average_at_end'][0]} (other work may share the machine). Load: open-loop Poisson arrivals, "
        f"{result['load']['tokens_per_chat']} tokens per chat at 30 tokens/s, the model's own first token after "
        f"{result['load']['ttft_ms']:g} ms. Run took {result['seconds']:.0f} s.",
        "",
        f"| {' | '.join(HEADER)} |",
        "|" + " --- |" * len(HEADER),
    ]
    body = [f"| {' | '.join(r)} |" for r in rows(result)]
    sweep = [
        "",
        "Sweep (added latency per token, ms):",
        "",
        "| K | design | mean open | p50 | p99 | max | chats | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for design in DESIGNS:
        for p in result["sweep"]["points"].get(design, []):
            lat = p["added_latency_ms"]
            cells = [str(p["target_concurrency"]), design, str(p["mean_concurrency"])]
            cells += [_num(lat.get(q), 2) for q in ("p50", "p99", "max")] + [str(p["chats"]), str(p["errors"])]
            sweep.append(f"| {' | '.join(cells)} |")
    return "\n".join(head + body + sweep) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for design, color in ((CHATRELAY, "tab:blue"), (PEER, "tab:green"), (NAIVE, "tab:orange")):
        pts = [p for p in result["sweep"]["points"].get(design, []) if p["added_latency_ms"].get("n")]
        ks = [p["target_concurrency"] for p in pts]
        for q, style in (("p50", "-o"), ("p99", "--s")):
            ax.plot(ks, [p["added_latency_ms"][q] for p in pts], style, color=color, label=f"{design} {q}")
    ax.axhline(P99_LIMIT_MS, color="grey", linewidth=0.8, linestyle=":", label=f"{P99_LIMIT_MS:g} ms")
    ax.set_yscale("log")
    ax.set_xlabel("concurrent chats K (30 tokens/s each)")
    ax.set_ylabel("added latency per token (ms)")
    ax.set_title("Added latency per token vs concurrent chats (peer: resumable-stream)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write(result: dict[str, Any], out_dir: Path, name: str = "latest") -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    png = "latency_vs_k.png" if name == "latest" else f"{name}_latency_vs_k.png"
    paths = [out_dir / f"{name}.json", out_dir / f"{name}.md", out_dir / png]
    paths[0].write_bytes(dumps(result) + b"\n")
    paths[1].write_text(markdown(result))
    plot(result, paths[2])
    return paths
