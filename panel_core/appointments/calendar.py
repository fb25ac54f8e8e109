"""The staff calendar: a member of staff's appointments and the due and follow-up dates of
their tasks, by week or as an agenda, in Europe/Warsaw. A team manager also sees their
team's: the appointments and tasks of everyone who shares a group with them.

The panel learns who is in which group from the identity provider's token at each sign-in
(``remember_member``): a manager's team is the people seen in their groups, as of their own
last sign-in.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.appointments.service import ends_at, kind_label
from panel_core.appointments.times import DASH, aware, clock_text, day_label, day_of
from panel_core.appointments.views import staff_where
from panel_core.cases import case_types
from panel_core.db.models import (
    Appointment,
    AppointmentState,
    Case,
    PanelTask,
    Participant,
    StaffGroupMember,
    TaskState,
)
from panel_core.identity.actors import StaffActor


class EntryKind(enum.StrEnum):
    APPOINTMENT = "appointment"
    DUE = "due"
    FOLLOW_UP = "follow-up"


@dataclass(frozen=True, slots=True)
class CalendarEntry:
    at: datetime
    ends: datetime | None
    kind: EntryKind
    title: str
    # For an appointment: its kind and where; for a task: nothing more.
    detail: str
    case_id: uuid.UUID | None
    case_number: str | None
    holder: str
    holder_name: str
    link: str
    overdue: bool = False

    @property
    def hours(self) -> str:
        """ "The local hours: from and to for an appointment, the moment for a date."""
        start = clock_text(self.at)
        if self.ends is None:
            return start
        return f"{start}{DASH}{clock_text(self.ends)}"


@dataclass(frozen=True, slots=True)
class CalendarDay:
    day: date
    label: str
    entries: list[CalendarEntry]
    today: bool

    @property
    def anchor(self) -> str:
        return f"day-{self.day.isoformat()}"


async def remember_member(session: AsyncSession, actor: StaffActor, now: datetime) -> None:
    """Keep the member's groups as the identity provider gave them at this sign-in.

    An upsert, so that two sign-ins of one person at once (two browsers) both succeed."""
    await session.execute(
        delete(StaffGroupMember).where(
            StaffGroupMember.username == actor.username,
            StaffGroupMember.group.not_in(sorted(actor.groups)),
        )
    )
    if not actor.groups:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(StaffGroupMember).values(
        [
            {"group": group, "username": actor.username, "name": actor.name, "seen_at": now}
            for group in sorted(actor.groups)
        ]
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["group", "username"],
            set_={"name": statement.excluded.name, "seen_at": statement.excluded.seen_at},
        )
    )


async def team_of(session: AsyncSession, actor: StaffActor) -> dict[str, str]:
    """Everyone seen in one of the actor's groups, the actor included: username → name."""
    team = {actor.username: actor.name}
    if actor.groups:
        rows = await session.execute(
            select(StaffGroupMember.username, StaffGroupMember.name)
            .where(StaffGroupMember.group.in_(sorted(actor.groups)))
            .order_by(StaffGroupMember.name, StaffGroupMember.username)
        )
        for username, name in rows:
            team.setdefault(username, name)
    return team


async def holders_for(session: AsyncSession, actor: StaffActor) -> dict[str, str]:
    """Whom the actor may book an appointment for: themselves; a manager, their team."""
    if actor.manager:
        return await team_of(session, actor)
    return {actor.username: actor.name}


async def entries_between(
    session: AsyncSession,
    people: Mapping[str, str],
    start: datetime,
    end: datetime,
    now: datetime,
) -> list[CalendarEntry]:
    """The scheduled appointments held by ``people`` (username → name) and the due and
    follow-up dates of the open staff tasks assigned to them, from ``start`` to ``end``."""
    usernames = sorted(people)
    found: list[CalendarEntry] = []
    appointments = await session.execute(
        select(Appointment, Case.case_number, Participant.phone_e164)
        .join(Case, Case.id == Appointment.case_id)
        .join(Participant, Participant.id == Appointment.participant_id)
        .where(
            Appointment.staff_username.in_(usernames),
            Appointment.state == AppointmentState.SCHEDULED,
            Appointment.starts_at >= start,
            Appointment.starts_at < end,
        )
    )
    for appointment, case_number, phone in appointments:
        where = staff_where(appointment, {appointment.participant_id: phone})
        found.append(
            CalendarEntry(
                at=aware(appointment.starts_at),
                ends=ends_at(appointment),
                kind=EntryKind.APPOINTMENT,
                title=appointment.subject,
                detail=f"{kind_label(appointment.kind)} · {where}",
                case_id=appointment.case_id,
                case_number=case_number,
                holder=appointment.staff_username,
                holder_name=people.get(appointment.staff_username, appointment.staff_name),
                link=f"/cases/{appointment.case_id}#appointments",
            )
        )
    tasks = await session.execute(
        select(PanelTask, Case.case_number, Case.case_type)
        .outerjoin(Case, Case.id == PanelTask.case_id)
        .where(
            PanelTask.participant_id.is_(None),
            PanelTask.state == TaskState.OPEN,
            PanelTask.assignee.in_(usernames),
            or_(
                and_(PanelTask.due_date >= start, PanelTask.due_date < end),
                and_(PanelTask.follow_up_date >= start, PanelTask.follow_up_date < end),
            ),
        )
    )
    kinds = await case_types.deployed(session)
    for task, case_number, case_type in tasks:
        kind = kinds.get(case_type or "")
        name = kind.task_name(task.element_id, task.name) if kind else task.name
        holder = task.assignee or ""
        for moment, entry_kind in (
            (task.due_date, EntryKind.DUE),
            (task.follow_up_date, EntryKind.FOLLOW_UP),
        ):
            if moment is None or not start <= aware(moment) < end:
                continue
            found.append(
                CalendarEntry(
                    at=aware(moment),
                    ends=None,
                    kind=entry_kind,
                    title=name,
                    detail="",
                    case_id=task.case_id,
                    case_number=case_number,
                    holder=holder,
                    holder_name=people.get(holder, holder),
                    link=f"/tasks/{task.id}",
                    overdue=entry_kind is EntryKind.DUE and aware(moment) < now,
                )
            )
    found.sort(key=lambda e: (e.at, e.kind.value, e.title))
    return found


def by_day(
    entries: Collection[CalendarEntry], days: list[date], today: date, *, keep_empty: bool
) -> list[CalendarDay]:
    """The entries under their local day; days without any are left out unless
    ``keep_empty`` (a week shows all seven)."""
    grouped: dict[date, list[CalendarEntry]] = {day: [] for day in days}
    for entry in entries:
        grouped.setdefault(day_of(entry.at), []).append(entry)
    return [
        CalendarDay(day=day, label=day_label(day), entries=grouped[day], today=day == today)
        for day in days
        if keep_empty or grouped[day]
    ]
