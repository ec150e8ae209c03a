"""The AI SDK's UI message stream, framed from a stored chatrelay stream: a pure state machine, one per response.

The protocol is vercel/ai's: chunk schemas in `packages/ai/src/ui-message-stream/ui-message-chunks.ts`, one JSON
object per `data:` line ending with `data: [DONE]` (`json-to-sse-transform-stream.ts`), read by the client in
`packages/ai/src/ui/process-ui-message-stream.ts`. What this module holds to, each where a client breaks without it:

- Only fields that ai 5.0.0 accepts. Its chunk schemas (and those of ai up to 5.0.216 and 6.0.230) are strict
  objects that reject any unknown field, and every version rejects an unknown chunk type. So the finish reason
  travels in the `finish` chunk's message metadata (its own `finishReason` field came in 5.0.92), `abort` is bare
  (`reason` came in 6.0.15), and `reset-step` (7.0.70) goes only to clients that ask for it (`FEATURES`).
- The same entries give the same bytes: `start` carries the message id stored with the chat, and part ids count
  parts within an attempt (`text-1-0`), so every replay is identical and a client that already shows the message
  replaces it (the clients match on `start.messageId`) instead of adding a second one.
- A retried attempt (`reset`) never leaves the dead attempt's parts in a message: see `_reset`.
- A replay of an answer that continues a message (the follow-up after tool results) starts with that message's
  earlier parts (`recap`): a resuming client builds the message afresh from the replay (ai >= 5.0.233, 6.0.250)
  and would otherwise lose the tool calls and their results.
"""

from typing import Any

import orjson

from contract.store import RawEntry, is_terminal_entry

# What a client may opt in to with the `X-Chatrelay-UI-Features` request header, for chunks and fields that older
# clients reject: `finish-reason` (the `finish` chunk's own field, ai >= 5.0.92), `reset-step` (ai >= 7.0.70).
FEATURES = frozenset({"finish-reason", "reset-step"})
# The `errorText` code of a response cut short by a retried attempt (`<code>: <message>`, as every error here).
RETRYING = "retrying"

DONE = b"data: [DONE]\n\n"
_START_STEP = b'data: {"type":"start-step"}\n\n'
_FINISH_STEP = b'data: {"type":"finish-step"}\n\n'
_RESET_STEP = b'data: {"type":"reset-step"}\n\n'
_ABORT = b'data: {"type":"abort"}\n\n'
# OpenAI's finish reasons in the AI SDK's words (`FinishReason` in `@ai-sdk/provider`); anything else is `other`.
_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool-calls",
    "function_call": "tool-calls",
    "content_filter": "content-filter",
}
# A stored text payload is exactly `{"text":<JSON string>}` (`contract.events.encode_text`): the string is
# spliced into the chunk as it is, not decoded and encoded again, on the per-token path.
_TEXT_HEAD = b'{"text":'


def chunk(value: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(value) + b"\n\n"


def parse_features(header: str | None) -> frozenset[str]:
    """The known features named in a comma-separated header value; unknown ones are ignored."""
    if not header:
        return frozenset()
    return frozenset(name.strip().lower() for name in header.split(",")) & FEATURES


def _text_json(data: bytes) -> bytes:
    # The stored payload's text as it is when `text` is its only field: a raw `","` can only separate fields (inside
    # a JSON string a quote is escaped), and an attempt's first `reasoning` event also names its `field`.
    if data.startswith(_TEXT_HEAD) and data.endswith(b'"}') and b'","' not in data:
        return data[len(_TEXT_HEAD) : -1]
    return orjson.dumps(orjson.loads(data)["text"])


class _Call:
    """One tool call of the current attempt, from its fragments."""

    __slots__ = ("arguments", "id", "name", "started")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []
        self.started = False


class UiMessageFraming:
    """Stored entries to UI message stream chunks for one response (see the module docstring)."""

    def __init__(
        self, message_id: str, features: frozenset[str] = frozenset(), recap: list[dict[str, Any]] | None = None
    ) -> None:
        self.message_id = message_id
        self.recap = recap or []
        self.finish_reason_field = "finish-reason" in features
        self.reset_step = "reset-step" in features
        self.ended = False
        self._step_open = False
        self._begin_attempt(1)

    def _begin_attempt(self, attempt: int) -> None:
        self._attempt = attempt
        self._part = b""  # id of the open text or reasoning part, if any
        self._part_kind = b""  # b"text" or b"reasoning"
        self._delta_head = b""
        self._parts = 0  # parts this attempt opened: the next part's id
        self._calls: dict[int, _Call] = {}
        self._said = False  # whether any of this attempt's answer went out (a part or a tool call)

    # The Framing interface (`api.sse.Framing`) ----------------------------------------------------------------

    def frame(self, entry: RawEntry) -> tuple[bytes, bool]:
        """The chunks of one stored entry, and whether the response ends after them (a terminal entry, or the
        framing's own end)."""
        out = self.entry(entry)
        return out, self.ended or is_terminal_entry(entry[1])

    def opening(self) -> bytes:
        # `retry:` means nothing to the AI SDK's reader (it reconnects by itself, with a GET): not sent.
        return chunk({"type": "start", "messageId": self.message_id}) + recap_chunks(self.recap)

    def outage(self) -> bytes:
        return (
            chunk({"type": "error", "errorText": "redis_unavailable: the event store is unreachable; resume later"})
            + DONE
        )

    def entry(self, entry: RawEntry) -> bytes:
        fields = entry[1]
        kind, data = fields[b"t"], fields[b"d"]
        if kind == b"delta" or kind == b"refusal":
            # A refusal is what the model says instead of an answer: shown as text, where every UI looks.
            return self._text(b"text", data)
        if kind == b"reasoning":
            return self._text(b"reasoning", data)
        if kind == b"tool_call":
            return self._tool_call(orjson.loads(data))
        if kind == b"start":
            self._attempt = int(orjson.loads(data)["attempt"])
            return self._open_step()
        if kind == b"reset":
            return self._reset(int(orjson.loads(data)["attempt"]))
        if kind == b"done":
            return self._done(orjson.loads(data))
        if kind == b"error":
            error = orjson.loads(data)
            self.ended = True
            return chunk({"type": "error", "errorText": f"{error['code']}: {error['message']}"}) + DONE
        if kind == b"cancelled":
            self.ended = True
            return self._close_part() + _ABORT + DONE
        return b""  # a kind this surface has no chunk for: nothing, rather than a chunk old clients reject

    # Parts --------------------------------------------------------------------------------------------------

    def _open_step(self) -> bytes:
        if self._step_open:
            return b""
        self._step_open = True
        return _START_STEP

    def _text(self, kind: bytes, data: bytes) -> bytes:
        head = b""
        if self._part_kind != kind:
            head = self._close_part() + self._open_step() + self._open_part(kind)
        return head + self._delta_head + _text_json(data) + b"}\n\n"

    def _open_part(self, kind: bytes) -> bytes:
        part = b"%s-%d-%d" % (kind, self._attempt, self._parts)
        self._parts += 1
        self._said = True
        self._part, self._part_kind = part, kind
        self._delta_head = b'data: {"type":"' + kind + b'-delta","id":"' + part + b'","delta":'
        return b'data: {"type":"' + kind + b'-start","id":"' + part + b'"}\n\n'

    def _close_part(self) -> bytes:
        if not self._part:
            return b""
        end = b'data: {"type":"' + self._part_kind + b'-end","id":"' + self._part + b'"}\n\n'
        self._part = self._part_kind = b""
        return end

    def _tool_call(self, fragment: dict[str, Any]) -> bytes:
        # Text after a tool call is a new part, so the message's parts keep the order they were said in.
        out = self._close_part() + self._open_step()
        index = int(fragment["index"])
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = _Call()
            self._said = True
        call.id = call.id or fragment.get("id") or ""
        call.name = call.name or fragment.get("name") or ""
        arguments: str = fragment.get("arguments") or ""
        call.arguments.append(arguments)
        if call.started:
            if arguments:
                out += chunk({"type": "tool-input-delta", "toolCallId": call.id, "inputTextDelta": arguments})
        elif call.name:
            out += self._start_call(index, call)  # the part's type is `tool-<name>`: it waits for the name
        return out

    def _start_call(self, index: int, call: _Call) -> bytes:
        call.started = True
        call.id = call.id or f"call-{self._attempt}-{index}"  # a server that sent no id
        call.name = call.name or "tool"
        out = chunk({"type": "tool-input-start", "toolCallId": call.id, "toolName": call.name})
        so_far = "".join(call.arguments)
        if so_far:
            out += chunk({"type": "tool-input-delta", "toolCallId": call.id, "inputTextDelta": so_far})
        return out

    def _finish_calls(self) -> bytes:
        """`tool-input-available` for every call once the answer is done (only then are its arguments whole), which
        is what makes the client run `onToolCall`; arguments that are not JSON end the call as an error."""
        out = b""
        for index, call in sorted(self._calls.items()):
            if not call.started:
                out += self._start_call(index, call)
            arguments = "".join(call.arguments)
            try:
                value = orjson.loads(arguments) if arguments.strip() else {}
            except orjson.JSONDecodeError:
                error = f"the model's arguments for {call.name} are not valid JSON: {arguments[:200]}"
                out += chunk({"type": "tool-output-error", "toolCallId": call.id, "errorText": error})
                continue
            out += chunk({"type": "tool-input-available", "toolCallId": call.id, "toolName": call.name, "input": value})
        return out

    # Endings ------------------------------------------------------------------------------------------------

    def _done(self, done: dict[str, Any]) -> bytes:
        out = self._close_part() + self._finish_calls()
        if self._step_open:
            out += _FINISH_STEP
        reason = _FINISH_REASONS.get(done.get("finish_reason") or "", "other")
        metadata: dict[str, Any] = {"finishReason": reason}
        if done.get("usage"):
            metadata["usage"] = done["usage"]
        finish: dict[str, Any] = {"type": "finish"}
        if self.finish_reason_field:
            finish["finishReason"] = reason
        finish["messageMetadata"] = metadata
        self.ended = True
        return out + chunk(finish) + DONE

    def _reset(self, attempt: int) -> bytes:
        """The worker was lost and attempt `attempt` starts the answer over. The client must drop what it has of
        the dead attempt, and a UI message stream can remove parts only with `reset-step` (ai >= 7.0.70):
        - nothing of the dead attempt went out yet: the new attempt simply continues the message;
        - the client asked for `reset-step`: sent, and the new attempt's parts follow in the same step;
        - otherwise the response ends here with an `error` (`retrying: ...`, after a transient
          `data-chatrelay-reset` chunk for `onData`): the message is marked failed, never silently wrong, and a
          resume (a reload, or `resumeStream()` in the app's `onError`) replays only the new attempt."""
        said = self._said
        self._begin_attempt(attempt)
        if not said:
            return b""
        if self.reset_step:
            return _RESET_STEP
        self.ended = True
        message = f"{RETRYING}: the answer is being generated again (attempt {attempt}); resume the stream to read it"
        reset = {"type": "data-chatrelay-reset", "data": {"attempt": attempt}, "transient": True}
        return chunk(reset) + chunk({"type": "error", "errorText": message}) + DONE


def _tool_name(part: dict[str, Any]) -> str:
    kind = str(part["type"])
    return str(part.get("toolName") or "") if kind == "dynamic-tool" else kind.removeprefix("tool-")


def _recap_tool(part: dict[str, Any]) -> bytes:
    """A finished tool part as chunks that rebuild it without calling `onToolCall` again (no
    `tool-input-available`): its input arrives as one delta, then its result."""
    call_id, state = part.get("toolCallId"), part.get("state")
    if not isinstance(call_id, str) or state not in ("output-available", "output-error", "output-denied"):
        return b""  # a call without a result was not sent to the model either (`api.ai_sdk.request`)
    dynamic = {"dynamic": True} if part["type"] == "dynamic-tool" else {}
    out = chunk({"type": "tool-input-start", "toolCallId": call_id, "toolName": _tool_name(part), **dynamic})
    if part.get("input") is not None:
        out += chunk(
            {"type": "tool-input-delta", "toolCallId": call_id, "inputTextDelta": orjson.dumps(part["input"]).decode()}
        )
    if state == "output-available":
        return out + chunk(
            {"type": "tool-output-available", "toolCallId": call_id, "output": part.get("output"), **dynamic}
        )
    # `tool-output-denied` is newer than ai 5.0.0: a denial comes back as the error it was for the model.
    error = str(part.get("errorText") or "") if state == "output-error" else "Tool execution denied."
    return out + chunk({"type": "tool-output-error", "toolCallId": call_id, "errorText": error, **dynamic})


def recap_chunks(parts: list[dict[str, Any]]) -> bytes:
    """Chunks that rebuild a message's parts (the continued message of a replay), each with an id of its own."""
    out: list[bytes] = []
    step = False
    for j, part in enumerate(parts):
        kind = part.get("type")
        if not isinstance(kind, str):
            continue
        if kind == "step-start":
            out.append((_FINISH_STEP if step else b"") + _START_STEP)
            step = True
        elif kind in ("text", "reasoning") and isinstance(part.get("text"), str):
            pid = f"recap-{j}"
            out.append(chunk({"type": f"{kind}-start", "id": pid}))
            out.append(chunk({"type": f"{kind}-delta", "id": pid, "delta": part["text"]}))
            out.append(chunk({"type": f"{kind}-end", "id": pid}))
        elif kind.startswith("tool-") or kind == "dynamic-tool":
            out.append(_recap_tool(part))
        elif kind == "file" and isinstance(part.get("url"), str) and isinstance(part.get("mediaType"), str):
            out.append(chunk({"type": "file", "url": part["url"], "mediaType": part["mediaType"]}))
        elif kind == "source-url" and isinstance(part.get("sourceId"), str) and isinstance(part.get("url"), str):
            title = {"title": part["title"]} if isinstance(part.get("title"), str) else {}
            out.append(chunk({"type": "source-url", "sourceId": part["sourceId"], "url": part["url"], **title}))
        elif kind.startswith("data-") and "data" in part:
            data_id = {"id": part["id"]} if isinstance(part.get("id"), str) else {}
            out.append(chunk({"type": kind, **data_id, "data": part["data"]}))
    if step:
        out.append(_FINISH_STEP)
    return b"".join(out)
