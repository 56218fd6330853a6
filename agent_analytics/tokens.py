"""Bearer tokens of the HTTP service (`agent-analytics serve`), each with one scope.

`ingest` may send data (POST /v1/traces, /v1/events), `read` may fetch numbers (the export
and metrics endpoints); neither implies the other. A token is shown once, when it is
created; the store (`<home>/tokens.json`, mode 0600, replaced atomically) keeps only its
SHA-256 hash, its name, scope and creation time. A fast hash is the right one here: a slow
password hash protects secrets a person chose, which can be guessed; a token is 32 random
bytes, which cannot, and a fast hash keeps checking every request cheap. Hashes are compared
with `hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from agent_analytics.files import write_atomically
from agent_analytics.warehouse import wait_for_flock

PREFIX = "aat_"  # recognisable in a config file or a secret scanner's rules
SCOPES = ("ingest", "read")
FILE_NAME = "tokens.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class TokenError(ValueError):
    """A token command we cannot carry out, or a store we cannot read; one line for the user."""


@dataclass(frozen=True)
class Token:
    name: str
    scope: str
    created: str  # ISO 8601, UTC
    sha256: str  # hex digest of the whole token, prefix included


def tokens_path(home: Path) -> Path:
    return home / FILE_NAME


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def load_tokens(path: Path) -> list[Token]:
    """The stored tokens (none when the store does not exist yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise TokenError(f"cannot read the token store {path}: {exc.strerror or exc}") from None
    try:
        rows = json.loads(text)["tokens"]
        return [Token(str(r["name"]), str(r["scope"]), str(r["created"]), str(r["sha256"])) for r in rows]
    except (ValueError, KeyError, TypeError):
        raise TokenError(f"the token store {path} is not a token file written by agent-analytics") from None


def find_token(tokens: list[Token], presented: str) -> Token | None:
    """The stored token whose hash is the presented token's, compared in constant time."""
    presented_digest = digest(presented)
    found = None
    for token in tokens:
        if hmac.compare_digest(token.sha256, presented_digest):
            found = token
    return found


def create_token(path: Path, name: str, scope: str) -> str:
    """Store a new token named `name` with `scope`; return the token itself (shown once)."""
    if not _NAME.fullmatch(name):
        raise TokenError(f"token name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    if scope not in SCOPES:
        raise TokenError(f"scope {scope!r}: use one of {', '.join(SCOPES)}")
    token = PREFIX + secrets.token_urlsafe(32)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    with _store_lock(path):
        tokens = load_tokens(path)
        if any(t.name == name for t in tokens):
            raise TokenError(f"a token named {name!r} exists already (revoke it first, or choose another name)")
        _save(path, [*tokens, Token(name, scope, created, digest(token))])
    return token


def revoke_token(path: Path, name: str) -> Token:
    """Remove the token named `name` from the store; requests carrying it are refused from now on."""
    with _store_lock(path):
        tokens = load_tokens(path)
        kept = [t for t in tokens if t.name != name]
        if len(kept) == len(tokens):
            names = ", ".join(t.name for t in tokens) or "none"
            raise TokenError(f"no token named {name!r} (tokens: {names})")
        _save(path, kept)
    return next(t for t in tokens if t.name == name)


def _save(path: Path, tokens: list[Token]) -> None:
    text = json.dumps({"tokens": [asdict(t) for t in tokens]}, indent=2) + "\n"
    try:
        write_atomically(path, text)
        os.chmod(path, 0o600)  # the hashes are no secret, but nobody else needs them
    except OSError as exc:
        raise TokenError(f"cannot write the token store {path}: {exc.strerror or exc}") from None


@contextmanager
def _store_lock(path: Path) -> Iterator[None]:
    """Two token commands at once each read, change and write the whole store: one at a time."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+")
    except OSError as exc:
        raise TokenError(f"cannot open {lock_path}: {exc.strerror or exc}") from None
    with handle:  # closing the file releases the flock
        if not wait_for_flock(handle, 30.0):
            raise TokenError(f"another token command has held {lock_path} for over 30 s")
        yield
