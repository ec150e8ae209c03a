"""`python -m demo_upstream --port 9100 --delay-ms 50 [--scene reasoning] [--replay-dir DIR]`: run the demo model."""

import argparse
from pathlib import Path

import uvicorn

from demo_upstream.script import Script
from demo_upstream.server import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="chatrelay's local OpenAI-compatible demo model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--delay-ms", type=float, default=50.0, help="pause between tokens")
    parser.add_argument("--ttft-ms", type=float, default=300.0, help="pause before the first token")
    parser.add_argument("--tokens", type=int, default=0, help="reply length in tokens (0: the canned reply)")
    parser.add_argument("--scene", default="text", help="what replies say by default (demo_upstream.scenes)")
    parser.add_argument("--replay-dir", type=Path, default=None, help="recorded SSE bodies for `?replay=<file>`")
    args = parser.parse_args()
    script = Script(delay_ms=args.delay_ms, ttft_ms=args.ttft_ms, tokens=args.tokens, scene=args.scene)
    uvicorn.run(create_app(script, args.replay_dir), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
