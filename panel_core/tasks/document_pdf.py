"""The signed application as a PDF: the exact bytes whose SHA-256 the signing code binds.

**Library: fpdf2** (LGPL-3.0-only, pure Python; it brings fontTools and defusedxml, and uses
the Pillow the panel has already). It lays out text, tables and simple HTML, embeds TrueType
fonts as subsets with their Unicode maps (so the text can be searched and copied), and every
part of its output can be fixed: the creation date is set, the file identifier is an MD5 of
the content, font subsets are saved without a fresh timestamp. It also lays out the small
HTML the panel's markdown renderer makes (``panel_core.forms.markup.text_html``), so a
consent's explanation is formatted in the PDF as on the page. ReportLab (BSD) would do as
well, with more to learn for a few pages of text; pikepdf, which the panel uses to check
uploads, edits PDFs and lays nothing out. fpdf2 is used unmodified, as a library, which the
LGPL allows alongside the panel's Apache-2.0 code.

**Font: DejaVu Sans 2.37** (regular, bold, oblique, bold oblique), committed in
``panel_core/fonts`` with its licence (Bitstream Vera / Arev terms: free to copy and embed,
not to be sold alone). It covers Polish (ąćęłńóśźż), the rest of Latin, Greek and Cyrillic.
It is not taken from the system (Debian's ``fonts-dejavu``): a slim container has none, and
another image's version would lay out other bytes, so that one BFF replica would refuse the
code another sent.

**Determinism.** The code is asked for on one request and checked on another, possibly on
another replica, and in between the document is built again: the two builds must be the
same bytes. So everything in the file comes from the :class:`ApplicationPage`: the creation
date is its ``as_of`` (the latest submission or consent in it), the ``/ID`` is fpdf2's
digest of the content and that date, the font files are the repository's, and no clock or
random value is read. The page-count alias is switched on only while a footer is written, so
an answer that happens to contain it stays as typed. The bytes depend on the pinned versions
of fpdf2 and fontTools (``constraints.txt``) and on zlib: every replica runs the same image.
A code asked for before an upgrade that changes them is refused after it, with the message
that the document has changed, and the participant asks for a new one. What was signed is
never rebuilt: the signature keeps these bytes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fpdf import FPDF, FontFace, TextStyle
from fpdf.enums import TableBordersLayout, XPos, YPos

from panel_core.tasks.signed_document import ApplicationPage

FONT_DIR = Path(__file__).resolve().parent.parent / "fonts"
FAMILY = "DejaVuSans"
FONT_FILES = {
    "": "DejaVuSans.ttf",
    "B": "DejaVuSans-Bold.ttf",
    "I": "DejaVuSans-Oblique.ttf",
    "BI": "DejaVuSans-BoldOblique.ttf",
}
PRODUCER = "Customer Panel (fpdf2)"
MEDIA_TYPE = "application/pdf"

MARGIN = 20.0
TEXT = 10.0
SMALL = 8.0
GREY = 85
RULE = 160
# The page count stands for this only inside a footer (see _Document.footer); fpdf2 keeps
# the room of three digits for it.
_PAGES_ALIAS = "{nb}"
# Subheadings in a consent's explanation: below the document's own section headings.
_INTRO_STYLES = {
    f"h{level}": TextStyle(
        font_family=FAMILY,
        font_style="B",
        font_size_pt=size,
        color=0,
        t_margin=3,
        b_margin=1,
    )
    for level, size in ((3, 11.5), (4, 10.5), (5, TEXT), (6, TEXT))
}
_INTRO_STYLES["p"] = TextStyle(font_family=FAMILY, font_size_pt=TEXT, color=0, t_margin=1)
_INTRO_LINKS = {"a": FontFace(color=(0, 0, 160), emphasis="UNDERLINE")}


# The task page, the code and the signing each build the document; the last few are kept so
# that a participant's next request does not lay it out again. Pages are values: equal
# content is the same key, and gives the same bytes anyway.
@lru_cache(maxsize=32)
def render_pdf(page: ApplicationPage) -> bytes:
    """The PDF of the page: equal pages give equal bytes (see the module's docstring)."""
    document = _Document(page)
    document.lay_out()
    return bytes(document.output())


class _Document(FPDF):
    def __init__(self, page: ApplicationPage) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.page_content = page
        for style, name in FONT_FILES.items():
            self.add_font(FAMILY, style, str(FONT_DIR / name))
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(auto=True, margin=MARGIN)
        self.set_creation_date(page.as_of)
        self.set_title(page.title)
        self.set_lang(page.locale)
        self.set_creator(PRODUCER)
        self.set_producer(PRODUCER)
        self.set_display_mode(zoom="fullwidth", layout="continuous")
        self.set_font(FAMILY, "", TEXT)
        self.set_draw_color(RULE)

    def header(self) -> None:
        self.alias_nb_pages(None)  # type: ignore[arg-type]

    def footer(self) -> None:
        # On until the next page's header, so that the last footer's count is filled in too.
        page = self.page_content
        self.alias_nb_pages(_PAGES_ALIAS)
        self.set_y(-MARGIN + 6)
        self.set_font(FAMILY, "", SMALL)
        self.set_text_color(GREY)
        self.cell(0, 4, page.title, align="L")
        self.set_x(MARGIN)
        number = page.headings.page_of.replace("{page}", str(self.page_no())).replace(
            "{pages}", _PAGES_ALIAS
        )
        self.cell(0, 4, number, align="R")
        self.set_text_color(0)

    def lay_out(self) -> None:
        page = self.page_content
        self.add_page()
        self._heading(page.title, level=1)
        self._pairs([(f.label, f.value) for f in page.facts])
        for section in page.sections:
            self._heading(section.title, level=2)
            self._note(section.sent)
            self._pairs([(f.label, f.value) for f in section.fields])
        if page.consents:
            self._heading(page.headings.consents, level=2)
            for group in page.consents:
                self._consents(group.intro_html(3), [(c.statement, c.note) for c in group.consents])
        self._heading(page.headings.declaration, level=2)
        self.set_font(FAMILY, "B", TEXT)
        self.multi_cell(0, 5.5, page.declaration, border=1, padding=3, align="L")
        self.ln(2)
        if page.attachments:
            self._heading(page.headings.appendix, level=2)
            self._note(page.headings.appendix_intro)
            self._appendix()

    def _heading(self, text: str, *, level: int) -> None:
        size = 17.0 if level == 1 else 13.0
        self.ln(0 if level == 1 else 4)
        if self.will_page_break(size):
            self.add_page()
        # The reader's outline (bookmarks) follows the document's headings.
        self.start_section(text, level=level - 1)
        self.set_font(FAMILY, "B", size)
        self.multi_cell(0, size * 0.5, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1.5)

    def _note(self, text: str) -> None:
        self.set_font(FAMILY, "", SMALL + 0.5)
        self.set_text_color(GREY)
        self.multi_cell(0, 4.5, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0)
        self.ln(1.5)

    def _pairs(self, pairs: list[tuple[str, str]]) -> None:
        if not pairs:
            return
        self.set_font(FAMILY, "", TEXT)
        with self.table(
            col_widths=(2, 3),
            first_row_as_headings=False,
            borders_layout=TableBordersLayout.HORIZONTAL_LINES,
            line_height=5.5,
            padding=(1.5, 2),
            text_align="LEFT",
            v_align="TOP",
        ) as table:
            for label, value in pairs:
                row = table.row()
                row.cell(label, style=FontFace(emphasis="BOLD"))
                row.cell(value)
        self.ln(1)

    def _consents(self, intro_html: str, consents: list[tuple[str, str]]) -> None:
        if intro_html:
            self.set_font(FAMILY, "", TEXT)
            self.write_html(
                intro_html,
                font_family=FAMILY,
                tag_styles={**_INTRO_STYLES, **_INTRO_LINKS},
                ul_bullet_char="•",
                li_prefix_color=(0, 0, 0),
            )
            self.ln(2)
        for statement, note in consents:
            if statement:
                self.set_font(FAMILY, "B", TEXT)
                self.multi_cell(
                    0, 5.5, f"✓ {statement}", align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
                )
            self.set_x(MARGIN + 4.5)
            self._note(note)

    def _appendix(self) -> None:
        # One block a file rather than a table: a fingerprint stays on one line, whole, to
        # be compared with the file's.
        headings = self.page_content.headings
        for attachment in self.page_content.attachments:
            if self.will_page_break(15):
                self.add_page()
            self.set_font(FAMILY, "B", TEXT)
            self.multi_cell(
                0,
                5.5,
                f"{attachment.number}. {attachment.name}",
                align="L",
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )
            self.set_font(FAMILY, "", SMALL + 0.5)
            for label, value in (
                (headings.attachment_field, attachment.field),
                (headings.fingerprint, attachment.sha256),
            ):
                self.set_x(MARGIN + 4.5)
                self.multi_cell(
                    0, 4.5, f"{label}: {value}", align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
                )
            self.ln(2)
