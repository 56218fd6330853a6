"""User ids as outputs show them: as given, or replaced by a keyed hash for privacy.

With AGENT_ANALYTICS_HASH_USER_IDS on, every output (metrics document, terminal view, dashboard,
reports, exports, the `--user` view) shows `HMAC-SHA256(key, user_id)` instead of the id: the
first 16 hex digits, prefixed `u_` (64 bits: two ids of a million share a hash with odds of about
3 in 100 million). The same id always gives the same hash under the same key, so rows of one user
can still be matched across outputs, and without the key the id cannot be recovered by hashing
guessed ids. Only the ids an output holds are hashed (at most a few dozen), in Python, after the
SQL has ranked them.
"""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "u_"
HEX_DIGITS = 16


def shown_user_id(user_id: str, key: str | None) -> str:
    """`user_id` as outputs show it: itself without a key, else its keyed hash."""
    if key is None:
        return user_id
    digest = hmac.new(key.encode(), user_id.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()
    return PREFIX + digest[:HEX_DIGITS]
