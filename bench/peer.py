"""The peer the benchmark puts beside chatrelay: Vercel's `resumable-stream` (npm), run as the small Node server in
`bench/peers/resumable_stream/`, against the same demo upstream and the same Redis.

The library keeps an answer in the producer's memory; Redis holds one sentinel key per stream (a counter, then
`DONE` for 24 h) and carries pub/sub: a late reader asks the producer for the text after its first N characters
and then gets every further chunk published to it. This module starts that server and knows its two routes, its
Redis keys and its character offsets; `bench.peer_probes` measures it.
"""

import shutil
import subprocess
from pathlib import Path

from bench.client import SseEvent
from cli.processes import ProcessGroup, wait_for_http

PEER_DIR = Path(__file__).resolve().parent / "peers" / "resumable_stream"
_STAMP = PEER_DIR / "node_modules" / ".installed"


# Every command the library can send: its `Publisher` and `Subscriber` interfaces (`src/types.ts`). The benchmark
# counts only these for the peer, since chatrelay's idle processes share the Redis (arq polls its queue).
COMMANDS = frozenset({"incr", "set", "get", "publish", "subscribe", "unsubscribe"})


class PeerNotInstalledError(RuntimeError):
    """Node.js or npm is missing, so the peer cannot run."""


def ensure_installed() -> None:
    """`npm ci` the peer's pinned packages when they are missing or older than the lock file (a fresh clone)."""
    lock = PEER_DIR / "package-lock.json"
    if _STAMP.exists() and _STAMP.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise PeerNotInstalledError("the benchmark's peer needs Node.js 20.6+ and npm on the PATH")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PEER_DIR, check=True)
    _STAMP.touch()


def start_peer(
    group: ProcessGroup, port: int, redis_url: str, openai_base_url: str, key_prefix: str, name: str = "peer"
) -> str:
    """Start the peer as the process `name` of `group`; returns its base URL once it answers."""
    ensure_installed()
    node = shutil.which("node")
    if node is None:
        raise PeerNotInstalledError("the benchmark's peer needs Node.js 20.6+ on the PATH")
    env = {"REDIS_URL": redis_url, "OPENAI_BASE_URL": openai_base_url, "PORT": str(port)}
    proc = group.spawn(name, [node, str(PEER_DIR / "server.mjs")], env | {"PEER_KEY_PREFIX": key_prefix})
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/healthz", proc=proc)
    return url


def sentinel_key(key_prefix: str, chat_id: str) -> str:
    """The library's one key per stream (`<keyPrefix>:rs:sentinel:<id>`, built inline in its `runtime.ts`)."""
    return f"{key_prefix}:rs:sentinel:{chat_id}"


def resume_path(chat_id: str, skip_characters: int | None = None) -> str:
    """The resume route: the answer after its first `skip_characters` characters (all of it without)."""
    path = f"/chat/{chat_id}/stream"
    return path if skip_characters is None else f"{path}?resumeAt={skip_characters}"


def frame_chars(events: list[SseEvent]) -> int:
    """How many characters of the peer's SSE text `events` arrived in: the offset to resume after them.

    The library slices a JavaScript string, so a character is a UTF-16 code unit (an emoji counts two), and the
    offset is of the framed text (`event: delta\\ndata: {...}\\n\\n`, as server.mjs writes it), not of the answer.
    """
    text = "".join(f"event: {e.event.decode()}\ndata: {e.data.decode()}\n\n" for e in events)
    return len(text.encode("utf-16-le")) // 2
