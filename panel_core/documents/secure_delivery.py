"""A case document made ready to leave by e-mail: as a PDF, encrypted with AES-256 under a
random password that travels separately, by SMS.

* PDFs are encrypted as they are; JPEG and PNG pictures (the other types an upload may have)
  are first laid out as a one-page PDF by Pillow, so the person opens every document the
  same way. Anything else (the plain text that signatures made before the PDF kept) is
  refused, with a message that says so.
* Encryption is the PDF standard's security handler revision 6 (ISO 32000-2): AES-256, the key
  derived from the password by iterated SHA-2. pikepdf (qpdf) writes it; any current reader
  opens it with the password.
* The password has 12 characters drawn by ``secrets`` from 56 letters and digits that cannot
  be mistaken for one another (about 70 bits); the owner password is another random value
  nobody keeps.
"""

from __future__ import annotations

import io
import secrets

import pikepdf
from PIL import Image

from panel_core.i18n import N_

PDF = "application/pdf"
PICTURES = frozenset({"image/jpeg", "image/png"})
# No 0/O/o, 1/l/I: the person types it from a phone screen into a PDF reader.
PASSWORD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"  # noqa: S105
PASSWORD_LENGTH = 12
# A picture is laid out so its longer side fills the longer side of an A4 page.
_A4_LONG_SIDE_INCHES = 11.69


class NotSendable(ValueError):
    """The document cannot be sent as a PDF; the message is a msgid for the staff's page."""


def new_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


def as_pdf(content: bytes, media_type: str) -> bytes:
    """The document as a PDF: itself, or a picture on a page of its own."""
    if media_type == PDF:
        return content
    if media_type not in PICTURES:
        raise NotSendable(
            N_("Only PDF documents and JPG or PNG pictures can be sent; this document is neither.")
        )
    with Image.open(io.BytesIO(content)) as picture:
        picture.load()
        page: Image.Image = picture
        if picture.mode not in ("RGB", "L", "CMYK"):
            # Transparency is laid on white, as a printed page shows it.
            rgba = picture.convert("RGBA")
            page = Image.new("RGB", rgba.size, "white")
            page.paste(rgba, mask=rgba.getchannel("A"))
        resolution = max(72.0, max(page.size) / _A4_LONG_SIDE_INCHES)
        out = io.BytesIO()
        page.save(out, format="PDF", resolution=resolution)
    return out.getvalue()


def encrypt(pdf: bytes, password: str) -> bytes:
    """The PDF encrypted with AES-256 (R=6): it opens only with ``password``."""
    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(pdf)) as document:
        document.save(
            out,
            encryption=pikepdf.Encryption(
                owner=secrets.token_urlsafe(32), user=password, R=6, aes=True
            ),
        )
    return out.getvalue()


def protected_pdf(content: bytes, media_type: str, password: str) -> bytes:
    """What the e-mail carries: the document as a PDF that opens only with ``password``."""
    return encrypt(as_pdf(content, media_type), password)


def pdf_name(filename: str) -> str:
    """The attachment's name: the document's own, as a PDF, with nothing a header or a file
    system would trip on."""
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    cleaned = "".join(ch for ch in stem if ch.isprintable() and ch not in '/\\"').strip()
    return f"{(cleaned or 'document')[:100]}.pdf"
