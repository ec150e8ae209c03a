"""What the demo model says and how: replies, tokenization, and the per-request switches.

Switches come from server defaults (command-line flags) and, per request, from the model name in
query-string form: `chatrelay-demo?echo=1&delay_ms=80&error_after=20&scene=reasoning`.
"""

import random
import re
from dataclasses import dataclass, fields, replace
from urllib.parse import parse_qsl

DEMO_REPLY = """\
Hello! I am the **chatrelay demo model**: no `OPENAI_API_KEY` is set, so this answer comes from a local \
stand-in that streams a canned reply at a human pace.

What you are watching:

1. Your message went to `POST /api/streams`, which queued a job and answered at once.
2. A worker picked the job up and is writing my tokens into a Redis stream.
3. This page reads that stream over Server-Sent Events, remembering the last event id.

Try it: **reload the page now**. The answer carries on from where it was, with nothing missing and nothing \
doubled. Open a second tab, or cut the network for a moment; same thing.

| piece | job |
| --- | --- |
| API | accepts chats, relays events |
| worker | calls the model |
| Redis | holds every answer |

```python
print("Set OPENAI_API_KEY to talk to a real model.")
```
"""

# Text that trips naive SSE relays and JSON handling: newlines, fake SSE fields, emoji, other scripts.
TRICKY = 'line one\nline two\n\nevent: fake\ndata: x\n\n🙂👩‍💻 naïve café — 中文 العربية हिन्दी \\ "quoted" \r\n'

_TOKEN = re.compile(r"\S+\s*|\s+")


def tokenize(text: str) -> list[str]:
    """Word-sized tokens whose concatenation is exactly `text`."""
    return _TOKEN.findall(text)


@dataclass(frozen=True, slots=True)
class Script:
    """How one reply is produced. Counts are in tokens."""

    delay_ms: float = 50.0
    ttft_ms: float = 0.0
    tokens: int = 0  # 0: the canned reply as it is; N: N tokens of generated text
    echo: bool = False  # reply with the last user message, verbatim
    tricky: bool = False  # mix TRICKY text into generated replies
    seed: int = 0
    status: int = 0  # answer this HTTP status (429, 500, ...) instead of streaming
    error_after: int = -1  # send an error event after this many tokens
    stall_after: int = -1  # stop sending (keep the connection open) after this many tokens
    disconnect_after: int = -1  # drop the connection abruptly after this many tokens
    finish_reason: str = "stop"
    stamp: bool = False  # record each token's emit time (the benchmark's side channel: `/_demo/requests`)
    # What else the reply says (`demo_upstream.scenes`): text, reasoning, tool_call, parallel_tools, agent, refusal,
    # azure, images; and the delta field reasoning comes in (`reasoning_content` as DeepSeek, `reasoning` as vLLM).
    scene: str = "text"
    reasoning_field: str = "reasoning_content"
    # The name of a recorded SSE body in the server's `--replay-dir` to send instead, event by event.
    replay: str = ""

    def with_options(self, model: str) -> "Script":
        """The script with the model name's `?key=value&...` options applied."""
        if "?" not in model:
            return self
        known = {f.name: f.type for f in fields(self)}
        changes: dict[str, object] = {}
        for key, value in parse_qsl(model.split("?", 1)[1]):
            kind = known.get(key)
            if kind is None:
                continue
            if kind in ("bool", bool):
                changes[key] = value not in ("0", "false", "")
            elif kind in ("int", int):
                changes[key] = int(value)
            elif kind in ("float", float):
                changes[key] = float(value)
            else:
                changes[key] = value
        return replace(self, **changes)  # type: ignore[arg-type]

    def reply_tokens(self, messages: list[dict[str, object]]) -> list[str]:
        if self.echo:
            users = [m for m in messages if m.get("role") == "user"]
            return tokenize(str(users[-1]["content"])) if users else []
        if self.tokens <= 0:
            return tokenize(DEMO_REPLY)
        rng = random.Random(self.seed)
        words = tokenize(DEMO_REPLY.replace("\n", " ")) + (tokenize(TRICKY) if self.tricky else [])
        out = [rng.choice(words) for _ in range(self.tokens)]
        if self.tricky:
            out[len(out) // 2 : len(out) // 2] = tokenize(TRICKY)
            out = out[: self.tokens]
        return out
