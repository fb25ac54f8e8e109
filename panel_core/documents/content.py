"""What a file is, judged by its first bytes; names and browser-sent types are not trusted."""

from __future__ import annotations

from typing import Final

PDF: Final = "application/pdf"
PNG: Final = "image/png"
JPEG: Final = "image/jpeg"

# The types a requested document may have, and the extension each is served with.
ALLOWED: Final = {PDF: "pdf", PNG: "png", JPEG: "jpg"}
# Enough of the head of a file to recognise every allowed type.
SNIFF_BYTES: Final = 16


def detect(head: bytes) -> str | None:
    """The media type these leading bytes announce, if it is one the panel accepts."""
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    return None
