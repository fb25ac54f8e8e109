"""The markup a form brings to the page: its markdown texts, HTML blocks and images.

Nothing from a form reaches the page unescaped: markdown is rendered from escaped text by
a small renderer that knows headings, paragraphs, bold, italic, links, lists, inline code,
fenced code blocks and images; HTML blocks go through an allow-list sanitiser (ammonia,
through nh3); images are shown only from https addresses or inline raster data, and an
image in markdown only from inline raster data, the one kind the page's content security
policy (``img-src 'self' data:``) lets through.

Character references in markdown (``&gt;``, ``&#42;``) stand for their character, as in
CommonMark and in marked, which form-js uses: ``a &gt; b`` shows ``a > b``. Inside code
they stay as written.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

import nh3

LINK_SCHEMES = ("http://", "https://", "mailto:")

_FENCE = re.compile(r"( {0,3})(`{3,}|~{3,})(.*)")
_HEADING = re.compile(r" {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*")
_BULLET = re.compile(r" {0,3}[-*+][ \t]+(.*)")
_NUMBERED = re.compile(r" {0,3}(\d{1,9})[.)][ \t]+(.*)")
# A link or an image: [label](address) or ![alt](address), with an optional "title".
_LINK = re.compile(
    r"(!?)\[([^\]\n]*)\]\(\s*<?([^()\s<>]+)>?(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'))?\s*\)"
)
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
# Character references as CommonMark reads them: named (HTML5's list), decimal and hex.
_REFERENCE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_STRONG = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)")
_EMPHASIS = re.compile(r"\*(?=\S)(.+?)(?<=\S)\*|(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)")


@dataclass(slots=True)
class _Block:
    kind: str  # "h", "p", "ul", "ol" or "pre"
    level: int = 0
    lines: list[str] = field(default_factory=list)
    start: int = 1


def text_html(markdown: str) -> str:
    """A text component's markdown as escaped HTML.

    Headings keep their relative levels but start at ``h2`` (the page's ``h1`` is the
    task's title), so a form cannot break the page's outline.
    """
    blocks: list[_Block] = []
    current: _Block | None = None
    fence: tuple[str, int, int] | None = None
    for line in markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if fence is not None and current is not None:
            marker, length, indent = fence
            closing = _FENCE.fullmatch(line.rstrip(" \t"))
            if (
                closing
                and closing[2][0] == marker[0]
                and len(closing[2]) >= length
                and not closing[3].strip()
            ):
                fence, current = None, None
                continue
            current.lines.append(_unindent(line, indent))
            continue
        opening = _FENCE.fullmatch(line)
        if opening and not (opening[2][0] == "`" and "`" in opening[3]):
            fence = (opening[2][0], len(opening[2]), len(opening[1]))
            current = _Block("pre")
            blocks.append(current)
            continue
        if not line.strip():
            current = None
            continue
        if heading := _HEADING.fullmatch(line):
            blocks.append(_Block("h", level=len(heading[1]), lines=[heading[2]]))
            current = None
        elif bullet := _BULLET.fullmatch(line):
            if current is None or current.kind != "ul":
                current = _Block("ul")
                blocks.append(current)
            current.lines.append(bullet[1])
        elif numbered := _NUMBERED.fullmatch(line):
            if current is None or current.kind != "ol":
                current = _Block("ol", start=int(numbered[1]))
                blocks.append(current)
            current.lines.append(numbered[2])
        elif current is not None and current.kind in {"ul", "ol"} and line[:1] in {" ", "\t"}:
            current.lines[-1] += " " + line.strip()
        elif current is not None and current.kind == "p":
            current.lines.append(line.strip())
        else:
            current = _Block("p", lines=[line.strip()])
            blocks.append(current)
    top = min((b.level for b in blocks if b.kind == "h"), default=2)
    parts = []
    for block in blocks:
        if block.kind == "h":
            level = min(block.level - top + 2, 6)
            parts.append(f"<h{level}>{_inline(block.lines[0])}</h{level}>")
        elif block.kind == "p":
            parts.append(f"<p>{_inline(' '.join(' '.join(block.lines).split()))}</p>")
        elif block.kind == "pre":
            code = "".join(line + "\n" for line in block.lines)
            parts.append(f"<pre><code>{html.escape(code, quote=False)}</code></pre>")
        else:
            start = f' start="{block.start}"' if block.kind == "ol" and block.start != 1 else ""
            items = "".join(f"<li>{_inline(item.strip())}</li>" for item in block.lines)
            parts.append(f"<{block.kind}{start}>{items}</{block.kind}>")
    return "".join(parts)


def safe_link(url: str) -> bool:
    return url.lower().startswith(LINK_SCHEMES) and not any(
        ord(char) < 0x21 or char in "\"'<>`" for char in url
    )


def _unindent(line: str, indent: int) -> str:
    """A line of a fenced block without the fence's own indentation, as CommonMark has it."""
    spaces = len(line) - len(line.lstrip(" "))
    return line[min(spaces, indent) :]


def _inline(text: str) -> str:
    """One paragraph, heading or list item: code spans first, as they bind tightest."""
    parts = []
    position = 0
    for span in _CODE_SPAN.finditer(text):
        parts.append(_links(text[position : span.start()]))
        parts.append(f"<code>{html.escape(_code_content(span[2]), quote=False)}</code>")
        position = span.end()
    parts.append(_links(text[position:]))
    return "".join(parts)


def _code_content(code: str) -> str:
    code = code.replace("\n", " ")
    if len(code) > 1 and code.startswith(" ") and code.endswith(" ") and code.strip():
        return code[1:-1]
    return code


def _links(text: str) -> str:
    parts = []
    position = 0
    for link in _LINK.finditer(text):
        parts.append(_emphasis(text[position : link.start()]))
        image, label, url = bool(link[1]), link[2], _decoded(link[3])
        if image:
            source = markdown_image_source(url)
            alt = html.escape(_decoded(label))
            parts.append(f'<img src="{html.escape(source)}" alt="{alt}">' if source else alt)
        elif safe_link(url):
            parts.append(f'<a href="{html.escape(url)}">{_emphasis(label)}</a>')
        else:
            parts.append(_emphasis(label))
        position = link.end()
    parts.append(_emphasis(text[position:]))
    return "".join(parts)


def _decoded(text: str) -> str:
    """The text with its character references replaced by the characters they stand for."""
    return _REFERENCE.sub(lambda match: html.unescape(match[0]), text)


def _escaped(text: str) -> str:
    """Text as HTML, character references read as their characters. A * or _ that a
    reference stands for stays a reference, so that it marks no emphasis."""

    def reference(match: re.Match[str]) -> str:
        char = html.unescape(match[0])
        if char == match[0]:
            return html.escape(char)
        return {"*": "&#42;", "_": "&#95;"}.get(char) or html.escape(char)

    parts = []
    position = 0
    for match in _REFERENCE.finditer(text):
        parts.append(html.escape(text[position : match.start()]))
        parts.append(reference(match))
        position = match.end()
    parts.append(html.escape(text[position:]))
    return "".join(parts)


def _emphasis(text: str) -> str:
    # Escaping never produces * or _, so the markers are found in the escaped text and
    # wrap only text that is already safe.
    escaped = _escaped(text)
    escaped = _STRONG.sub(lambda m: f"<strong>{m[1] or m[2]}</strong>", escaped)
    return _EMPHASIS.sub(lambda m: f"<em>{m[1] or m[2]}</em>", escaped)


# HTML blocks.

HTML_TAGS = frozenset(
    {
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "caption",
        "code",
        "dd",
        "div",
        "dl",
        "dt",
        "em",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "li",
        "ol",
        "p",
        "pre",
        "s",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "u",
        "ul",
    }
)
HTML_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "ol": {"start"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
}
# Dropped with everything inside them, not just unwrapped.
HTML_DROPPED = frozenset(
    {
        "script",
        "style",
        "template",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "noscript",
        "svg",
        "math",
        "textarea",
        "select",
        "button",
        "title",
    }
)
_CLEANER = nh3.Cleaner(
    tags=set(HTML_TAGS),
    clean_content_tags=set(HTML_DROPPED),
    attributes=HTML_ATTRIBUTES,
    url_schemes={"http", "https", "mailto"},
    url_relative="deny",
    link_rel="noopener noreferrer",
    strip_comments=True,
)
_H1 = re.compile(r"<(/?)h1\b", re.IGNORECASE)


def sanitise_html(content: str) -> str:
    """An HTML component's content with only harmless tags: no scripts, styles or frames,
    no event handlers or inline styles, links only to http, https and mailto addresses."""
    # The page's only h1 is the task's title; a form's own top heading becomes an h2.
    cleaned: str = _CLEANER.clean(_H1.sub(r"<\1h2", content))
    return cleaned


# Images.

_DATA_IMAGE = re.compile(r"data:image/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+", re.I)


def markdown_image_source(source: Any) -> str | None:
    """An image in a text block's markdown: inline PNG, JPEG, GIF or WebP data, else None.

    An https image would be blocked by the page's content security policy, which lets
    images come only from the panel itself or from inline data.
    """
    if not isinstance(source, str) or not _DATA_IMAGE.fullmatch(source.strip()):
        return None
    return re.sub(r"\s", "", source)


def markdown_images(markdown: str) -> list[str]:
    """The addresses of the images a text block's markdown shows or means to show."""
    found: list[str] = []
    for block in _CODE_SPAN.split(markdown)[::3]:
        found.extend(_decoded(link[3]) for link in _LINK.finditer(block) if link[1])
    return found


def safe_image_source(source: Any) -> str | None:
    """The image address if it is https or inline PNG/JPEG/GIF/WebP data, else None."""
    if not isinstance(source, str):
        return None
    address = source.strip()
    if _DATA_IMAGE.fullmatch(address):
        return re.sub(r"\s", "", address)
    if address.lower().startswith("https://") and safe_link(address):
        return address
    return None


# Spacers: a few heights as classes, because the page allows no inline styles.

SPACER_HEIGHTS = (16, 32, 60, 96, 128)


def spacer_size(height: Any) -> int:
    """The spacer class (1 to 5) whose height is nearest to the form's height in pixels."""
    try:
        pixels = float(str(height).strip().removesuffix("px"))
    except ValueError:
        pixels = 60.0
    nearest = min(SPACER_HEIGHTS, key=lambda step: abs(step - pixels))
    return SPACER_HEIGHTS.index(nearest) + 1
