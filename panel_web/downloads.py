"""Files sent to the browser as downloads."""

from __future__ import annotations

import base64
from urllib.parse import quote

from litestar.response import Response


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the exact name per RFC 6266 / 5987."""
    fallback = "".join(
        ch if (ch.isascii() and ch.isalnum()) or ch in "._-" else "_" for ch in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def exact_bytes(content: bytes, *, media_type: str, filename: str, sha256: str) -> Response[bytes]:
    """A document whose fingerprint matters (a signed one, or one about to be signed):
    the bytes as they are, with the SHA-256 they were signed by for the reader to compare."""
    return Response(
        content,
        media_type=media_type,
        headers={
            "Content-Disposition": content_disposition(filename),
            "Cache-Control": "no-store",
            # RFC 9530: the digest of exactly these bytes, as the SMS code was bound to it.
            "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(sha256)).decode()}:",
        },
    )
