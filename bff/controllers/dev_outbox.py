"""Demo mode's SMS outbox: the messages the demo provider "sent", like a mail catcher."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.response import Template

from panel_core.notifications.sms_providers import DEV_OUTBOX_KEY

ZONE = ZoneInfo("Europe/Warsaw")


class DevOutboxController(Controller):
    path = "/dev/outbox"
    include_in_schema = False

    @get("/")
    async def outbox(self, request: Request[Any, Any, State]) -> Template:
        raw = await request.app.state.redis.lrange(DEV_OUTBOX_KEY, 0, 99)
        messages = []
        for item in raw:
            message = json.loads(item)
            sent = datetime.fromtimestamp(float(message["at"]), tz=ZONE)
            messages.append({**message, "sent": sent.strftime("%Y-%m-%d %H:%M:%S")})
        return Template("dev_outbox.html.j2", context={"messages": messages})
