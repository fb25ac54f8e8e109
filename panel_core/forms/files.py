"""A file picker's ``accept``: which of the files the panel keeps a field takes.

form-js passes ``accept`` to the file input as HTML's ``accept`` attribute: comma-separated
tokens, each a file name extension (``.pdf``), a media type (``application/pdf``) or one of
``audio/*``, ``video/*``, ``image/*``, compared without regard to case; tokens that are none
of these are ignored, and an ``accept`` with no valid token restricts nothing. A browser
only offers the matching files; the server enforces the same rule on what arrives.

The server knows a file's real type from its content (names and browser-sent types are not
trusted, see :mod:`panel_core.documents.content`), so an extension token stands for the type
files with that extension have: ``.jpg`` takes a JPEG whatever it is called, and a PNG named
``scan.pdf`` is not a PDF.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

# The types the panel keeps (panel_core.documents.content.ALLOWED), with the extensions
# their files have and the name a person knows the type by.
EXTENSIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "application/pdf": (".pdf",),
    "image/jpeg": (".jpg", ".jpeg", ".jpe", ".jfif", ".pjpeg", ".pjp"),
    "image/png": (".png",),
}
TYPE_NAMES: Final[Mapping[str, str]] = {
    "application/pdf": "PDF",
    "image/jpeg": "JPG",
    "image/png": "PNG",
}
_WILDCARDS = frozenset({"audio/*", "video/*", "image/*"})
_MEDIA_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")


def accept_tokens(accept: Any) -> list[str]:
    """The valid tokens of an ``accept`` value, lower-cased; none for anything else."""
    if not isinstance(accept, str):
        return []
    tokens = [token.strip().lower() for token in accept.split(",")]
    return [
        token
        for token in tokens
        if (token.startswith(".") and len(token) > 1)
        or token in _WILDCARDS
        or _MEDIA_TYPE.fullmatch(token)
    ]


def accepted_types(accept: Any) -> frozenset[str] | None:
    """The kept types ``accept`` lets through, or None when it restricts nothing."""
    tokens = accept_tokens(accept)
    if not tokens:
        return None
    return frozenset(
        media_type
        for media_type, extensions in EXTENSIONS.items()
        if any(
            token == media_type
            or token in extensions
            or (token in _WILDCARDS and media_type.startswith(token[:-1]))
            for token in tokens
        )
    )


def type_names(media_types: frozenset[str]) -> str:
    """The types as a person names them: "PDF", "JPG, PNG"."""
    return ", ".join(TYPE_NAMES[t] for t in EXTENSIONS if t in media_types)
