"""The run's results as JSON, a Markdown table (figure, target, chatrelay, naive, ratio, met?) and a plot."""

from pathlib import Path
from typing import Any

from bench.load import CHATRELAY, NAIVE
from bench.probes import dumps
from bench.run import HEADLINE_K, P99_LIMIT_MS

Row = tuple[str, str, str, str, str, str]


def _point(result: dict[str, Any], design: str, k: int = HEADLINE_K) -> dict[str, Any]:
    for point in result["sweep"]["points"][design]:
        if point["target_concurrency"] == k:
            return dict(point)
    return {}


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _ratio(c: float | None, n: float | None) -> str:
    return "—" if c is None or n is None or n == 0 else f"{c / n:.2f}"


def _met(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


def rows(result: dict[str, Any]) -> list[Row]:
    c, n = _point(result, CHATRELAY), _point(result, NAIVE)
    out: list[Row] = []
    for q, limit in (("p50", 2.0), ("p99", 10.0), ("max", None)):
        cv, nv = c.get("added_latency_ms", {}).get(q), n.get("added_latency_ms", {}).get(q)
        target = f"≤ {limit:g} and ≤ naive" if limit else "—"
        ok = None if limit is None or cv is None or nv is None else cv <= limit and cv <= nv
        out.append(
            (
                f"added latency per token {q}, K={HEADLINE_K} x 30 tok/s (ms)",
                target,
                _num(cv, 2),
                _num(nv, 2),
                _ratio(cv, nv),
                _met(ok),
            )
        )
    ct, nt = c.get("ttft_ms", {}), n.get("ttft_ms", {})
    co, no = ct.get("overhead", {}).get("p50"), nt.get("overhead", {}).get("p50")
    ok = None if co is None or no is None else co - no <= 25
    out.append(
        (
            "TTFT overhead p50 (ms): time to first token minus the model's own",
            "≤ naive + 25",
            _num(co),
            _num(no),
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
        cv, nv = ct.get(stage, {}).get("p50"), nt.get(stage, {}).get("p50")
        target = "≤ 20" if stage == "queue_wait" else "—"
        ok = None if stage != "queue_wait" or cv is None else cv <= 20
        out.append((f"  TTFT stage p50: {stage} ({label}) (ms)", target, _num(cv), _num(nv), "—", _met(ok)))
    lk = result["sweep"]["largest_k"]
    ck, nk = lk[CHATRELAY]["largest_k"], lk[NAIVE]["largest_k"]
    out.append(
        (
            f"largest K with p99 added latency ≤ {P99_LIMIT_MS:g} ms",
            "≥ 2 x naive",
            str(ck),
            str(nk),
            _ratio(ck, nk),
            _met(ck >= 2 * nk if nk else None),
        )
    )
    steady = result["steady_streaming"]
    for label, ccpu, ncpu in (
        (
            f"K={HEADLINE_K} load, chats starting and ending",
            c.get("cpu_us_per_token", {}),
            n.get("cpu_us_per_token", {}),
        ),
        (
            f"steady streaming of {steady[CHATRELAY]['chats']} open chats",
            steady[CHATRELAY]["cpu_us_per_token"],
            steady[NAIVE]["cpu_us_per_token"],
        ),
    ):
        api, naive_app = ccpu.get("api"), ncpu.get("naive")
        workers = sum(v for name, v in ccpu.items() if name.startswith("worker")) if ccpu else None
        redis_cpu = ccpu.get("redis")
        total = (api or 0) + (workers or 0) + (redis_cpu or 0)
        cells = f"API {_num(api)}, worker {_num(workers)}, Redis {_num(redis_cpu)}; total {_num(total)}"
        out.append(
            (
                f"CPU per token (µs), {label}: API process / the naive app",
                "≤ 30 (API)",
                cells,
                _num(naive_app),
                _ratio(total, naive_app),  # all of chatrelay's server processes against the one naive app
                _met(None if api is None else api <= 30),
            )
        )
    reasoning = result.get("reasoning_profile")
    if reasoning:
        # Same K and tokens as the headline point, half of each answer as reasoning events: against chatrelay's
        # own text-only point of the same run.
        rl, cl = reasoning.get("added_latency_ms", {}), c.get("added_latency_ms", {})
        out.append(
            (
                f"reasoning-heavy profile (half the tokens reasoning), K={HEADLINE_K}: added p50 / p99 (ms)",
                "as text-only",
                f"{_num(rl.get('p50'), 2)} / {_num(rl.get('p99'), 2)}",
                f"text-only: {_num(cl.get('p50'), 2)} / {_num(cl.get('p99'), 2)}",
                _ratio(rl.get("p99"), cl.get("p99")),
                "—",
            )
        )
        ra, ca = reasoning.get("cpu_us_per_token", {}).get("api"), c.get("cpu_us_per_token", {}).get("api")
        out.append(
            (
                "  reasoning-heavy profile: API CPU per token under load (µs)",
                "as text-only",
                _num(ra),
                f"text-only: {_num(ca)}",
                _ratio(ra, ca),
                "—",
            )
        )
    demo_c, demo_n = c.get("cpu_us_per_token", {}).get("demo"), n.get("cpu_us_per_token", {}).get("demo")
    out.append(("CPU per token: the demo upstream, the same in both (µs)", "—", _num(demo_c), _num(demo_n), "—", "—"))
    rc = c.get("redis_commands", {})
    out.append(
        (
            "Redis commands per chat (per token)",
            "—",
            f"{_num(rc.get('per_chat'))} ({_num(rc.get('per_token'), 2)})",
            "0 (no Redis)",
            "—",
            "—",
        )
    )
    mem = result["redis_memory_per_chat"]
    kib = mem["bytes"] / 1024
    out.append(
        (
            f"Redis memory per finished {mem['tokens']:,}-token answer ({mem['events']:,} events) (KiB)",
            "≤ 64",
            _num(kib),
            "0 (nothing kept)",
            "—",
            _met(kib <= 64),
        )
    )
    idle_c, idle_n = result["idle_sse"][CHATRELAY], result["idle_sse"][NAIVE]
    ci, ni = idle_c["bytes_per_connection"] / 1024, idle_n["bytes_per_connection"] / 1024
    out.append(
        (
            f"memory per open idle SSE connection (KiB), at {idle_c['connections']:,} / "
            f"{idle_n['connections']:,} connections",
            "≤ 25 at 10,000",
            _num(ci),
            _num(ni),
            _ratio(ci, ni),
            _met(ci <= 25 and idle_c["connections"] >= 10_000),
        )
    )
    for position, summary in result["resume"].items():
        out.append(
            (
                f"resume at the {position} of the answer: time to first replayed event p50 / p99 (ms)",
                "—",
                f"{_num(summary.get('p50'))} / {_num(summary.get('p99'))}",
                "n/a: the answer is lost",
                "—",
                "—",
            )
        )
    storm = result["storm"]
    fe = storm["first_event_ms"]
    out.append(
        (
            f"reconnect storm, {storm['clients']:,} clients at once: first event p50 / p99 / max (ms)",
            "—",
            f"{_num(fe.get('p50'))} / {_num(fe.get('p99'))} / {_num(fe.get('max'))}",
            "n/a",
            "—",
            "—",
        )
    )
    out.append(
        (
            f"  storm: all {storm['events_each']} replayed events delivered to every client (ms); exact",
            "—",
            f"{_num(storm['all_done_ms'])}; {storm['exact']}/{storm['clients']}",
            "n/a",
            "—",
            "—",
        )
    )
    chats = sum(p["chats"] for d in (CHATRELAY, NAIVE) for p in result["sweep"]["points"][d])
    out.append(
        (
            "answers equal to the upstream text (a mismatch voids the run)",
            "all",
            f"mismatches {result['mismatches']}",
            f"{chats:,} load chats",
            "—",
            _met(not result["void"]),
        )
    )
    return out


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    void = ", VOID: an answer differed from the upstream" if result["void"] else ""
    head = [
        f"# chatrelay vs the naive design ({result['plan']} run{void})",
        "",
        f"{m['cpus']} cores, {m['memory_gib']} GiB, {m['platform']}, Python {m['python']}; load average at the end "
        f"{m['load_average_at_end'][0]} (other work may share the machine). Load: open-loop Poisson arrivals, "
        f"{result['load']['tokens_per_chat']} tokens per chat at 30 tokens/s, the model's own first token after "
        f"{result['load']['ttft_ms']:g} ms. Run took {result['seconds']:.0f} s.",
        "",
        "| figure | target | chatrelay | naive | ratio | met? |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    body = [f"| {' | '.join(r)} |" for r in rows(result)]
    sweep = [
        "",
        "Sweep (added latency per token, ms):",
        "",
        "| K | design | mean open | p50 | p99 | max | chats | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for design in (NAIVE, CHATRELAY):
        for p in result["sweep"]["points"][design]:
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
    for design, color in ((CHATRELAY, "tab:blue"), (NAIVE, "tab:orange")):
        pts = [p for p in result["sweep"]["points"][design] if p["added_latency_ms"].get("n")]
        ks = [p["target_concurrency"] for p in pts]
        for q, style in (("p50", "-o"), ("p99", "--s")):
            ax.plot(ks, [p["added_latency_ms"][q] for p in pts], style, color=color, label=f"{design} {q}")
    ax.axhline(P99_LIMIT_MS, color="grey", linewidth=0.8, linestyle=":", label=f"{P99_LIMIT_MS:g} ms")
    ax.set_yscale("log")
    ax.set_xlabel("concurrent chats K (30 tokens/s each)")
    ax.set_ylabel("added latency per token (ms)")
    ax.set_title("Added latency per token vs concurrent chats")
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
