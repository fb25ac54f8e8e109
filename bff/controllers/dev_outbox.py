"""Demo mode's outbox: the SMS the demo provider "sent" and the e-mail the local SMTP server
received, like a mail catcher."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template

from panel_core.notifications import dev_mailbox
from panel_core.notifications.sms_providers import DEV_OUTBOX_KEY
from panel_web.downloads import content_disposition

ZONE = ZoneInfo("Europe/Warsaw")


def _when(at: Any) -> str:
    return datetime.fromtimestamp(float(at), tz=ZONE).strftime("%Y-%m-%d %H:%M:%S")


class DevOutboxController(Controller):
    path = "/dev/outbox"
    include_in_schema = False

    @get("/")
    async def outbox(self, request: Request[Any, Any, State]) -> Template:
        redis = request.app.state.redis
        raw = await redis.lrange(DEV_OUTBOX_KEY, 0, 99)
        messages = []
        for item in raw:
            message = json.loads(item)
            messages.append({**message, "sent": _when(message["at"])})
        mails = [
            {**mail, "received": _when(mail["at"])} for mail in await dev_mailbox.received(redis)
        ]
        return Template("dev_outbox.html.j2", context={"messages": messages, "mails": mails})

    @get("/mail/{entry_id:str}/attachments/{index:int}")
    async def attachment(
        self, request: Request[Any, Any, State], entry_id: FromPath[str], index: FromPath[int]
    ) -> Response[bytes]:
        """An attachment as the recipient's mail client would save it (a document sent
        securely stays encrypted: it opens with the password from the SMS)."""
        raw = await dev_mailbox.raw_message(request.app.state.redis, entry_id)
        found = dev_mailbox.attachment(raw, index) if raw is not None else None
        if found is None:
            raise NotFoundException("Not found")
        name, media_type, content = found
        return Response(
            content,
            media_type=media_type,
            headers={"Content-Disposition": content_disposition(name), "Cache-Control": "no-store"},
        )
