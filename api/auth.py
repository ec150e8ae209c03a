"""Who is calling, and what they may see: API keys, anonymous browser sessions and share links.

Every stream records its owner (`owner` in its meta hash) when it is created:
- `key:<name>` for a caller with `Authorization: Bearer <key>` (keys from `CHATRELAY_API_KEYS`, `name:key,...`);
- `session:<id>` for a browser: the first request without a key gets a signed, HttpOnly, SameSite=Lax cookie
  (`Secure` when the request came over https), valid on every replica that shares `CHATRELAY_SECRET_KEY`.
An admin key (`CHATRELAY_ADMIN_API_KEYS`) sees and may cancel every stream. A share link carries a signed,
expiring token that lets anyone read one stream (status and events), nothing else.

A stream the caller may not see is answered exactly like a missing one (404), so ids cannot be probed.
"""

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response

from api.errors import LinkExpiredError, UnauthorizedError
from contract.settings import Settings

log = logging.getLogger("chatrelay.api.auth")

SESSION_COOKIE = "chatrelay_session"
SESSION_MAX_AGE_SECONDS = 400 * 24 * 3600  # the longest lifetime browsers accept for a cookie
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, slots=True)
class Caller:
    """The identity a request acts as. `owner` is what new streams record; `None` for a share-link reader."""

    owner: str | None
    admin: bool = False
    # A share link grants reading this one stream and nothing else.
    shared_stream: str | None = None

    @property
    def limit_key(self) -> str:
        """Whose quota (SSE connections) this caller uses."""
        return self.owner if self.owner is not None else f"link:{self.shared_stream}"

    def may_read(self, stream_id: str, owner: str | None) -> bool:
        if self.shared_stream is not None:
            return stream_id == self.shared_stream
        return self.admin or (owner is not None and owner == self.owner)

    def may_change(self, owner: str | None) -> bool:
        return self.shared_stream is None and (self.admin or (owner is not None and owner == self.owner))


def parse_keys(raw: str) -> dict[str, str]:
    """`name:key,name:key` into {key: name}. Raises ValueError on a malformed entry (so a typo fails startup)."""
    keys: dict[str, str] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        name, sep, key = item.partition(":")
        if not sep or not _NAME.match(name) or len(key) < 16:
            raise ValueError(
                "API keys must be `name:key` pairs separated by commas, names of letters, digits and _.@- "
                "and keys of at least 16 characters"
            )
        keys[key] = name
    return keys


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Authenticator:
    """Resolves the caller of a request; signs and checks session cookies and share-link tokens."""

    def __init__(self, settings: Settings) -> None:
        secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
        if not secret:
            secret = secrets.token_hex(32)
            log.warning(
                "CHATRELAY_SECRET_KEY is not set: this process signs sessions and share links with a key of its own, "
                "which other replicas and restarts will not accept"
            )
        self._secret = secret.encode()
        self._keys = parse_keys(settings.api_keys.get_secret_value())
        self._admin_keys = parse_keys(settings.admin_api_keys.get_secret_value())
        self.allow_anonymous = settings.allow_anonymous
        self.has_admin_keys = bool(self._admin_keys)
        self.link_ttl = settings.share_link_ttl_seconds
        self.link_max_ttl = settings.share_link_max_ttl_seconds

    def _mac(self, purpose: bytes, data: bytes) -> str:
        return _b64(hmac.new(self._secret, purpose + b"\0" + data, hashlib.sha256).digest()[:24])

    # Sessions ---------------------------------------------------------------------------------------------

    def new_session_cookie(self) -> tuple[str, str]:
        """(owner, cookie value) of a fresh anonymous session."""
        session_id = secrets.token_hex(16)
        return f"session:{session_id}", f"{session_id}.{self._mac(b'session', session_id.encode())}"

    def session_owner(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        session_id, _, mac = cookie.partition(".")
        if not _SESSION_ID.match(session_id) or not hmac.compare_digest(
            mac, self._mac(b"session", session_id.encode())
        ):
            return None
        return f"session:{session_id}"

    # Share links ------------------------------------------------------------------------------------------

    def share_token(self, stream_id: str, ttl_seconds: int | None) -> tuple[str, int]:
        """A token that lets anyone read `stream_id` until it expires; (token, expiry in unix seconds)."""
        ttl = min(ttl_seconds or self.link_ttl, self.link_max_ttl)
        expires = int(time.time()) + ttl
        return f"{expires}.{self._mac(b'link', f'{stream_id}:{expires}'.encode())}", expires

    def check_share_token(self, stream_id: str, token: str) -> bool | None:
        """True if valid, None if it was valid but has expired, False if it is not a token for this stream."""
        expires, _, mac = token.partition(".")
        if not expires.isdigit() or len(expires) > 12:
            return False
        if not hmac.compare_digest(mac, self._mac(b"link", f"{stream_id}:{expires}".encode())):
            return False
        return True if int(expires) > time.time() else None

    # Callers ----------------------------------------------------------------------------------------------

    def _key_caller(self, key: str) -> Caller | None:
        # compare_digest over every configured key: no early exit that would time which prefix matched.
        found: Caller | None = None
        for known, name in self._admin_keys.items():
            if hmac.compare_digest(known.encode(), key.encode()):
                found = Caller(owner=f"key:{name}", admin=True)
        for known, name in self._keys.items():
            if hmac.compare_digest(known.encode(), key.encode()):
                found = found or Caller(owner=f"key:{name}")
        return found

    def resolve(self, request: Request, response: Response) -> Caller:
        """The caller of `request`; starts a session (a cookie on `response`) for a browser that has none."""
        authorization = request.headers.get("authorization")
        if authorization is not None:
            scheme, _, key = authorization.partition(" ")
            caller = self._key_caller(key.strip()) if scheme.lower() == "bearer" else None
            if caller is None:
                raise UnauthorizedError("the API key in the Authorization header is not valid")
            return caller
        stream_id = request.path_params.get("stream_id")
        token = request.query_params.get("token")
        if token is not None and isinstance(stream_id, str) and request.method == "GET":
            valid = self.check_share_token(stream_id, token)
            if valid is None:
                raise LinkExpiredError("this share link has expired; ask the stream's owner for a new one")
            if valid:
                return Caller(owner=None, shared_stream=stream_id)
        if not self.allow_anonymous:
            raise UnauthorizedError("an API key is required: send `Authorization: Bearer <key>`")
        owner = self.session_owner(request.cookies.get(SESSION_COOKIE))
        if owner is None:
            owner, cookie = self.new_session_cookie()
            response.set_cookie(
                SESSION_COOKIE,
                cookie,
                max_age=SESSION_MAX_AGE_SECONDS,
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
                path="/",
            )
        return Caller(owner=owner)


async def get_caller(request: Request, response: Response) -> Caller:
    # async, as `api.deps.get_state`: no thread-pool handoff per request.
    auth: Authenticator = request.app.state.chatrelay.auth
    return auth.resolve(request, response)


CallerDep = Annotated[Caller, Depends(get_caller)]
