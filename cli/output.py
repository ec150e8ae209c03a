"""How the command line prints: aligned tables on a terminal, JSON with `--json`, short durations."""

import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def print_json(value: Any) -> None:
    """Pretty JSON on stdout; pydantic models as their JSON (what the HTTP API answers)."""

    def default(obj: Any) -> Any:
        if isinstance(obj, BaseModel):
            return obj.model_dump(mode="json")
        raise TypeError

    sys.stdout.write(orjson.dumps(value, default=default, option=orjson.OPT_INDENT_2).decode() + "\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = []
    for row in [list(headers), *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def parse_duration(text: str) -> float:
    """`90`, `90s`, `10m`, `2h`, `1d` as seconds (for argparse `type=`)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a duration: {text!r} (e.g. 90s, 10m, 2h, 1d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def seconds(value: float | None) -> str:
    """A duration for a table cell: `850ms`, `12.3s`, `4m05s`, `10m`, `2h10m`, `3d4h`; `-` when unknown."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 60:
        return f"{value:.1f}s"
    whole = int(value)
    if whole < 3600:
        big, small = f"{whole // 60}m", f"{whole % 60:02d}s"
    elif whole < 86400:
        big, small = f"{whole // 3600}h", f"{whole % 3600 // 60:02d}m"
    else:
        big, small = f"{whole // 86400}d", f"{whole % 86400 // 3600}h"
    return big if small.startswith(("00", "0h")) else big + small


def between(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "-"
    return seconds(max(0.0, ((now or datetime.now(UTC)) - moment).total_seconds())) + " ago"


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
