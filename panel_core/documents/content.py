"""What a file is: announced by its first bytes, then proven by parsing all of it.

Names and browser-sent types are not trusted. The first bytes pick the type while the file
streams in; once it is stored, ``check_structure`` has the maintained parsers (qpdf through
pikepdf, Pillow) read the whole file, so a PDF, PNG or JPEG header in front of something else
(a web page, a script) is refused.
"""

from __future__ import annotations

import enum
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pikepdf
from PIL import Image, ImageSequence, PngImagePlugin

PDF: Final = "application/pdf"
PNG: Final = "image/png"
JPEG: Final = "image/jpeg"

# The types a requested document may have, and the extension each is served with.
ALLOWED: Final = {PDF: "pdf", PNG: "png", JPEG: "jpg"}
# Enough of the head of a file to recognise every allowed type.
SNIFF_BYTES: Final = 16

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"

# Room for a phone's usual 12 MP photo or an A4 page scanned at 600 dpi (35 MP), while one
# upload being decoded holds at most 160 MB (4 bytes a pixel) of the server's memory.
MAX_IMAGE_PIXELS: Final = 40_000_000


def detect(head: bytes) -> str | None:
    """The media type these leading bytes announce, if it is one the panel accepts."""
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(_PNG_SIGNATURE):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    return None


class Flaw(enum.Enum):
    """Why a file whose first bytes looked right is still refused."""

    DAMAGED = "damaged"
    ENCRYPTED = "encrypted"
    ACTIVE_CONTENT = "active-content"
    TOO_MANY_PIXELS = "too-many-pixels"


def check_structure(path: Path, media_type: str) -> Flaw | None:
    """Parse the whole stored file as the type its first bytes announced; None if it is one.

    Blocking (it decodes the file): run it in a worker thread. The parsers read the file from
    disk as they go, so memory follows the decoded image, never the size of the file.
    """
    if media_type == PDF:
        return _check_pdf(path)
    if media_type in (PNG, JPEG):
        return _check_image(path, media_type)
    return Flaw.DAMAGED


# What qpdf reports a broken file with, through pikepdf, as objects are read on demand.
_PDF_ERRORS = (pikepdf.PdfError, RuntimeError, ValueError, TypeError, KeyError, IndexError)
# What Pillow's decoders raise on a damaged or hostile file.
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, TypeError, EOFError, IndexError, struct.error)


def _check_pdf(path: Path) -> Flaw | None:
    if not _pdf_ends_with_eof_marker(path):
        return Flaw.DAMAGED
    try:
        # Recovery would rebuild a missing or wrong cross-reference table by scanning the
        # bytes, which is how a page of HTML with a PDF header gets "opened"; a real PDF needs
        # none.
        with pikepdf.open(path, attempt_recovery=False) as pdf:
            return Flaw.ACTIVE_CONTENT if _has_active_content(pdf) else None
    except pikepdf.PasswordError:
        return Flaw.ENCRYPTED
    except _PDF_ERRORS:
        return Flaw.DAMAGED


# PDF 2.0, 7.2.3: the white-space characters.
_PDF_WHITESPACE: Final = b"\0\t\n\f\r "
_EOF_MARKER: Final = b"%%EOF"
_TAIL_BLOCK: Final = 4096


def _pdf_ends_with_eof_marker(path: Path) -> bool:
    """The last thing in the file is %%EOF: nothing was appended after the document."""
    with path.open("rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - _TAIL_BLOCK)
            handle.seek(start)
            content = handle.read(end - start).rstrip(_PDF_WHITESPACE)
            if content:
                last = start + len(content)
                break
            end = start
        else:
            return False
        start = max(0, last - len(_EOF_MARKER))
        handle.seek(start)
        return handle.read(last - start) == _EOF_MARKER


# Actions that run code: JavaScript in the viewer, or another program on the computer.
_ACTIVE_ACTIONS: Final = (pikepdf.Name.JavaScript, pikepdf.Name.Launch)


def _has_active_content(pdf: pikepdf.Pdf) -> bool:
    """JavaScript or Launch actions anywhere a viewer runs them, on opening or on a click."""
    root = pdf.Root
    names = root.get("/Names")
    if isinstance(names, pikepdf.Dictionary) and "/JavaScript" in names:
        return True
    holders: list[pikepdf.Object] = [root]
    for page in pdf.pages:
        holders.append(page.obj)
        holders.extend(_linked(page.obj.get("/Annots")))
    acroform = root.get("/AcroForm")
    if isinstance(acroform, pikepdf.Dictionary):
        holders.extend(_linked(acroform.get("/Fields"), "/Kids"))
    outlines = root.get("/Outlines")
    if isinstance(outlines, pikepdf.Dictionary):
        holders.extend(_linked(outlines.get("/First"), "/First", "/Next"))
    return any(_is_active(action) for holder in holders for action in _actions(holder))


def _actions(holder: pikepdf.Object) -> Iterator[pikepdf.Dictionary]:
    """The actions a catalog, page, annotation, field or bookmark triggers, with their sequels."""
    triggers = [holder.get("/OpenAction"), holder.get("/A")]
    additional = holder.get("/AA")
    if isinstance(additional, pikepdf.Dictionary):
        triggers.extend(additional.values())
    for trigger in triggers:
        if isinstance(trigger, pikepdf.Dictionary):
            yield from _linked(trigger, "/Next")


def _is_active(action: pikepdf.Dictionary) -> bool:
    return action.get("/S") in _ACTIVE_ACTIONS or "/JS" in action


def _linked(start: object, *links: str) -> Iterator[pikepdf.Dictionary]:
    """The dictionaries reachable from ``start`` (one, or an array) through the ``links`` keys.

    Each is visited once: a hostile file can make these chains loop.
    """
    seen: set[tuple[int, int]] = set()
    pending = [start]
    while pending:
        node = pending.pop()
        if isinstance(node, pikepdf.Array):
            pending.extend(node)
            continue
        if not isinstance(node, pikepdf.Dictionary):
            continue
        if node.is_indirect:
            if node.objgen in seen:
                continue
            seen.add(node.objgen)
        yield node
        pending.extend(node[link] for link in links if link in node)


# The Pillow plugin that may open each type, and the formats it may report: a JPEG carrying
# more pictures (a phone's multi-picture file) is opened by the JPEG plugin as "MPO".
_PILLOW_PLUGIN: Final = {PNG: "PNG", JPEG: "JPEG"}
_PILLOW_FORMATS: Final = {PNG: ("PNG",), JPEG: ("JPEG", "MPO")}


def _check_image(path: Path, media_type: str) -> Flaw | None:
    ends_right = _png_ends_with_iend(path) if media_type == PNG else _jpeg_ends_with_eoi(path)
    if not ends_right:
        return Flaw.DAMAGED
    try:
        with Image.open(path, formats=[_PILLOW_PLUGIN[media_type]]) as image:
            if image.format not in _PILLOW_FORMATS[media_type]:
                return Flaw.DAMAGED
            for frame in ImageSequence.Iterator(image):
                # Checked before decoding: Pillow's own bomb check only errs at twice its
                # default of 89 MP.
                if frame.width * frame.height > MAX_IMAGE_PIXELS:
                    return Flaw.TOO_MANY_PIXELS
                frame.load()
    except Image.DecompressionBombError:
        return Flaw.TOO_MANY_PIXELS
    except _IMAGE_ERRORS:
        return Flaw.DAMAGED
    return None


def _png_ends_with_iend(path: Path) -> bool:
    """The chunks, walked with Pillow's reader, run whole to an IEND that ends the file."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(len(_PNG_SIGNATURE))
        chunks = PngImagePlugin.ChunkStream(handle)
        try:
            while True:
                kind, position, length = chunks.read()
                # Every chunk's data is followed by its 4-byte CRC.
                end = position + length + 4
                if end > size:
                    return False
                if kind == b"IEND":
                    return end == size
                handle.seek(end)
        except (SyntaxError, ValueError, struct.error):
            return False


def _jpeg_ends_with_eoi(path: Path) -> bool:
    """The file ends with the End Of Image marker, so nothing follows the (last) picture."""
    with path.open("rb") as handle:
        handle.seek(-2, os.SEEK_END)
        return handle.read(2) == b"\xff\xd9"
