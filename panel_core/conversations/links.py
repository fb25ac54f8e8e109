"""How a message's text is shown: escaped, line breaks kept, and links made clickable only
to the hosts the bank allows (``PANEL_CHAT_LINK_HOSTS``). An address typed by anyone else,
or to any other host, stays plain text, so a message cannot lead a participant to a look-alike
site with one click."""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import urlsplit

from markupsafe import Markup, escape

_URL = re.compile(r"https://[^\s<>\"']+", re.IGNORECASE)
# Punctuation that ends a sentence rather than the address.
_TRAILING = ".,;:!?)]}»\u201d\u2019"


def allowed_hosts(setting: str) -> frozenset[str]:
    return frozenset(h.strip().lower().rstrip(".") for h in setting.split(",") if h.strip())


def _allowed(url: str, hosts: Collection[str]) -> bool:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
    except ValueError:
        return False
    if parts.username or parts.password or parts.port not in (None, 443):
        return False
    return any(host == allowed or host.endswith("." + allowed) for allowed in hosts)


def render_message(text: str, hosts: Collection[str] = ()) -> Markup:
    """The message as HTML: ``https`` links to an allowed host clickable, nothing else."""
    parts: list[str] = []
    position = 0
    for match in _URL.finditer(text) if hosts else ():
        url = match.group(0)
        while url and url[-1] in _TRAILING:
            url = url[:-1]
        start, end = match.start(), match.start() + len(url)
        parts.append(str(escape(text[position:start])))
        if _allowed(url, hosts):
            parts.append(
                f'<a href="{escape(url)}" rel="noopener noreferrer" class="message-link">'
                f"{escape(url)}</a>"
            )
        else:
            parts.append(str(escape(url)))
        position = end
    parts.append(str(escape(text[position:])))
    return Markup("".join(parts).replace("\n", "<br>\n"))  # noqa: S704 - escaped above
