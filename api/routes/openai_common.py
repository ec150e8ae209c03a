"""What the `/v1` routes share: finding a stream by its OpenAI id for a caller, and the catch-all 404."""

from fastapi import APIRouter

from api.auth import Caller
from api.deps import AppState
from api.openai_compat.errors import OpenAINotFoundError, OpenAIRoute
from contract.ids import is_stream_id
from contract.status import StreamInfo, decode_meta


def not_found(message: str, param: str | None = None) -> OpenAINotFoundError:
    return OpenAINotFoundError(message, param)


def stream_of(openai_id: str, prefix: str) -> str | None:
    """The stream id inside `resp_<id>` / `chatcmpl-<id>`, or None when it is not one."""
    stream_id = openai_id.removeprefix(prefix)
    return stream_id if openai_id.startswith(prefix) and is_stream_id(stream_id) else None


async def find_stream(
    state: AppState,
    caller: Caller,
    openai_id: str,
    prefix: str,
    what: str,
    change: bool = False,
    param: str | None = None,
) -> tuple[str, StreamInfo]:
    """The stream behind `openai_id` if the caller may read it (or change it); someone else's is answered exactly
    like a missing one, as on `/api`."""
    stream_id = stream_of(openai_id, prefix)
    meta = await state.store.meta(stream_id) if stream_id is not None else {}
    owner = meta.get(b"owner", b"").decode() or None
    allowed = caller.may_change(owner) if change else stream_id is not None and caller.may_read(stream_id, owner)
    if stream_id is None or not meta or not allowed:
        raise not_found(f"{what} with id '{openai_id[:64]}' not found.", param)
    return stream_id, decode_meta(stream_id, meta)


router = APIRouter(tags=["openai"], route_class=OpenAIRoute)


@router.api_route("/v1/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def v1_not_found(path: str) -> None:
    """Unknown `/v1/*` paths: an OpenAI-shaped 404 (this surface has Responses, Chat Completions and Models)."""
    raise not_found(f"chatrelay does not serve /v1/{path[:200]}")
