"""CSRF protection for state-changing requests (every method but GET, HEAD and OPTIONS on `/api/`, and on `/v1/`
when the request carries no API key).

Two checks, both cheap and both needed by browsers only:
- the body must be declared JSON (`Content-Type: application/json`): an HTML form cannot send that, and a
  script on another site cannot send it without a CORS preflight the API refuses (415 otherwise);
- when the request carries an `Origin` (browsers add it to cross-site requests), it must be the API's own
  origin (matched against `Host` / `X-Forwarded-Host`) or one listed in `CHATRELAY_CORS_ORIGINS` (403 otherwise).
The session cookie is also SameSite=Lax, so a cross-site POST does not carry it in the first place.
"""

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import send_error

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PROTECTED = ("/api/", "/v1/")


def is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


class CsrfMiddleware:
    def __init__(self, app: ASGIApp, allowed_origins: frozenset[str]) -> None:
        self.app = app
        self.allowed_origins = allowed_origins

    def _origin_allowed(self, origin: str, headers: Headers) -> bool:
        if origin.rstrip("/") in self.allowed_origins:
            return True
        netloc = urlsplit(origin).netloc.lower()
        own = {headers.get("host", "").lower()}
        own.update(h.strip().lower() for h in headers.get("x-forwarded-host", "").split(",") if h.strip())
        return bool(netloc) and netloc in own

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS or not scope["path"].startswith(_PROTECTED):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["path"].startswith("/v1/") and "authorization" in headers:
            # OpenAI's SDKs send a key and no body (so no Content-Type) on `cancel` and `DELETE`; a page on another
            # site cannot add an Authorization header without a CORS preflight, which is refused.
            await self.app(scope, receive, send)
            return
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, headers):
            await send_error(
                send,
                403,
                "forbidden_origin",
                f"requests from origin {origin[:200]!r} are not allowed; list it in CHATRELAY_CORS_ORIGINS",
            )
            return
        if not is_json(headers.get("content-type", "")):
            await send_error(
                send, 415, "unsupported_media_type", "state-changing requests must send Content-Type: application/json"
            )
            return
        await self.app(scope, receive, send)
