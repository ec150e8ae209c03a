"""`chatrelay streams`, `chatrelay show ID`, `chatrelay cancel ID`."""

import argparse
import sys
from datetime import UTC, datetime

from cli.connection import Ops, run
from cli.output import ago, between, clip, parse_duration, print_json, seconds, table
from contract.ids import is_stream_id
from contract.listing import BadCursorError, StatusFilter, StreamQuery, created_after_ms, list_streams
from contract.message import AssistantMessage, MessageBuilder
from contract.status import StreamInfo, decode_meta
from contract.store import CancelResult


def add_parsers(
    subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]", common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser("streams", parents=[common], help="list recent and running streams, newest first")
    p.add_argument(
        "--status",
        type=StatusFilter,
        choices=list(StatusFilter),
        default=StatusFilter.ALL,
        help="active (queued and running), all (default), or one status",
    )
    p.add_argument("--model", help="only streams of this model (exact name)")
    p.add_argument("--max-age", type=parse_duration, metavar="DURATION", help="only streams this recent: 90s, 10m, 2h")
    p.add_argument("--limit", type=int, default=50, help="streams per page (default 50)")
    p.add_argument("--cursor", help="the next_cursor a previous page printed")
    p.add_argument("--owner", help="only streams of this owner")
    p.set_defaults(run=lambda args: run(lambda ops: _streams(ops, args)))

    p = subparsers.add_parser("show", parents=[common], help="a stream's status, timings, usage and error")
    p.add_argument("stream_id", metavar="ID")
    p.set_defaults(run=lambda args: run(lambda ops: _show(ops, args)))

    p = subparsers.add_parser("cancel", parents=[common], help="cancel a stream (as POST /api/streams/ID/cancel)")
    p.add_argument("stream_id", metavar="ID")
    p.set_defaults(run=lambda args: run(lambda ops: _cancel(ops, args)))


def _row(info: StreamInfo, now: datetime) -> list[str]:
    end = info.finished_at or (now if info.started_at else None)
    return [
        info.id,
        info.status.value,
        clip(info.model, 32),
        ago(info.created_at, now),
        seconds(between(info.created_at, info.first_token_at)),
        seconds(between(info.started_at, end)),
        str(info.chars),
        str(info.attempt),
        info.worker or "-",
        info.error.code if info.error else "",
    ]


async def _streams(ops: Ops, args: argparse.Namespace) -> int:
    query = StreamQuery(
        status=args.status,
        model=args.model,
        created_after_ms=created_after_ms(args.max_age),
        cursor=args.cursor,
        limit=max(1, args.limit),
        owner=args.owner,
    )
    try:
        page = await list_streams(ops.redis, ops.keys, query)
    except BadCursorError as exc:
        print(f"chatrelay: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print_json({"streams": page.streams, "next_cursor": page.next_cursor})
        return 0
    now = datetime.now(UTC)
    headers = ["ID", "STATUS", "MODEL", "CREATED", "TTFT", "DURATION", "CHARS", "ATTEMPT", "WORKER", "ERROR"]
    print(table(headers, [_row(info, now) for info in page.streams]) if page.streams else "no streams")
    if page.next_cursor:
        print(f"more: chatrelay streams --cursor {page.next_cursor}")
    return 0


async def _load(ops: Ops, stream_id: str) -> StreamInfo | None:
    meta = await ops.store.meta(stream_id) if is_stream_id(stream_id) else {}
    if not meta:
        print(f"chatrelay: no stream with id {stream_id!r}", file=sys.stderr)
        return None
    return decode_meta(stream_id, meta)


async def _show(ops: Ops, args: argparse.Namespace) -> int:
    info = await _load(ops, args.stream_id)
    if info is None:
        return 1
    if args.json:
        print_json(info)
        return 0
    now = datetime.now(UTC)
    usage = info.usage
    fields = [
        ("id", info.id),
        ("status", info.status.value),
        ("model", info.model + ("  (demo)" if info.demo else "")),
        ("attempt", str(info.attempt)),
        ("worker", info.worker or "-"),
        ("created", f"{info.created_at.isoformat()}  ({ago(info.created_at, now)})"),
        ("first token", f"after {seconds(between(info.created_at, info.first_token_at))}"),
        ("duration", seconds(between(info.started_at, info.finished_at or (now if info.started_at else None)))),
        (
            "chars",
            f"{info.chars}  ({info.text_chars} text, {info.reasoning_chars} reasoning, {info.refusal_chars} refusal)",
        ),
        ("tool calls", str(info.tool_calls)),
        ("finish reason", info.finish_reason or "-"),
        ("usage", f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion" if usage else "-"),
        ("error", f"{info.error.code}: {info.error.message}" if info.error else "-"),
    ]
    width = max(len(name) for name, _ in fields)
    print("\n".join(f"{name.ljust(width)}  {value}" for name, value in fields))
    message = await _message(ops, args.stream_id)
    dim = sys.stdout.isatty()
    if message.reasoning:
        print("\n[reasoning]\n" + (f"\x1b[2m{message.reasoning}\x1b[0m" if dim else message.reasoning))
    for call in message.tool_calls or []:
        print(f"\n[tool call] {call.function.name}({call.function.arguments})  id {call.id}")
    if message.refusal:
        print("\n[refusal]\n" + message.refusal)
    if message.content:
        print("\n[answer]\n" + message.content)
    return 0


async def _message(ops: Ops, stream_id: str) -> AssistantMessage:
    """The assistant message after the last reset, from the stored events."""
    builder = MessageBuilder()
    after = b"0-0"
    while entries := await ops.store.read_after(stream_id, after):
        builder.add_all(entries)
        after = entries[-1][0]
    return builder.message()


async def _cancel(ops: Ops, args: argparse.Namespace) -> int:
    result = await ops.store.cancel(args.stream_id) if is_stream_id(args.stream_id) else CancelResult.MISSING
    if result == CancelResult.MISSING:
        print(f"chatrelay: no stream with id {args.stream_id!r}", file=sys.stderr)
        return 1
    if args.json:
        print_json({"id": args.stream_id, "status": result.value})
    elif result == CancelResult.REQUESTED:
        print(f"{args.stream_id}: cancel requested; the worker is closing its upstream request")
    elif result == CancelResult.CANCELLED:
        print(f"{args.stream_id}: cancelled")
    else:
        print(f"{args.stream_id}: already ended ({result.value})")
    return 0
