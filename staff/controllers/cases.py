"""The case list with its search, the case page, and documents: download and review."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Redirect, Response, Stream, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.appointments.views import case_appointments
from panel_core.audit import activity
from panel_core.audit import log as audit
from panel_core.cases.case_types import deployed as descriptors
from panel_core.cases.case_types import status_label
from panel_core.cases.notes import MAX_NOTE_CHARS, case_notes, with_editable
from panel_core.cases.search import (
    CasePage,
    CaseQuery,
    CaseQueryError,
    CaseSort,
    customer_key,
    parse_customer_index,
    search_cases,
)
from panel_core.cases.view import case_view, load_case, may_review
from panel_core.conversations.staff_view import case_conversations
from panel_core.db.models import Case, Document, DocumentState, PanelTask
from panel_core.documents.service import download_name, review_document
from panel_core.i18n import N_, gettext, pick
from panel_core.identity.actors import StaffActor
from panel_core.notifications.contact import contact_view
from panel_core.notifications.live import DOCUMENTS_CHANGED, publish_case_update
from panel_core.tasks.assisted import case_section as assisted_section
from panel_core.tasks.signing import case_signatures, get_case_signature
from panel_web.downloads import content_disposition, exact_bytes
from panel_web.locale import safe_return_path
from panel_web.request import client_of
from staff.dependencies import StaffController, StaffServices

NOT_FOUND = "Not found"
REVIEW_NEEDS_REASON = N_("Say why the document is rejected: the participant reads it.")
REVIEW_NOT_YOURS = N_(
    "Only the person working on this case's review, or a team manager, can review documents."
)
REVIEW_DONE = N_("This document has been reviewed already.")
NOTICES = {
    "accepted": N_("The document is accepted."),
    "rejected": N_("The document is rejected; the participant is asked for a new one."),
    "note-added": N_("The note is added."),
    "note-saved": N_("The note is changed."),
}


def _day(text: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CaseQueryError(N_("Enter dates as day, month and year.")) from exc


def case_query(params: dict[str, list[str]]) -> CaseQuery:
    def one(name: str) -> str:
        values = params.get(name) or [""]
        return values[0].strip()[:100]

    def many(name: str) -> tuple[str, ...]:
        return tuple(v for v in params.get(name, []) if v)

    try:
        sort = CaseSort(one("sort") or CaseSort.NEWEST)
    except ValueError:
        sort = CaseSort.NEWEST
    page = one("page")
    return CaseQuery(
        case_number=one("case_number") or None,
        customer=one("customer") or None,
        customer_index=parse_customer_index(one("who")),
        case_types=many("case_type"),
        statuses=many("status"),
        channels=many("channel"),
        created_from=_day(one("created_from")),
        created_to=_day(one("created_to")),
        sort=sort,
        page=max(1, int(page)) if page.isdigit() else 1,
    )


def searched(query: CaseQuery) -> dict[str, Any]:
    """What the audit log keeps of a search: which filters, never the customer's number."""
    return {
        "case_number": query.case_number,
        "customer": bool(query.customer or query.customer_index),
        "case_types": list(query.case_types),
        "statuses": list(query.statuses),
        "channels": list(query.channels),
        "created_from": query.created_from.isoformat() if query.created_from else None,
        "created_to": query.created_to.isoformat() if query.created_to else None,
    }


class CaseOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    case_number: str
    case_type: str
    status: str
    channel: str
    created_at: datetime
    participants: int


class CasesOut(msgspec.Struct, rename="camel"):
    cases: list[CaseOut]
    total: int
    page: int
    pages: int


def cases_out(page: CasePage) -> CasesOut:
    return CasesOut(
        cases=[
            CaseOut(
                id=item.case_id,
                case_number=item.case_number,
                case_type=item.case_type,
                status=item.status,
                channel=item.channel,
                created_at=item.created_at,
                participants=item.participant_count,
            )
            for item in page.items
        ],
        total=page.total,
        page=page.page,
        pages=page.pages,
    )


class CasesController(StaffController):
    include_in_schema = False

    @get("/cases/")
    async def case_list(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
    ) -> Template | Redirect:
        params = {key: request.query_params.getall(key) for key in request.query_params}
        if params.get("customer"):
            # A number typed into a URL: the page carries its blind index instead.
            return await self._search(request, db, services, staff, params)
        return await self._list(request, db, services, staff, params)

    @post("/cases/")
    async def search(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
    ) -> Template | Redirect:
        """The search form is posted, so that a PESEL or phone number typed into it never
        appears in a URL: the list it leads to names the customer by blind index."""
        form = await request.form()
        params = {key: [v for v in form.getall(key) if isinstance(v, str)] for key in form}
        params.pop("_csrf_token", None)
        return await self._search(request, db, services, staff, params)

    async def _search(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        services: StaffServices,
        staff: StaffActor,
        params: dict[str, list[str]],
    ) -> Template | Redirect:
        customer = (params.pop("customer", None) or [""])[0].strip()
        if customer:
            params.pop("who", None)
            try:
                key = customer_key(services.settings.hash_key, customer)
            except CaseQueryError as exc:
                return await self._list(
                    request, db, services, staff, params, error=exc.translated(), typed=customer
                )
            params["who"] = [key.token]
        kept = [(k, v) for k, values in params.items() if k != "page" for v in values if v]
        return Redirect(f"/cases/?{urlencode(kept)}", status_code=303)

    async def _list(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        services: StaffServices,
        staff: StaffActor,
        params: dict[str, list[str]],
        *,
        error: str = "",
        typed: str = "",
    ) -> Template:
        kinds = await descriptors(db)
        page: CasePage | None = None
        query = CaseQuery()
        if not error:
            try:
                query = case_query(params)
                page = await search_cases(db, query, hash_key=services.settings.hash_key)
            except CaseQueryError as exc:
                error = exc.translated()
        if page is not None and any(v for k, v in params.items() if k not in {"page", "sort"}):
            client = client_of(request)
            audit.record(
                db,
                audit.CASES_SEARCHED,
                actor=staff,
                client=client,
                found=page.total,
                **searched(query),
            )
            await db.commit()

        def label(case_type: str, status: str) -> str:
            kind = kinds.get(case_type)
            return status_label(kind, status) if kind else status

        statuses: dict[str, str] = {}
        channels: dict[str, str] = {}
        for kind in kinds.values():
            for status in kind.statuses:
                statuses.setdefault(status, status_label(kind, status))
            for channel, names in kind.channels.items():
                channels.setdefault(channel, pick(names))
        return Template(
            "staff/cases.html.j2",
            context={
                "staff": staff,
                "params": {k: v[0] if v else "" for k, v in params.items()},
                "chosen": params,
                "typed": typed,
                "by_customer": query.customer_index.kind if query.customer_index else "",
                "page": page,
                "error": error,
                "case_types": [(key, pick(d.name)) for key, d in kinds.items()],
                "type_name": lambda key: pick(kinds[key].name) if key in kinds else key,
                "statuses": list(statuses.items()),
                "status_name": label,
                "channels": sorted(channels.items(), key=lambda item: item[1]),
                "channel_name": lambda channel: channels.get(channel, channel),
                "sorts": [
                    (CaseSort.NEWEST.value, gettext("Newest first")),
                    (CaseSort.OLDEST.value, gettext("Oldest first")),
                    (CaseSort.CASE_NUMBER.value, gettext("Case number")),
                ],
                "query_without_page": [
                    (k, v) for k, values in params.items() if k != "page" for v in values
                ],
            },
            status_code=400 if error else 200,
        )

    @get("/cases/{case_id:uuid}")
    async def case_page(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
        notice: FromQuery[str] = "",
        problem: FromQuery[str] = "",
    ) -> Template:
        case = await visible_case(db, staff, case_id)
        client = client_of(request)
        audit.record(
            db,
            audit.CASE_VIEWED,
            case_id=case.id,
            actor=staff,
            client=client,
        )
        await db.commit()
        view = await case_view(db, case)
        message = NOTICES.get(notice) or PROBLEMS.get(problem)
        signer = {row.participant.id: row.label for row in view.participants}
        return Template(
            "staff/case.html.j2",
            context={
                "staff": staff,
                "view": view,
                "case": case,
                "signatures": [
                    (signature, signer.get(signature.participant_id, ""))
                    for signature in await case_signatures(db, case.id)
                ],
                "reviewable": may_review(staff, [row.task for row in view.tasks]),
                "appointments": await case_appointments(
                    db,
                    view,
                    staff,
                    services.settings,
                    datetime.fromtimestamp(services.clock.now(), UTC),
                ),
                "notes": with_editable(
                    await case_notes(db, case.id),
                    staff,
                    datetime.fromtimestamp(services.clock.now(), UTC),
                    services.settings.staff_note_edit_window_seconds,
                ),
                "note_action": f"/cases/{case.id}/notes",
                "note_limit": MAX_NOTE_CHARS,
                "note_window_minutes": services.settings.staff_note_edit_window_seconds // 60,
                "contact": await contact_view(
                    services.settings, services.redis, staff, view, services.clock.now()
                ),
                "assisted": await assisted_section(db, services.settings, staff, view),
                "conversations": await case_conversations(db, staff, case),
                "return_to": request.url.path,
                "live_events": f"/events/?case={case.id}",
                "message": gettext(message) if message else "",
                "message_is_error": problem in PROBLEMS,
            },
        )

    @get("/cases/{case_id:uuid}/signatures/{signature_id:uuid}")
    async def signed_document(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
        signature_id: FromPath[uuid.UUID],
    ) -> Response[bytes]:
        """What a participant signed, byte for byte as the code was bound to it."""
        case = await visible_case(db, staff, case_id)
        signature = await get_case_signature(db, case.id, signature_id)
        if signature is None or not signature.content:
            raise NotFoundException(NOT_FOUND)
        audit.record(
            db,
            audit.DOCUMENT_DOWNLOADED,
            case_id=case.id,
            participant_id=signature.participant_id,
            actor=staff,
            client=client_of(request),
            signature=str(signature.id),
        )
        await db.commit()
        return exact_bytes(
            signature.content,
            media_type=signature.media_type,
            filename=signature.filename,
            sha256=signature.document_sha256,
        )

    @get("/documents/{document_id:uuid}")
    async def download(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        document_id: FromPath[uuid.UUID],
    ) -> Stream:
        document = await db.get(Document, document_id)
        if document is None or document.state == DocumentState.REMOVED:
            raise NotFoundException(NOT_FOUND)
        client = client_of(request)
        audit.record(
            db,
            audit.DOCUMENT_DOWNLOADED,
            case_id=document.case_id,
            actor=staff,
            client=client,
            document=str(document.id),
        )
        await db.commit()
        return Stream(
            services.storage.read(document.storage_key),
            media_type=document.media_type,
            headers={
                "Content-Disposition": content_disposition(download_name(document)),
                "Content-Length": str(document.size_bytes),
                "Cache-Control": "no-store",
            },
        )

    @post("/documents/{document_id:uuid}/review")
    async def review(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        document_id: FromPath[uuid.UUID],
    ) -> Redirect:
        form = await request.form()
        document = await db.get(Document, document_id)
        if document is None or document.state == DocumentState.REMOVED:
            raise NotFoundException(NOT_FOUND)
        back = safe_return_path(str(form.get("return_to") or f"/cases/{document.case_id}"))
        accepted = str(form.get("decision", "")) == "accept"
        note = str(form.get("note", "")).strip()
        case_tasks = await _case_tasks(db, document.case_id)
        problem = ""
        if not may_review(staff, case_tasks):
            problem = "not-yours"
        elif document.state != DocumentState.UPLOADED:
            problem = "reviewed"
        elif not accepted and not note:
            problem = "reason"
        if problem:
            return Redirect(f"{back}?problem={problem}#documents", status_code=303)
        await review_document(
            db,
            document.id,
            accepted=accepted,
            note=note,
            now=datetime.fromtimestamp(services.clock.now(), UTC),
        )
        client = client_of(request)
        audit.record(
            db,
            audit.DOCUMENT_REVIEWED,
            case_id=document.case_id,
            participant_id=document.participant_id,
            actor=staff,
            client=client,
            document=str(document.id),
            accepted=accepted,
        )
        activity.record(
            db,
            activity.DOCUMENT_REVIEWED,
            case_id=document.case_id,
            participant_id=document.participant_id,
            accepted=accepted,
        )
        await db.commit()
        await publish_case_update(services.redis, document.case_id, DOCUMENTS_CHANGED)
        notice = "accepted" if accepted else "rejected"
        return Redirect(f"{back}?notice={notice}#documents", status_code=303)

    @get("/api/cases", include_in_schema=True, tags=["staff"])
    async def api_cases(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
    ) -> CasesOut:
        """Cases by case_number, who (a blind index from a search), case_type, status,
        channel (each repeatable), created_from, created_to (YYYY-MM-DD), sort and page.
        A customer's number is searched with POST /api/cases/search, never in a URL."""
        params = {key: request.query_params.getall(key) for key in request.query_params}
        if params.get("customer"):
            raise ClientException("Send a customer's number with POST /api/cases/search.")
        return await self._api_search(request, db, services, staff, params)

    @post("/api/cases/search", include_in_schema=True, tags=["staff"], status_code=200)
    async def api_search(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        data: JSONBody[CaseSearchIn],
    ) -> CasesOut:
        params = {
            "case_number": [data.case_number],
            "customer": [data.customer],
            "case_type": data.case_types,
            "status": data.statuses,
            "channel": data.channels,
            "created_from": [data.created_from],
            "created_to": [data.created_to],
            "sort": [data.sort],
            "page": [str(data.page)],
        }
        return await self._api_search(request, db, services, staff, params)

    async def _api_search(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        services: StaffServices,
        staff: StaffActor,
        params: dict[str, list[str]],
    ) -> CasesOut:
        try:
            query = case_query(params)
            page = await search_cases(db, query, hash_key=services.settings.hash_key)
        except CaseQueryError as exc:
            raise ClientException(exc.translated()) from exc
        client = client_of(request)
        audit.record(
            db,
            audit.CASES_SEARCHED,
            actor=staff,
            client=client,
            found=page.total,
            **searched(query),
        )
        await db.commit()
        return cases_out(page)


class CaseSearchIn(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    case_number: str = ""
    # A full PESEL or phone number.
    customer: str = ""
    case_types: list[str] = msgspec.field(default_factory=list)
    statuses: list[str] = msgspec.field(default_factory=list)
    channels: list[str] = msgspec.field(default_factory=list)
    created_from: str = ""
    created_to: str = ""
    sort: str = ""
    page: int = 1


PROBLEMS = {
    "not-yours": REVIEW_NOT_YOURS,
    "reviewed": REVIEW_DONE,
    "reason": REVIEW_NEEDS_REASON,
}


async def visible_case(db: AsyncSession, staff: StaffActor, case_id: uuid.UUID) -> Case:
    """The case, if this member of staff may see it: the case page and everything it links
    to (its signed documents) answer 404 alike otherwise. Every signed-in member of staff
    sees every case today; ``staff`` is here so that a narrower rule has one place to go."""
    case = await load_case(db, case_id)
    if case is None:
        raise NotFoundException(NOT_FOUND)
    return case


async def _case_tasks(db: AsyncSession, case_id: uuid.UUID) -> list[PanelTask]:
    return list(await db.scalars(select(PanelTask).where(PanelTask.case_id == case_id)))
