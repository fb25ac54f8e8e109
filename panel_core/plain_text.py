"""Text people type for other people to read (staff notes, chat messages): kept as plain
text, with the line breaks as typed and no other control characters."""

from __future__ import annotations

import unicodedata


def plain_text(raw: str) -> str:
    """One kind of line break, no control characters but tabs, no trailing spaces, no empty
    lines at either end; "" when nothing but white space was typed."""
    lines = raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept = "\n".join(
        "".join(ch for ch in line if ch == "\t" or unicodedata.category(ch)[0] != "C").rstrip()
        for line in lines
    ).strip("\n")
    return kept if kept.strip() else ""
