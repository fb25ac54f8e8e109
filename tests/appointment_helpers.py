"""Booking an appointment as the case page does, without a browser or a sign-in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core.appointments import service
from panel_core.appointments.times import day_of
from panel_core.db.models import Appointment, Case
from panel_core.identity.actors import StaffActor
from panel_core.settings import Settings

ADDRESS = "ul. Marszałkowska 142, 00-061 Warszawa"
ADVISER = StaffActor(
    subject="test-adviser",
    username="bartosz.doradca",
    name="Bartosz Wójcik",
    groups=frozenset({"branch-advisers"}),
    roles=frozenset({"staff", "branch-adviser"}),
)


def days_ahead(days: int) -> str:
    """A local date ``days`` from today, as a date field sends it."""
    return (day_of(datetime.now(UTC)) + timedelta(days=days)).isoformat()


async def book_directly(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    case_id: uuid.UUID,
    participant_id: str,
    day: str,
    clock: str = "09:00",
    *,
    subject: str = "Signing the credit agreement",
) -> Appointment:
    """A branch visit of an hour, booked by the adviser, SMS and all."""
    async with sessions() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        await session.refresh(case, ["participants"])
        now = datetime.now(UTC)
        checked = service.check_form(
            service.AppointmentForm(
                participant=participant_id,
                kind="branch",
                date=day,
                time=clock,
                duration="60",
                place=ADDRESS,
                subject=subject,
            ),
            case=case,
            now=now,
            holders={ADVISER.username: ADVISER.name},
        )
        assert checked.booking is not None, checked.errors
        appointment = await service.book(session, case, checked.booking, ADVISER, settings, now)
        await session.commit()
        return appointment
