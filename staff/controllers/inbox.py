"""The task inbox: tabs, filters, sorting, pages and saved filters."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.cases.case_types import deployed as descriptors
from panel_core.i18n import N_, gettext, pick
from panel_core.identity.actors import StaffActor
from panel_core.tasks.inbox import (
    FilterError,
    InboxPage,
    InboxQuery,
    Sort,
    Tab,
    delete_filter,
    inbox,
    save_filter,
    saved_filters,
    staff_steps,
)
from staff.dependencies import StaffController

NOTICES = {
    "completed": N_("The task is completed and its answers are recorded."),
    "saved-filter": N_("The filter is saved."),
    "deleted-filter": N_("The filter is deleted."),
    "given-back": N_("The task is back with the team."),
}


def tab_labels(actor: StaffActor) -> list[tuple[Tab, str]]:
    tabs = [(Tab.MINE, gettext("Assigned to me")), (Tab.UNASSIGNED, gettext("Unassigned"))]
    if actor.manager:
        tabs.append((Tab.ALL, gettext("All tasks")))
    return tabs


def sort_labels() -> list[tuple[Sort, str]]:
    return [
        (Sort.DUE, gettext("Due date (overdue first)")),
        (Sort.FOLLOW_UP, gettext("Follow-up date")),
        (Sort.PRIORITY, gettext("Priority")),
        (Sort.CREATED, gettext("Newest")),
    ]


class TaskOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    user_task_key: int
    name: str
    element_id: str
    case_id: uuid.UUID | None
    case_number: str | None
    assignee: str | None
    candidate_groups: list[str]
    priority: int
    due_date: str | None
    follow_up_date: str | None
    overdue: bool
    state: str


class InboxOut(msgspec.Struct, rename="camel"):
    tasks: list[TaskOut]
    total: int
    page: int
    pages: int


def inbox_out(page: InboxPage) -> InboxOut:
    return InboxOut(
        tasks=[
            TaskOut(
                id=row.task.id,
                user_task_key=row.task.user_task_key,
                name=row.task.name,
                element_id=row.task.element_id,
                case_id=row.task.case_id,
                case_number=row.case_number,
                assignee=row.task.assignee,
                candidate_groups=list(row.task.candidate_groups or []),
                priority=row.task.priority,
                due_date=row.task.due_date.isoformat() if row.task.due_date else None,
                follow_up_date=row.task.follow_up_date.isoformat()
                if row.task.follow_up_date
                else None,
                overdue=row.overdue,
                state=row.task.state.value,
            )
            for row in page.rows
        ],
        total=page.total,
        page=page.page,
        pages=page.pages,
    )


async def inbox_template(
    db: AsyncSession,
    staff: StaffActor,
    query: InboxQuery,
    *,
    message: str = "",
    message_is_error: bool = False,
    status_code: int = 200,
) -> Template:
    if query.tab is Tab.ALL and not staff.manager:
        query = replace(query, tab=Tab.MINE)
    page = await inbox(db, staff, query)
    kinds = await descriptors(db)
    steps = []
    for element_id, name in await staff_steps(db):
        texts = next((d.tasks[element_id] for d in kinds.values() if element_id in d.tasks), None)
        steps.append((element_id, pick(texts) if texts else name))

    def task_name(row: Any) -> str:
        kind = kinds.get(row.case_type or "")
        return kind.task_name(row.task.element_id, row.task.name) if kind else str(row.task.name)

    return Template(
        "staff/inbox.html.j2",
        context={
            "staff": staff,
            "query": query,
            "page": page,
            "tabs": tab_labels(staff),
            "sorts": sort_labels(),
            "case_types": [(key, pick(d.name)) for key, d in kinds.items()],
            "steps": steps,
            "saved": await saved_filters(db, staff),
            "task_name": task_name,
            "message": message,
            "message_is_error": message_is_error,
        },
        status_code=status_code,
    )


class InboxController(StaffController):
    include_in_schema = False

    @get("/")
    async def inbox_page(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        staff: NamedDependency[StaffActor],
        notice: FromQuery[str] = "",
    ) -> Template:
        message = NOTICES.get(notice)
        return await inbox_template(
            db,
            staff,
            InboxQuery.from_params(dict(request.query_params)),
            message=gettext(message) if message else "",
        )

    @post("/filters")
    async def save(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        staff: NamedDependency[StaffActor],
    ) -> Redirect | Template:
        form = dict(await request.form())
        query = InboxQuery.from_params(form)
        try:
            await save_filter(
                db, staff, str(form.get("name", "")), query, str(form.get("team", "")) or None
            )
        except FilterError as exc:
            await db.rollback()
            return await inbox_template(
                db,
                staff,
                query,
                message=gettext(str(exc)),
                message_is_error=True,
                status_code=400,
            )
        await db.commit()
        return Redirect("/?notice=saved-filter", status_code=303)

    @post("/filters/{filter_id:uuid}/delete")
    async def delete(
        self,
        db: NamedDependency[AsyncSession],
        staff: NamedDependency[StaffActor],
        filter_id: FromPath[uuid.UUID],
    ) -> Redirect:
        await delete_filter(db, staff, filter_id)
        await db.commit()
        return Redirect("/?notice=deleted-filter", status_code=303)

    @get("/api/tasks", include_in_schema=True, tags=["staff"])
    async def api_inbox(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        staff: NamedDependency[StaffActor],
    ) -> InboxOut:
        """The inbox as JSON: the same tabs, filters and candidate-group rules as the page."""
        query = InboxQuery.from_params(dict(request.query_params))
        return inbox_out(await inbox(db, staff, query))
