"""Bearer tokens on every data endpoint: 401 without a known token, 403 with the wrong scope.

The store is re-read when its file changes (checked on every request), so a token created or
revoked while the server runs counts from the next request.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from agent_analytics.tokens import Token, TokenError, find_token, load_tokens
from service.errors import ApiError, unavailable

bearer = HTTPBearer(auto_error=False, description="a token made by `agent-analytics tokens create --scope ingest|read`")
CHALLENGE = {"WWW-Authenticate": "Bearer"}


class TokenStore:
    """The tokens of `path`, read again only when the file is replaced or changed."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._tokens: list[Token] = []

    def tokens(self) -> list[Token]:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return []
        key = (info.st_ino, info.st_mtime_ns, info.st_size)
        with self._lock:
            if key != self._key:
                self._tokens, self._key = load_tokens(self.path), key
            return self._tokens


def require(scope: str):
    """A dependency admitting requests whose bearer token has `scope`."""

    def check(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> Token:
        if credentials is None:
            raise ApiError(401, "missing bearer token: send the header 'Authorization: Bearer <token>'", CHALLENGE)
        return check_token(request, credentials.credentials, scope)

    return check


def check_token(request: Request, presented: str, scope: str) -> Token:
    """The stored token `presented` is, if it has `scope`: 401 when unknown or revoked, 403
    with another scope, 503 when the store cannot be read. The token is never in a message."""
    try:
        token = find_token(request.app.state.tokens.tokens(), presented)
    except TokenError as exc:
        raise unavailable(f"the token store cannot be read: {exc}", 60) from None
    if token is None:
        raise ApiError(401, "unknown or revoked token", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if token.scope != scope:
        raise ApiError(403, f"token {token.name!r} has the scope {token.scope}; this endpoint needs {scope}")
    return token
