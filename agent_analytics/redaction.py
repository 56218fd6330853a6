"""Masking known secret values in any text: the one place every error text, log line and
metadata value that might carry a secret passes through.

A secret rarely shows up only verbatim. Python quotes it (`'\\x01'` for a control
character), JSON escapes it, urllib and http.client quote just the path of a URL or just its
port, percent-encoding changes it. `secret_forms` lists the forms a value takes in those
texts, so a URL whose secret is its path is masked also where an exception shows only the
path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, unquote, urlsplit

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words
MIN_PART_LENGTH = 8  # a URL part shorter than this ("/", "/hook") is not what makes it secret


def _quoted(value: str) -> set[str]:
    """How `value` reads inside a Python repr, a JSON string and percent-encoded."""
    url_quoted = quote(value, safe="/:?&=@;,+", errors="surrogateescape")
    return {value, repr(value)[1:-1], json.dumps(value)[1:-1], url_quoted, unquote(value)}


def _url_parts(value: str) -> set[str]:
    """The parts of a URL an error message may show alone: everything after the host, the
    path, the query and each of its values, the last path segment, the password."""
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        # not parseable as a URL: still mask what follows the first '/' after a scheme
        head, _, rest = value.partition("://")
        slash = rest.find("/")
        return {rest[slash:]} if head and slash >= 0 else set()
    if not parts.netloc:
        return set()
    after_host = value[value.find(parts.netloc) + len(parts.netloc):]
    found = {after_host, after_host.split("#", 1)[0], parts.path, parts.query, parts.path.rstrip("/").rsplit("/", 1)[-1]}
    found.update(v for _, v in parse_qsl(parts.query, keep_blank_values=True))
    if password:
        found.add(password)
    return {p for p in found if len(p) >= MIN_PART_LENGTH}


def secret_forms(value: str) -> set[str]:
    """Every form of `value` worth masking (at least MIN_SECRET_LENGTH characters each)."""
    forms: set[str] = set()
    for whole in {value, value.strip()}:
        for part in {whole} | _url_parts(whole):
            forms |= _quoted(part)
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


class Redactor:
    """Replaces every known secret (in each of its forms) with `***`."""

    def __init__(self, secrets: Iterable[str | None] = ()):
        forms = set()
        for secret in secrets:
            if secret and len(secret.strip()) >= MIN_SECRET_LENGTH:
                forms |= secret_forms(secret)
            elif secret and secret.strip():
                # A short secret (a 3-character SMTP password) is still masked where it stands
                # verbatim, at the price of masking the same letters elsewhere in the text.
                forms.add(secret)
        # longest first, so a URL is masked whole before its path is looked for
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: object) -> str:
        result = str(text)
        for form in self._forms:
            result = result.replace(form, MASK)
        return result

    def metadata(self, values: Mapping[str, object]) -> dict[str, object]:
        """Metadata with every string value redacted (numbers pass unchanged)."""
        return {k: v if isinstance(v, (int, float)) and not isinstance(v, bool) else self(v) for k, v in values.items()}
