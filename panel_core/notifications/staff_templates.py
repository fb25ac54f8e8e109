"""The messages staff send participants from the case page, and what their texts may hold.

The panel's own messages are SMS templates, ``templates/sms/staff-<id>.txt.j2``, translated
through the gettext catalogs like every other text; a case type lists in its descriptor
(``staffMessages``) which of them it offers and adds its own, worded in every language with
``{placeholders}``. Without that list a case type offers the panel's own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from panel_core.i18n import N_

# What a staff message's text may name: the case, and where to sign in to it.
PLACEHOLDERS = frozenset({"case_number", "link"})
# The panel's own messages by id, with the name the staff choose them by.
PANEL_MESSAGES: Mapping[str, str] = {
    "reminder": N_("Reminder: tasks are waiting"),
    "news": N_("News in the case"),
    "call-us": N_("Please call the bank"),
}
# The choice of a text the member of staff writes themselves (no message may have this id).
OWN_TEXT = "own"
# The SMS outbox's purpose of a case type's own text, and of a text staff wrote themselves.
OWN_PURPOSE = "staff-message"
FREE_TEXT_PURPOSE = "staff-text"
# The password of a document sent by e-mail.
DOCUMENT_PASSWORD_PURPOSE = "document-password"  # noqa: S105 - a purpose
MESSAGE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,23}")


def panel_purpose(message_id: str) -> str:
    """The SMS outbox's purpose of one of the panel's messages: its template's name."""
    return f"staff-{message_id}"
