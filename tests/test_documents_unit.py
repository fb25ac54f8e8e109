"""Files judged by content, scanned and streamed to storage; nothing kept of a refused one."""

from __future__ import annotations

import io
import struct
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pikepdf
import pytest
from PIL import Image

from panel_core.db.models import Document, PanelTask, TaskState
from panel_core.documents.content import JPEG, PDF, PNG, detect
from panel_core.documents.scanning import (
    EICAR_SIGNATURE,
    EicarScanner,
    Outcome,
    Scanner,
    Verdict,
)
from panel_core.documents.service import (
    Limits,
    UploadRefusedError,
    clean_filename,
    download_name,
    store_upload,
)
from panel_core.documents.storage import LocalDiskStorage
from panel_core.forms.files import EXTENSIONS, accepted_types
from panel_core.i18n import use_locale
from panel_core.identity.actors import Client
from panel_web.downloads import content_disposition
from panel_web.multipart import FilePart
from panel_web.uploads import UploadSaver
from tests.helpers import PDF_BYTES


class FakeSession:
    """Collects what would be inserted; the service itself never queries here."""

    def __init__(self) -> None:
        self.added: list[Any] = []
        # Where the after-transaction hooks are kept; this session never commits.
        self.info: dict[str, Any] = {}

    def add(self, item: Any) -> None:
        self.added.append(item)

    async def flush(self) -> None:
        return None


def task() -> PanelTask:
    return PanelTask(id=uuid.uuid4(), case_id=uuid.uuid4(), element_id="task-income")


async def chunks(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def pieces(parts: Sequence[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def upload(
    root: Path,
    data: bytes | Sequence[bytes] | AsyncIterator[bytes],
    name: str = "proof.pdf",
    max_bytes: int = 10_000,
    scanner: Scanner | None = None,
    accept: str | None = None,
) -> Document:
    """Store a file as an upload does; a sequence of bytes arrives as exactly those chunks."""
    if isinstance(data, bytes):
        arriving = chunks(data)
    elif isinstance(data, AsyncIterator):
        arriving = data
    else:
        arriving = pieces(data)
    document: Document = await store_upload(
        FakeSession(),  # type: ignore[arg-type]
        LocalDiskStorage(root),
        scanner or EicarScanner(),
        task=task(),
        participant_id=uuid.uuid4(),
        field_key="incomeProof",
        filename=name,
        chunks=arriving,
        limits=Limits(max_bytes=max_bytes),
        accepted=accepted_types(accept),
    )
    return document


def png(size: tuple[int, int] = (48, 32)) -> bytes:
    out = io.BytesIO()
    # Noise, so the pixel data is long enough to cut in the middle.
    Image.effect_noise(size, 40).convert("RGB").save(out, "PNG")
    return out.getvalue()


def jpeg(size: tuple[int, int] = (48, 32)) -> bytes:
    out = io.BytesIO()
    Image.effect_noise(size, 40).convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue()


def multi_picture_jpeg() -> bytes:
    """A JPEG with a second picture after the first, as phone cameras write them (MPO)."""
    out = io.BytesIO()
    first, second = Image.new("RGB", (64, 48), "white"), Image.new("RGB", (32, 24), "grey")
    first.save(out, "MPO", save_all=True, append_images=[second])
    return out.getvalue()


def pdf(build: Callable[[pikepdf.Pdf], None] | None = None, **save: Any) -> bytes:
    """A one-page PDF written by pikepdf, changed by ``build`` first."""
    document = pikepdf.new()
    document.add_blank_page(page_size=(595, 842))
    if build is not None:
        build(document)
    out = io.BytesIO()
    document.save(out, **save)
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG whose header announces a picture of this size (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b""))
        + png_chunk(b"IEND", b"")
    )


def with_garbled_pixels(image: bytes) -> bytes:
    """The PNG with its pixel data overwritten: every chunk in place, no image in them."""
    start = image.index(b"IDAT") + 4
    (length,) = struct.unpack(">I", image[start - 8 : start - 4])
    return image[:start] + b"<script>x</script>".ljust(length, b" ") + image[start + length :]


def open_action_javascript(document: pikepdf.Pdf) -> None:
    document.Root.OpenAction = pikepdf.Dictionary(
        S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert('hi')")
    )


def named_javascript(document: pikepdf.Pdf) -> None:
    action = document.make_indirect(
        pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("this.print()"))
    )
    document.Root.Names = pikepdf.Dictionary(
        JavaScript=pikepdf.Dictionary(Names=pikepdf.Array([pikepdf.String("run"), action]))
    )


def link_launching_a_program(document: pikepdf.Pdf) -> None:
    link = pikepdf.Dictionary(
        Type=pikepdf.Name.Annot,
        Subtype=pikepdf.Name.Link,
        Rect=[0, 0, 100, 100],
        A=pikepdf.Dictionary(S=pikepdf.Name.Launch, F=pikepdf.String("cmd.exe")),
    )
    document.pages[0].obj.Annots = document.make_indirect(pikepdf.Array([link]))


def page_opening_javascript(document: pikepdf.Pdf) -> None:
    document.pages[0].obj.AA = pikepdf.Dictionary(
        O=pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.beep()"))
    )


def javascript_after_a_harmless_action(document: pikepdf.Pdf) -> None:
    document.Root.OpenAction = pikepdf.Dictionary(
        S=pikepdf.Name.GoTo,
        D=pikepdf.Array([document.pages[0].obj, pikepdf.Name.Fit]),
        Next=pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.beep()")),
    )


def a_web_link(document: pikepdf.Pdf) -> None:
    link = pikepdf.Dictionary(
        Type=pikepdf.Name.Annot,
        Subtype=pikepdf.Name.Link,
        Rect=[0, 0, 100, 100],
        A=pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String("https://bank.example")),
    )
    document.pages[0].obj.Annots = document.make_indirect(pikepdf.Array([link]))


def test_types_are_recognised_by_their_first_bytes() -> None:
    assert detect(PDF_BYTES[:16]) == PDF
    assert detect(b"\x89PNG\r\n\x1a\n" + b"\0" * 8) == PNG
    assert detect(b"\xff\xd8\xff\xe0" + b"\0" * 12) == JPEG
    assert detect(b"MZ\x90\x00" + b"\0" * 12) is None  # a Windows program
    assert detect(b"<html><script>") is None


async def test_a_pdf_is_streamed_to_storage_under_a_generated_name(tmp_path: Path) -> None:
    document = await upload(tmp_path, PDF_BYTES, name="../../etc/Zaświadczenie.pdf")
    files = stored_files(tmp_path)
    assert len(files) == 1
    assert files[0].read_bytes() == PDF_BYTES
    assert "Zaświadczenie" not in str(files[0]) and document.storage_key in files[0].name
    assert document.filename == "Zaświadczenie.pdf"
    assert document.media_type == PDF and document.size_bytes == len(PDF_BYTES)


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (b"just some text pretending", "statement.pdf", "is not a PDF, JPG or PNG"),
        (b"MZ\x90\x00\x03" + b"\0" * 40, "invoice.pdf", "is not a PDF, JPG or PNG"),
        (EICAR_SIGNATURE, "eicar.pdf", "is not a PDF, JPG or PNG"),
        (PDF_BYTES + EICAR_SIGNATURE + b"\n%%EOF\n", "eicar-inside.pdf", "contains a virus"),
        (PDF_BYTES * 1000, "huge.pdf", "is larger than"),
        (b"", "empty.pdf", "is empty"),
    ],
)
async def test_refused_files_leave_nothing_behind(
    tmp_path: Path, data: bytes, name: str, reason: str
) -> None:
    with use_locale("en"), pytest.raises(UploadRefusedError) as refused:
        await upload(tmp_path, data, name=name)
    assert reason in str(refused.value)
    assert name in str(refused.value)
    assert stored_files(tmp_path) == []


HTML = b"<html><body><script>document.location='https://evil.example'</script></body></html>\n"
DAMAGED = "is damaged, or is not really a PDF, JPG or PNG file"


@pytest.mark.parametrize(
    ("data", "name"),
    [
        pytest.param(b"\x89PNG\r\n\x1a\n" + HTML, "photo.png", id="png-header-then-html"),
        pytest.param(b"\xff\xd8\xff\xe0" + HTML, "photo.jpg", id="jpeg-header-then-script"),
        pytest.param(b"%PDF-1.7\n" + HTML + b"%%EOF\n", "statement.pdf", id="pdf-header-then-html"),
        # The old test file: a catalog and no cross-reference table, readable only by repair.
        pytest.param(
            b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n",
            "repaired.pdf",
            id="pdf-needing-recovery",
        ),
        # Whole objects, but a cross-reference table qpdf finds only by scanning the bytes.
        pytest.param(
            PDF_BYTES.replace(b"startxref\n278\n", b"startxref\n250\n"),
            "repaired.pdf",
            id="pdf-with-a-wrong-cross-reference-offset",
        ),
        pytest.param(PDF_BYTES + HTML, "statement.pdf", id="pdf-then-html"),
        pytest.param(png() + HTML, "photo.png", id="png-then-html"),
        pytest.param(jpeg() + HTML, "photo.jpg", id="jpeg-then-html"),
        pytest.param(png()[:-300], "photo.png", id="truncated-png"),
        pytest.param(jpeg()[:-300], "photo.jpg", id="truncated-jpeg"),
        pytest.param(PDF_BYTES[:-60], "statement.pdf", id="truncated-pdf"),
        pytest.param(with_garbled_pixels(png()), "photo.png", id="png-without-an-image"),
    ],
)
async def test_a_file_is_refused_unless_it_is_whole_what_its_header_says(
    tmp_path: Path, data: bytes, name: str
) -> None:
    with use_locale("en"), pytest.raises(UploadRefusedError) as refused:
        await upload(tmp_path, data, name=name)
    assert str(refused.value).startswith(f"“{name}” {DAMAGED}")
    assert stored_files(tmp_path) == []


@pytest.mark.parametrize(
    "build",
    [
        open_action_javascript,
        named_javascript,
        link_launching_a_program,
        page_opening_javascript,
        javascript_after_a_harmless_action,
    ],
)
async def test_a_pdf_with_active_content_is_refused(
    tmp_path: Path, build: Callable[[pikepdf.Pdf], None]
) -> None:
    with use_locale("en"), pytest.raises(UploadRefusedError) as refused:
        await upload(tmp_path, pdf(build), name="wniosek.pdf")
    assert "“wniosek.pdf” contains scripts or commands that start other programs" in str(
        refused.value
    )
    assert stored_files(tmp_path) == []


async def test_a_password_protected_pdf_is_refused(tmp_path: Path) -> None:
    locked = pdf(encryption=pikepdf.Encryption(user="secret", owner="bank"))
    with use_locale("en"), pytest.raises(UploadRefusedError) as refused:
        await upload(tmp_path, locked, name="locked.pdf")
    assert "“locked.pdf” is protected with a password" in str(refused.value)
    assert stored_files(tmp_path) == []


@pytest.mark.parametrize(
    "size",
    [
        pytest.param((8000, 6000), id="over-the-panels-limit"),
        pytest.param((20000, 20000), id="over-pillows-bomb-limit"),
    ],
)
async def test_an_image_of_too_many_pixels_is_refused_before_it_is_decoded(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    with use_locale("en"), pytest.raises(UploadRefusedError) as refused:
        await upload(tmp_path, png_claiming(*size), name="bomb.png")
    assert "“bomb.png” is too large a picture (over 40 megapixels)" in str(refused.value)
    assert stored_files(tmp_path) == []


@pytest.mark.parametrize(
    ("data", "media_type"),
    [
        pytest.param(pdf(), PDF, id="pdf"),
        pytest.param(pdf(a_web_link), PDF, id="pdf-with-a-web-link"),
        pytest.param(pdf(object_stream_mode=pikepdf.ObjectStreamMode.generate), PDF, id="pdf-1.5"),
        pytest.param(PDF_BYTES + b"\r\n \n", PDF, id="pdf-with-whitespace-after-eof"),
        pytest.param(png(), PNG, id="png"),
        pytest.param(jpeg(), JPEG, id="jpeg"),
        pytest.param(multi_picture_jpeg(), JPEG, id="multi-picture-jpeg"),
    ],
)
async def test_real_documents_and_pictures_are_accepted(
    tmp_path: Path, data: bytes, media_type: str
) -> None:
    document = await upload(tmp_path, data, name="dokument")
    assert document.media_type == media_type and document.size_bytes == len(data)
    (stored,) = stored_files(tmp_path)
    assert stored.read_bytes() == data


async def test_refusals_are_in_polish_by_default(tmp_path: Path) -> None:
    with pytest.raises(UploadRefusedError) as refused:
        await upload(tmp_path, b"plain text here!!", name="a.pdf")
    assert "nie jest plikiem PDF" in str(refused.value)


async def test_the_scanner_finds_a_signature_split_across_chunks() -> None:
    half = len(EICAR_SIGNATURE) // 2
    async with EicarScanner().scan() as scan:
        await scan.feed(b"%PDF-1.4 " + EICAR_SIGNATURE[:half])
        await scan.feed(EICAR_SIGNATURE[half:] + b" trailer")
        assert await scan.verdict() == Verdict(Outcome.INFECTED, "EICAR-Test-File")
    async with EicarScanner().scan() as clean:
        await clean.feed(PDF_BYTES)
        assert (await clean.verdict()).outcome is Outcome.CLEAN


def test_names_offered_for_download_are_safe() -> None:
    assert clean_filename("C:\\Users\\me\\skan\x00.pdf") == "skan.pdf"
    header = content_disposition('Zaświadczenie "2026".pdf')
    assert header.startswith('attachment; filename="Za_wiadczenie__2026_.pdf"')
    assert "filename*=UTF-8''Za%C5%9Bwiadczenie%20%222026%22.pdf" in header
    document = Document(filename="photo.pdf", media_type=JPEG)
    # The extension follows the real content, so a browser never guesses another type.
    assert download_name(document) == "photo.jpg"


# A file picker's accept, enforced on what arrives.


@pytest.mark.parametrize(
    ("accept", "kept"),
    [
        (".pdf", {PDF}),
        (".PDF, .png", {PDF, PNG}),
        ("image/*", {PNG, JPEG}),
        (".jpeg", {JPEG}),
        (".jpg", {JPEG}),
        ("application/pdf,image/png", {PDF, PNG}),
        ("IMAGE/JPEG", {JPEG}),
        # Tokens HTML ignores: no extension dot, parameters, other wildcards.
        ("pdf, application/*, image/png;q=1", None),
        ("", None),
        (".docx", set()),
    ],
)
def test_accept_reads_as_the_html_attribute_reads(accept: str, kept: set[str] | None) -> None:
    """HTML's accept (which form-js' file picker passes on as it is): comma-separated
    extensions, media types and audio/*, video/*, image/*, case-insensitive; invalid tokens
    are ignored, and an accept with none restricts nothing."""
    assert accepted_types(accept) == (None if kept is None else frozenset(kept))


def test_the_kept_types_are_those_the_upload_code_accepts() -> None:
    from panel_core.documents.content import ALLOWED

    assert set(EXTENSIONS) == set(ALLOWED)


async def test_a_file_the_fields_accept_does_not_take_is_refused(tmp_path: Path) -> None:
    picture = png()
    with use_locale("en"), pytest.raises(UploadRefusedError) as refused:
        await upload(tmp_path, picture, name="scan.png", accept=".pdf")
    assert str(refused.value) == "“scan.png” cannot be sent here: this field takes only PDF files."
    assert stored_files(tmp_path) == []
    # The real type counts, not the name: a PNG called .pdf is still a PNG.
    with use_locale("en"), pytest.raises(UploadRefusedError, match="only PDF files"):
        await upload(tmp_path, picture, name="scan.pdf", accept=".pdf")
    document = await upload(tmp_path, picture, name="scan", accept="image/*")
    assert document.media_type == PNG
    document = await upload(tmp_path, PDF_BYTES, name="scan.PDF", accept=".pdf,.jpg")
    assert document.media_type == PDF


async def test_the_upload_of_a_form_enforces_the_fields_accept(tmp_path: Path) -> None:
    """What UploadSaver, which stores the files a task page sends, does with each part."""
    form_task = task()
    form_task.state = TaskState.OPEN
    form_task.form_schema = {
        "id": "f",
        "components": [
            {"type": "filepicker", "key": "incomeProof", "label": "Proof", "accept": ".pdf"},
            {"type": "filepicker", "key": "photo", "label": "Photo", "accept": "image/*"},
        ],
    }
    state = SimpleNamespace(
        settings=SimpleNamespace(document_max_files_per_request=5, document_max_bytes=100_000),
        document_storage=LocalDiskStorage(tmp_path),
        document_scanner=EicarScanner(),
    )
    session = FakeSession()
    saver = UploadSaver(
        state,  # type: ignore[arg-type]
        session,  # type: ignore[arg-type]
        form_task,
        uuid.uuid4(),
        Client(ip=None, user_agent=None),
    )
    with use_locale("en"):
        await saver(FilePart("incomeProof", "photo.png", "application/pdf", chunks(png())))
        await saver(FilePart("photo", "photo.png", "image/png", chunks(png())))
        await saver(FilePart("photo", "form.pdf", "image/png", chunks(PDF_BYTES)))
    assert saver.errors == {
        "incomeProof": "“photo.png” cannot be sent here: this field takes only PDF files.",
        "photo": "“form.pdf” cannot be sent here: this field takes only JPG, PNG files.",
    }
    # Only the photo was kept; the refused files left nothing behind.
    kept = [item for item in session.added if isinstance(item, Document)]
    assert [(d.field_key, d.media_type) for d in kept] == [("photo", PNG)]
    assert len(stored_files(tmp_path)) == 1
