"""The text of a PDF as a reader's search finds it, read with pikepdf.

Each font's glyph codes go back to characters through the font's ToUnicode map, the way a
viewer copies text: what is found here is what a person reading (or searching) the PDF gets.
"""

from __future__ import annotations

import re
from io import BytesIO

import pikepdf

_HEX = re.compile(r"<([0-9A-Fa-f]+)>")


def _unicode_map(font: pikepdf.Object) -> dict[bytes, str]:
    cmap = bytes(font.ToUnicode.read_bytes()).decode("latin-1")
    mapping: dict[bytes, str] = {}
    for block in re.findall(r"beginbfchar(.*?)endbfchar", cmap, re.S):
        for line in block.strip().splitlines():
            code, target = _HEX.findall(line)[:2]
            mapping[bytes.fromhex(code)] = bytes.fromhex(target).decode("utf-16-be")
    for block in re.findall(r"beginbfrange(.*?)endbfrange", cmap, re.S):
        for line in block.strip().splitlines():
            first, last, target = (int(h, 16) for h in _HEX.findall(line)[:3])
            width = len(_HEX.findall(line)[0]) // 2
            for offset in range(last - first + 1):
                mapping[(first + offset).to_bytes(width, "big")] = chr(target + offset)
    return mapping


def _decode(data: bytes, mapping: dict[bytes, str]) -> str:
    # fpdf2 writes its TrueType subsets with two-byte codes (Identity-H).
    return "".join(mapping.get(data[i : i + 2], "\ufffd") for i in range(0, len(data), 2))


def pdf_lines(content: bytes) -> list[str]:
    """Each text object of each page, in the order it is drawn."""
    lines: list[str] = []
    with pikepdf.open(BytesIO(content)) as pdf:
        for page in pdf.pages:
            fonts = {str(name): _unicode_map(font) for name, font in page.Resources.Font.items()}
            font: dict[bytes, str] = {}
            saved: list[dict[bytes, str]] = []
            parts: list[str] = []
            for operands, operator in pikepdf.parse_content_stream(page):
                op = str(operator)
                if op == "q":
                    saved.append(font)
                elif op == "Q" and saved:
                    font = saved.pop()
                elif op == "Tf":
                    font = fonts[str(operands[0])]
                elif op == "BT":
                    parts = []
                elif op == "Tj":
                    parts.append(_decode(bytes(operands[0]), font))
                elif op == "TJ":
                    parts.extend(
                        _decode(bytes(item), font)
                        for item in operands[0]
                        if isinstance(item, pikepdf.String)
                    )
                elif op == "ET" and parts:
                    lines.append("".join(parts))
    return lines


def pdf_text(content: bytes) -> str:
    """All the text, with every run of white space (line breaks included) as one space."""
    return " ".join(" ".join(pdf_lines(content)).split())
