"""`chatrelay dev` (what `make dev` runs): the whole service on this machine with embedded defaults."""

import argparse
import secrets
import signal
import sys
import time
from types import FrameType

from cli.processes import ProcessGroup, RedisNotFoundError, free_port


def add_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser("dev", help="run Redis, the demo model (without an API key), a worker and the API")
    parser.add_argument("--port", type=int, default=8000, help="API port (default 8000)")
    parser.add_argument("--model", default=None, help="default model name (demo: switches after '?')")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--demo-delay-ms", type=float, default=45.0, help="demo model: pause between tokens")
    parser.set_defaults(run=run)


def sdk_snippet(url: str, api_key: str, model: str) -> str:
    """Python that an unmodified openai SDK runs against this service's `/v1` (what `chatrelay dev` prints)."""
    return f"""\
from openai import OpenAI

client = OpenAI(base_url="{url}/v1", api_key="{api_key}")
# Runs on a worker whatever happens to this connection; a dropped client resumes with
# client.responses.retrieve(response_id, stream=True, starting_after=<last sequence_number>).
stream = client.responses.create(model="{model}", input="Hello!", background=True, stream=True)
for event in stream:
    if event.type == "response.output_text.delta":
        print(event.delta, end="", flush=True)
print()
"""


def _api_key(env: dict[str, str]) -> str:
    """The first configured API key, or a new one for this run (an SDK always sends a key)."""
    for item in env.get("CHATRELAY_API_KEYS", "").split(","):
        name, sep, key = item.strip().partition(":")
        if sep and name and key:
            return key
    key = "ck-dev-" + secrets.token_urlsafe(24)
    env["CHATRELAY_API_KEYS"] = f"dev:{key}"
    return key


def run(args: argparse.Namespace) -> int:
    group = ProcessGroup(inherit_output=True)
    env = group.env
    # Readable lines in a terminal; JSON (the default elsewhere) when a log collector reads them.
    env.setdefault("CHATRELAY_LOG_FORMAT", "text")
    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if env.get("REDIS_URL"):
            print(f"chatrelay: using Redis at {env['REDIS_URL']}", flush=True)
        else:
            try:
                env["REDIS_URL"] = group.start_redis(free_port())
            except RedisNotFoundError as exc:
                print(f"chatrelay: {exc}", file=sys.stderr)
                return 2
            print(f"chatrelay: started a local Redis at {env['REDIS_URL']} (nothing kept on disk)", flush=True)
        if not (env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL") or env.get("AZURE_OPENAI_ENDPOINT")):
            # The default demo conversation thinks first (the page shows its reasoning), then answers in Markdown.
            demo_url = group.start_demo(free_port(), delay_ms=args.demo_delay_ms, scene="reasoning")
            env.update(OPENAI_BASE_URL=demo_url, OPENAI_API_KEY="demo", CHATRELAY_DEMO_UPSTREAM="true")
            env.setdefault("OPENAI_MODEL", "chatrelay-demo")
            print("*" * 72, flush=True)
            print("chatrelay: DEMO MODE. No OPENAI_API_KEY or OPENAI_BASE_URL is set, so answers come", flush=True)
            print(f"chatrelay: from the local demo model at {demo_url}, not from a real model.", flush=True)
            print("*" * 72, flush=True)
            print(f"demo upstream: {demo_url.removesuffix('/v1')}", flush=True)
        if args.model:
            env["OPENAI_MODEL"] = args.model
        api_key = _api_key(env)
        metrics_port = int(env.get("CHATRELAY_WORKER_METRICS_PORT", "9101"))
        for i in range(args.workers):
            # One metrics port per worker on this machine: 9101, 9102, ... (0 keeps them all off).
            port = str(metrics_port + i if metrics_port else 0)
            group.start_worker(f"worker-{i}", {"CHATRELAY_WORKER_METRICS_PORT": port})
        url = group.start_api(args.port)
        print(f"chatrelay ready: {url}", flush=True)
        model = env.get("OPENAI_MODEL", "gpt-4o-mini")
        print(f"OpenAI SDKs: base_url {url}/v1, API key {api_key}; paste this into Python:\n", flush=True)
        print(sdk_snippet(url, api_key, model), flush=True)
        while not stopping:
            for name, proc in list(group.procs.items()):
                if proc.poll() is not None:
                    print(f"chatrelay: {name} exited with {proc.returncode}; stopping", file=sys.stderr, flush=True)
                    return 1
            time.sleep(0.2)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        group.stop_all()
        print("chatrelay: stopped", flush=True)
