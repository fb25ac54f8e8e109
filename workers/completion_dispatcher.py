"""Delivers stored task completions whose engine call failed, with backoff, until done."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.exc import SQLAlchemyError

from panel_core.completions import CompletionDelivery

log = logging.getLogger(__name__)


async def run_dispatcher(
    delivery: CompletionDelivery, interval_seconds: float, stopped: asyncio.Event
) -> None:
    while not stopped.is_set():
        try:
            await delivery.deliver_due()
        except SQLAlchemyError as exc:
            log.warning("completion dispatcher: database unavailable: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopped.wait(), timeout=interval_seconds)
