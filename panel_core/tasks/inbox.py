"""The staff task inbox: tabs, filters, sorting and pages, decided on the server.

Candidate groups are enforced here, unlike Tasklist V2, which ignores them: a member of
staff lists only tasks assigned to them or offered to one of their groups; team managers list
every staff task.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from advanced_alchemy.filters import LimitOffset
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.db.models import (
    Case,
    PanelTask,
    PanelTaskCandidateGroup,
    SavedFilter,
    TaskState,
    utcnow,
)
from panel_core.i18n import N_
from panel_core.identity.actors import StaffActor

PAGE_SIZE = 25
MAX_PAGE_SIZE = 100


class Tab(enum.StrEnum):
    MINE = "mine"
    UNASSIGNED = "unassigned"
    ALL = "all"


class Sort(enum.StrEnum):
    # Overdue first, then the soonest due; tasks without a due date last.
    DUE = "due"
    FOLLOW_UP = "follow-up"
    PRIORITY = "priority"
    CREATED = "created"


@dataclass(frozen=True, slots=True)
class InboxQuery:
    tab: Tab = Tab.MINE
    sort: Sort = Sort.DUE
    case_type: str = ""
    element_id: str = ""
    case_number: str = ""
    assignee: str = ""
    page: int = 1
    page_size: int = PAGE_SIZE

    def as_dict(self) -> dict[str, Any]:
        return {
            "tab": self.tab.value,
            "sort": self.sort.value,
            "case_type": self.case_type,
            "element_id": self.element_id,
            "case_number": self.case_number,
            "assignee": self.assignee,
        }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> InboxQuery:
        def text(name: str) -> str:
            value = params.get(name)
            return str(value).strip()[:100] if isinstance(value, str) else ""

        try:
            tab = Tab(text("tab") or Tab.MINE)
        except ValueError:
            tab = Tab.MINE
        try:
            sort = Sort(text("sort") or Sort.DUE)
        except ValueError:
            sort = Sort.DUE
        page = text("page")
        return cls(
            tab=tab,
            sort=sort,
            case_type=text("case_type"),
            element_id=text("element_id"),
            case_number=text("case_number").upper(),
            assignee=text("assignee"),
            page=max(1, int(page)) if page.isdigit() else 1,
        )


@dataclass(frozen=True, slots=True)
class InboxRow:
    task: PanelTask
    case_number: str | None
    case_type: str | None
    overdue: bool


@dataclass(frozen=True, slots=True)
class InboxPage:
    rows: list[InboxRow]
    total: int
    page: int
    page_size: int
    counts: dict[Tab, int] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def offered_to(groups: frozenset[str]) -> Any:
    """Tasks offered to at least one of these candidate groups."""
    return PanelTask.id.in_(
        select(PanelTaskCandidateGroup.panel_task_id).where(
            PanelTaskCandidateGroup.group.in_(sorted(groups))
        )
    )


class TaskRepository(SQLAlchemyAsyncRepository[PanelTask]):
    model_type = PanelTask


def _visible(actor: StaffActor, tab: Tab) -> list[Any]:
    """The conditions of a tab, candidate groups and all (see the module docstring)."""
    staff_task = [PanelTask.participant_id.is_(None), PanelTask.state == TaskState.OPEN]
    unassigned = or_(PanelTask.assignee.is_(None), PanelTask.assignee == "")
    if tab is Tab.MINE:
        return [*staff_task, PanelTask.assignee == actor.username]
    if tab is Tab.UNASSIGNED:
        return [*staff_task, unassigned, offered_to(actor.groups)]
    if actor.manager:
        return staff_task
    # Without the manager's role "all" is everything this person may see.
    return [
        *staff_task,
        or_(PanelTask.assignee == actor.username, offered_to(actor.groups)),
    ]


def _ordering(sort: Sort) -> list[Any]:
    if sort is Sort.DUE:
        return [PanelTask.due_date.asc().nulls_last(), PanelTask.created_at.asc()]
    if sort is Sort.FOLLOW_UP:
        return [PanelTask.follow_up_date.asc().nulls_last(), PanelTask.created_at.asc()]
    if sort is Sort.PRIORITY:
        return [PanelTask.priority.desc(), PanelTask.created_at.asc()]
    return [PanelTask.created_at.desc()]


def _statement(actor: StaffActor, query: InboxQuery) -> Select[Any]:
    statement = select(PanelTask).outerjoin(Case, Case.id == PanelTask.case_id)
    conditions = _visible(actor, query.tab)
    if query.case_type:
        conditions.append(Case.case_type == query.case_type)
    if query.element_id:
        conditions.append(PanelTask.element_id == query.element_id)
    if query.case_number:
        conditions.append(Case.case_number == query.case_number)
    if query.assignee:
        conditions.append(PanelTask.assignee == query.assignee)
    return statement.where(*conditions).order_by(*_ordering(query.sort), PanelTask.id)


async def inbox(session: AsyncSession, actor: StaffActor, query: InboxQuery) -> InboxPage:
    repository = TaskRepository(session=session, auto_expunge=False)
    size = min(max(1, query.page_size), MAX_PAGE_SIZE)
    tasks, total = await repository.get_many_and_count(
        LimitOffset(limit=size, offset=(query.page - 1) * size),
        statement=_statement(actor, query),
        count_with_window_function=True,
    )
    cases = {
        case.id: case
        for case in await session.scalars(
            select(Case).where(Case.id.in_({t.case_id for t in tasks if t.case_id}))
        )
    }
    now = utcnow()
    rows = [
        InboxRow(
            task=task,
            case_number=cases[task.case_id].case_number if task.case_id in cases else None,
            case_type=cases[task.case_id].case_type if task.case_id in cases else None,
            overdue=task.due_date is not None and _aware(task.due_date) < now,
        )
        for task in tasks
    ]
    counts = {
        tab: int(
            await session.scalar(
                select(func.count()).select_from(PanelTask).where(*_visible(actor, tab))
            )
            or 0
        )
        for tab in Tab
        if tab is not Tab.ALL or actor.manager
    }
    return InboxPage(rows, total, query.page, size, counts)


async def staff_steps(session: AsyncSession) -> list[tuple[str, str]]:
    """The process steps staff tasks have come from, as (element id, name) to filter by."""
    rows = await session.execute(
        select(PanelTask.element_id, func.min(PanelTask.name))
        .where(PanelTask.participant_id.is_(None))
        .group_by(PanelTask.element_id)
        .order_by(PanelTask.element_id)
    )
    return [(element_id, name) for element_id, name in rows]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- saved filters -------------------------------------------------------------------------


async def saved_filters(session: AsyncSession, actor: StaffActor) -> list[SavedFilter]:
    """The actor's own filters and those shared with one of their groups."""
    result = await session.scalars(
        select(SavedFilter)
        .where(
            or_(
                SavedFilter.owner == actor.username,
                SavedFilter.team.in_(sorted(actor.groups)),
            )
        )
        .order_by(SavedFilter.name)
    )
    return list(result)


class FilterError(ValueError):
    """The filter cannot be saved; the message is for the page."""


async def save_filter(
    session: AsyncSession, actor: StaffActor, name: str, query: InboxQuery, team: str | None
) -> SavedFilter:
    name = " ".join(name.split())[:120]
    if not name:
        raise FilterError(N_("Give the filter a name."))
    if team and team not in actor.groups:
        raise FilterError(N_("A filter can be shared only with a team you belong to."))
    existing = await session.scalar(
        select(SavedFilter).where(SavedFilter.owner == actor.username, SavedFilter.name == name)
    )
    if existing is None:
        existing = SavedFilter(id=uuid.uuid4(), owner=actor.username, name=name)
        session.add(existing)
    existing.query = query.as_dict()
    existing.team = team or None
    return existing


async def delete_filter(session: AsyncSession, actor: StaffActor, filter_id: uuid.UUID) -> bool:
    saved = await session.get(SavedFilter, filter_id)
    if saved is None or saved.owner != actor.username:
        return False
    await session.delete(saved)
    return True
