"""A case as one JSON file (panel_core/cases/export.py), for team managers only: it holds
everything the bank keeps about the case, the conversations included. Each download is
audited with who took it."""

from __future__ import annotations

import json
import uuid
from typing import Any

from litestar import Request, get
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath
from litestar.response import Response
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.audit import log as audit
from panel_core.cases.export import EXPORT_FORMAT, case_export
from panel_core.i18n import N_, gettext
from panel_core.identity.actors import StaffActor
from panel_web.downloads import content_disposition
from panel_web.request import client_of
from staff.controllers.cases import visible_case
from staff.dependencies import StaffController, require_staff, staff_of

NOT_FOUND = "Not found"
MANAGERS_ONLY = N_("Only team managers may export a case.")


def require_manager(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if not staff_of(connection).manager:
        raise PermissionDeniedException(gettext(MANAGERS_ONLY))


class CaseExportController(StaffController):
    include_in_schema = False
    guards = [require_staff, require_manager]  # noqa: RUF012 - Litestar reads class attributes

    @get("/cases/{case_id:uuid}/export")
    async def export(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
    ) -> Response[bytes]:
        case = await visible_case(db, staff, case_id)
        exported = await case_export(db, case.id)
        if exported is None:
            raise NotFoundException(NOT_FOUND)
        audit.record(
            db,
            audit.CASE_EXPORTED,
            case_id=case.id,
            actor=staff,
            client=client_of(request),
            format=EXPORT_FORMAT,
        )
        await db.commit()
        return Response(
            json.dumps(exported, ensure_ascii=False, indent=2).encode("utf-8"),
            media_type="application/json",
            headers={
                "Content-Disposition": content_disposition(f"{case.case_number}.json"),
                "Cache-Control": "no-store",
            },
        )
