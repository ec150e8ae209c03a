"""`chatrelay tail ID`: follow one answer live from Redis (XREAD), from the start or after `--offset`.

stdout gets the answer as it comes (`--json`: one JSON line per event as stored): its text, its reasoning under a
`[reasoning]` heading (dimmed on a terminal), each tool call as `name(arguments)` under `[tool call]`, a refusal
under `[refusal]`; a heading goes out where the kind changes. On a terminal a progress line
(tokens, tokens/s, elapsed) sits below the text. Tokens are estimated at 4 characters each while the answer
streams, since a stored delta may hold several tokens; the exact count replaces it when the upstream reports
its usage at the end. Exit status: 0 when the answer is done, 1 when it ended with an error, was cancelled or
does not exist.
"""

import argparse
import asyncio
import contextlib
import sys
import time
from typing import Any, TextIO

import orjson

from cli.connection import Ops, run
from cli.output import seconds
from contract.events import EventType
from contract.ids import is_stream_id, parse_entry_id
from contract.status import TERMINAL_STATUSES, StreamStatus, decode_meta

# VT100: save/restore the cursor, index (down one line, scrolling at the bottom) and reverse index keep the
# column, so the progress line can live on the line below the text without disturbing where the text goes on.
_SAVE, _RESTORE, _DOWN, _UP, _CLEAR = "\x1b7", "\x1b8", "\x1bD", "\x1bM", "\r\x1b[2K"


def add_parsers(
    subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]", common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser("tail", parents=[common], help="follow a stream live: its text and a progress line")
    p.add_argument("stream_id", metavar="ID")
    p.add_argument("--offset", default="0-0", help="an event id to start after (default: from the start)")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the progress line (default: on when stdout is a terminal)",
    )
    p.set_defaults(run=lambda args: run(lambda ops: _tail(ops, args)))


def _entry_ms(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[0])


class Progress:
    """Counts and, on a terminal, draws the progress line below the streamed text."""

    def __init__(self, out: TextIO, created_ms: int, live: bool, draw: bool) -> None:
        self.out = out
        self.created_ms = created_ms
        self.live = live  # elapsed runs on the wall clock; a replay of an ended stream uses its entry times
        self.draw = draw
        self.chars = 0
        self.tokens: int | None = None  # exact, once the upstream reported usage
        self.first_ms: int | None = None
        self.last_ms = created_ms
        self.shown = False

    def clock_ms(self) -> int:
        return max(self.last_ms, int(time.time() * 1000)) if self.live else self.last_ms

    def line(self) -> str:
        tokens = self.tokens if self.tokens is not None else round(self.chars / 4)
        elapsed = (self.clock_ms() - self.created_ms) / 1000
        generating = (self.clock_ms() - self.first_ms) / 1000 if self.first_ms is not None else 0
        rate = f"{tokens / generating:.1f}" if generating > 0 else "-"
        approx = "" if self.tokens is not None else "~"
        return f"{approx}{tokens} tokens  {rate} tokens/s  {seconds(elapsed)} elapsed  {self.chars} chars"

    def hide(self) -> None:
        if self.shown:
            self.out.write(_SAVE + _DOWN + _CLEAR + _RESTORE)
            self.shown = False

    def show(self) -> None:
        if self.draw:
            self.out.write(_DOWN + _UP + _SAVE + _DOWN + _CLEAR + "\x1b[2m" + self.line() + "\x1b[0m" + _RESTORE)
            self.out.flush()
            self.shown = True

    def text(self, text: str, dim: bool = False) -> None:
        self.hide()
        self.out.write(f"\x1b[2m{text}\x1b[0m" if dim and self.draw else text)
        self.show()
        if not self.draw:
            self.out.flush()


async def _tail(ops: Ops, args: argparse.Namespace) -> int:
    stream_id = args.stream_id
    meta = await ops.store.meta(stream_id) if is_stream_id(stream_id) else {}
    if not meta:
        print(f"chatrelay: no stream with id {stream_id!r}", file=sys.stderr)
        return 1
    info = decode_meta(stream_id, meta)
    after = args.offset.encode()
    if args.offset not in ("0", "0-0"):
        if parse_entry_id(args.offset) is None:
            print(f"chatrelay: offset {args.offset!r} is not an event id (<ms>-<seq>)", file=sys.stderr)
            return 2
        if not await ops.store.has_entry(stream_id, after):
            print(f"chatrelay: stream {stream_id} holds no event with id {args.offset}", file=sys.stderr)
            return 1
    ended = info.status in TERMINAL_STATUSES
    if ended and not await ops.store.read_after(stream_id, after, count=1):
        print(f"chatrelay: nothing follows {args.offset}; the stream ended ({info.status.value})", file=sys.stderr)
        return 0 if info.status == StreamStatus.DONE else 1
    out = sys.stdout
    draw = not args.json and (args.progress if args.progress is not None else out.isatty())
    progress = Progress(out, int(info.created_at.timestamp() * 1000), live=not ended, draw=draw)
    ticker = asyncio.create_task(_tick(progress)) if draw and not ended else None
    final = "error"
    renderer = KindRenderer()
    try:
        async for entry_id, fields in ops.store.follow(stream_id, after, block_ms=1000):
            kind, data = fields[b"t"].decode(), orjson.loads(fields[b"d"])
            progress.last_ms = _entry_ms(entry_id)
            if args.json:
                print_event(entry_id, kind, data)
            elif kind in _FRAGMENT_KINDS:
                if progress.first_ms is None:
                    progress.first_ms = progress.last_ms
                shown = renderer.fragment(kind, data)
                progress.chars += len(str(data.get("text", data.get("arguments", ""))))
                progress.text(shown, dim=kind == EventType.REASONING)
            elif kind == EventType.RESET:
                progress.chars, progress.first_ms = 0, None
                progress.text(renderer.close())
                _notice(progress, f"[reset: attempt {data['attempt']} starts over; the text above is void]")
            elif kind == EventType.DONE:
                usage = data.get("usage") or {}
                if "completion_tokens" in usage:
                    progress.tokens = usage["completion_tokens"]
            if kind in (EventType.DONE, EventType.ERROR, EventType.CANCELLED):
                final = kind
                if not args.json:
                    progress.text(renderer.close())
                if not args.json:
                    _notice(progress, _ending(kind, data), end=True)
    finally:
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        progress.hide()
        out.flush()
    return 0 if final == EventType.DONE else 1


_FRAGMENT_KINDS = frozenset({EventType.DELTA, EventType.REASONING, EventType.TOOL_CALL, EventType.REFUSAL})


class KindRenderer:
    """The text to print for each fragment: a heading where the kind changes (the answer text after other kinds
    is headed `[answer]`; a plain text answer has none). Tool calls are printed whole, as `name(arguments)`, once
    the run of tool-call fragments ends: parallel calls may interleave their fragments."""

    def __init__(self) -> None:
        self.kind: str | None = None
        self.calls: dict[int, list[str]] = {}

    def close(self) -> str:
        """What ends the current run: the tool calls it held."""
        calls = [f"[tool call] {parts[0]}({''.join(parts[1:])})" for _, parts in sorted(self.calls.items())]
        self.calls = {}
        return "\n\n".join(calls)

    def fragment(self, kind: str, data: dict[str, Any]) -> str:
        head = ""
        if kind != self.kind:
            started = self.kind is not None
            head = self.close() + ("\n\n" if started else "")
            if kind == EventType.DELTA:
                head += "[answer]\n" if started else ""
            elif kind != EventType.TOOL_CALL:
                head += f"[{kind}]\n"
            self.kind = kind
        if kind == EventType.TOOL_CALL:
            parts = self.calls.setdefault(int(data["index"]), [data.get("name") or "?"])
            parts.append(str(data.get("arguments", "")))
            return head
        return head + str(data.get("text", ""))


def print_event(entry_id: bytes, kind: str, data: object) -> None:
    sys.stdout.write(orjson.dumps({"id": entry_id.decode(), "type": kind, "data": data}).decode() + "\n")
    sys.stdout.flush()


def _ending(kind: str, data: dict[str, object]) -> str:
    if kind == EventType.DONE:
        return f"[done: {data.get('finish_reason')}]"
    if kind == EventType.ERROR:
        return f"[error {data.get('code')}: {data.get('message')}]"
    return f"[cancelled after {data.get('chars')} chars]"


def _notice(progress: Progress, message: str, end: bool = False) -> None:
    """A line about the stream (reset, end): inline on a terminal, on stderr when stdout is piped text."""
    if progress.draw:
        progress.hide()
        tail = f"\n{progress.line()}\n" if end else "\n"
        progress.out.write(f"\n\x1b[2m{message}\x1b[0m{tail}")
        if not end:
            progress.show()
    else:
        print(f"\nchatrelay: {message} {progress.line()}" if end else f"\nchatrelay: {message}", file=sys.stderr)


async def _tick(progress: Progress) -> None:
    """Keeps elapsed and tokens/s current while no text arrives."""
    while True:
        await asyncio.sleep(0.25)
        progress.show()
