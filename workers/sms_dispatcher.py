"""Runs the SMS dispatcher in the worker process."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.exc import SQLAlchemyError

from panel_core.sms.dispatcher import SmsDispatcher

log = logging.getLogger(__name__)


async def run_sms_dispatcher(
    dispatcher: SmsDispatcher, interval_seconds: float, stopped: asyncio.Event
) -> None:
    while not stopped.is_set():
        try:
            await dispatcher.send_due()
        except SQLAlchemyError as exc:
            log.warning("SMS dispatcher: database unavailable: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopped.wait(), timeout=interval_seconds)
