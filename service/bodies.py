"""Request bodies within the size limit, measured after decompression.

The limit is checked on the bytes as they arrive and again while gunzipping, a bounded piece
at a time, so a small gzip that would expand to gigabytes (a gzip bomb) is refused with 413
after at most the limit plus one byte has been inflated.
"""

from __future__ import annotations

import zlib

from fastapi import Request

from service.errors import ApiError

GZIP_WBITS = 16 + zlib.MAX_WBITS


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"the body is over the limit of {limit} bytes (AGENT_ANALYTICS_MAX_BODY_MB, after decompression)")


async def read_body(request: Request, limit: int) -> bytes:
    """The body as sent (still compressed), refused once it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def decoded(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body after its Content-Encoding (none, identity or gzip)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding == "gzip":
        return gunzip(body, limit)
    raise ApiError(415, f"Content-Encoding {content_encoding!r} is not supported: send gzip or no encoding")


def gunzip(data: bytes, limit: int) -> bytes:
    """`data` (one or more gzip members) inflated, never more than `limit` + 1 bytes of it."""
    out = bytearray()
    rest = data
    while rest:
        inflater = zlib.decompressobj(GZIP_WBITS)
        pending = rest
        try:
            while True:
                room = limit + 1 - len(out)
                out += inflater.decompress(pending, room)
                if len(out) > limit:
                    raise too_large(limit)
                pending = inflater.unconsumed_tail
                # the output was not cut at `room`, so with no input left nothing is held back
                if inflater.eof or not pending:
                    break
        except zlib.error as exc:
            raise ApiError(400, f"the body is not valid gzip ({exc})") from None
        if not inflater.eof:
            raise ApiError(400, "the gzip body is cut short (no end of stream)")
        rest = inflater.unused_data
    return bytes(out)
