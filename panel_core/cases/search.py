"""The staff's case list: cases found by number, customer, type, status, channel and dates.

A customer is found through the keyed blind index of their PESEL or phone number, made by
the same functions as at registration (``pesel_index``, ``phone_index``): the panel never
keeps a PESEL, nor compares one. Every filter is served by an index of ``case_file`` or
``participant`` (panel_core/db/models.py); ``bench/case_search.py`` measures them.
"""

from __future__ import annotations

import enum
import math
import re
import uuid
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from advanced_alchemy.filters import (
    BeforeAfter,
    CollectionFilter,
    ComparisonFilter,
    ExistsFilter,
    LimitOffset,
    OnBeforeAfter,
    OrderBy,
    StatementFilter,
)
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.cases import case_types
from panel_core.cases.case_types import Descriptor
from panel_core.cases.numbers import is_valid_case_number, normalize_case_number
from panel_core.db.models import Case, Participant
from panel_core.i18n import N_, gettext
from panel_core.identity.pesel import PeselError, pesel_index, validate_pesel
from panel_core.identity.phone import PhoneError, normalize_phone, phone_index

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Date filters name the bank's calendar days, not UTC ones.
DAY_ZONE = ZoneInfo("Europe/Warsaw")
# What a case number, or the start of one, can hold once normalised; it also keeps LIKE's
# wildcards out of the prefix search.
_CASE_NUMBER_TEXT = re.compile(r"[A-Z0-9-]+")
_PESEL_SHAPE = re.compile(r"\d{11}")


class CaseQueryError(ValueError):
    """The search is malformed; the message (a msgid, with ``params``) says why and is safe
    to show to staff."""

    def __init__(self, message: str, **params: str) -> None:
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params

    def translated(self) -> str:
        return gettext(self.message, **self.params)


class CaseSort(enum.StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"
    CASE_NUMBER = "case-number"


@dataclass(frozen=True, slots=True)
class CaseQuery:
    """What a member of staff asks for; every field left empty filters nothing."""

    # Exact when, once normalised, it is a whole valid case number; otherwise its start.
    case_number: str | None = None
    # A full PESEL or a phone number (any spelling registration accepts) of any participant.
    customer: str | None = None
    # The same, already turned into its blind index (``customer_key``): what a page's URL
    # carries, so that the number itself never reaches a URL, a log or the history.
    customer_index: CustomerKey | None = None
    case_types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    # Calendar days in DAY_ZONE, both included.
    created_from: date | None = None
    created_to: date | None = None
    sort: CaseSort = CaseSort.NEWEST
    page: int = 1
    # Capped at MAX_PAGE_SIZE.
    page_size: int = DEFAULT_PAGE_SIZE


@dataclass(frozen=True, slots=True)
class CaseSummary:
    case_id: uuid.UUID
    case_number: str
    case_type: str
    status: str
    channel: str
    created_at: datetime
    participant_count: int
    process_instance_key: int | None


@dataclass(frozen=True, slots=True)
class CasePage:
    items: list[CaseSummary]
    # Matching cases on every page together.
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.page_size)

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


@dataclass(frozen=True, slots=True)
class CustomerKey:
    """The blind index a customer term stands for, and which of the two it is."""

    kind: Literal["pesel", "phone"]
    index: str

    @property
    def token(self) -> str:
        return f"{self.kind}:{self.index}"


def customer_key(hash_key: str, value: str) -> CustomerKey:
    """Validate a customer term as registration does and turn it into its blind index.

    Eleven digits are a PESEL (a phone number that long is written with its ``+``); anything
    else must be a phone number. A term that is neither is an error, not an empty result:
    staff should learn of a typo rather than conclude that the customer has no case.
    """
    compact = re.sub(r"\s", "", value)
    if _PESEL_SHAPE.fullmatch(compact):
        try:
            return CustomerKey("pesel", pesel_index(hash_key, validate_pesel(compact)))
        except PeselError as exc:
            raise CaseQueryError(
                N_("That is not a valid PESEL: check its digits with the customer.")
            ) from exc
    try:
        return CustomerKey("phone", phone_index(hash_key, normalize_phone(value)))
    except PhoneError as exc:
        raise CaseQueryError(
            N_("Give the customer's full PESEL (11 digits) or phone number (e.g. +48 600 700 800).")
        ) from exc


_INDEX_TEXT = re.compile(r"(pesel|phone):([0-9a-f]{64})")


def parse_customer_index(text: str) -> CustomerKey | None:
    """A blind index as ``CustomerKey.token`` writes it; None for anything else."""
    match = _INDEX_TEXT.fullmatch(text.strip())
    if match is None:
        return None
    kind: Literal["pesel", "phone"] = "pesel" if match.group(1) == "pesel" else "phone"
    return CustomerKey(kind, match.group(2))


def _known(kind: str, values: tuple[str, ...], allowed: AbstractSet[str]) -> list[str]:
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise CaseQueryError(
            N_("Unknown %(kind)s: %(values)s."), kind=kind, values=", ".join(unknown)
        )
    return list(values)


def _start_of_day(day: date) -> datetime:
    return datetime.combine(day, time(0), DAY_ZONE).astimezone(UTC)


def _case_number_filter(text: str) -> StatementFilter | None:
    number = normalize_case_number(text)
    if not number:
        return None
    if not _CASE_NUMBER_TEXT.fullmatch(number):
        raise CaseQueryError(N_("A case number holds letters, digits and dashes only."))
    if is_valid_case_number(number):
        return ComparisonFilter("case_number", "eq", number)
    # A prefix LIKE with a constant start: ix_case_file_case_number_prefix serves it.
    return ComparisonFilter("case_number", "like", f"{number}%")


def _order(sort: CaseSort) -> list[StatementFilter]:
    if sort is CaseSort.CASE_NUMBER:
        return [OrderBy("case_number", "asc")]
    direction: Literal["asc", "desc"] = "desc" if sort is CaseSort.NEWEST else "asc"
    # id breaks ties in created_at, so that no case shows on two pages or on none.
    return [OrderBy("created_at", direction), OrderBy("id", direction)]


def case_filters(
    query: CaseQuery, *, hash_key: str, kinds: Mapping[str, Descriptor]
) -> tuple[list[StatementFilter], int]:
    """The repository filters of a query, and the page size in force; raises CaseQueryError.

    Case types, statuses and channels are those of the deployed descriptors (``kinds``).
    """
    filters: list[StatementFilter] = []
    if query.case_number is not None:
        number = _case_number_filter(query.case_number)
        if number is not None:
            filters.append(number)
    key = query.customer_index
    if query.customer is not None and query.customer.strip():
        key = customer_key(hash_key, query.customer)
    if key is not None:
        column = Participant.pesel_index if key.kind == "pesel" else Participant.phone_index
        filters.append(ExistsFilter([Participant.case_id == Case.id, column == key.index]))
    for field, kind, values, allowed in (
        ("case_type", "case type", query.case_types, frozenset(kinds)),
        ("status", "status", query.statuses, {s for d in kinds.values() for s in d.statuses}),
        ("channel", "channel", query.channels, {ch for d in kinds.values() for ch in d.channels}),
    ):
        if values:
            filters.append(CollectionFilter(field, _known(kind, values, allowed)))
    if query.created_from and query.created_to and query.created_from > query.created_to:
        raise CaseQueryError(N_("The first day of the range comes after its last day."))
    if query.created_from is not None:
        filters.append(OnBeforeAfter("created_at", None, _start_of_day(query.created_from)))
    if query.created_to is not None:
        end = _start_of_day(query.created_to + timedelta(days=1))
        filters.append(BeforeAfter("created_at", before=end, after=None))
    if query.page < 1 or query.page_size < 1:
        raise CaseQueryError(N_("Pages and page sizes count from 1."))
    size = min(query.page_size, MAX_PAGE_SIZE)
    filters += _order(query.sort)
    filters.append(LimitOffset(limit=size, offset=(query.page - 1) * size))
    return filters, size


class CaseRepository(SQLAlchemyAsyncRepository[Case]):
    model_type = Case
    # The total comes from a second query, not from count(*) OVER () beside the page: the
    # window needs every matching row before LIMIT applies, which turns "the newest 20 of
    # 40 000" into reading all 40 000 rows; apart, the count is an index-only scan and the
    # page reads its 20 rows off the index in order.
    count_with_window_function = False


async def _participant_counts(
    session: AsyncSession, case_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    if not case_ids:
        return {}
    rows = await session.execute(
        select(Participant.case_id, func.count())
        .where(Participant.case_id.in_(case_ids))
        .group_by(Participant.case_id)
    )
    return {case_id: count for case_id, count in rows}


async def search_cases(session: AsyncSession, query: CaseQuery, *, hash_key: str) -> CasePage:
    """One page of the cases matching ``query``, with the total; raises CaseQueryError."""
    # The deployed case types say which filter values exist; a query without such filters
    # needs no look-up.
    filtered = query.case_types or query.statuses or query.channels
    kinds = await case_types.deployed(session) if filtered else {}
    filters, size = case_filters(query, hash_key=hash_key, kinds=kinds)
    cases, total = await CaseRepository(session=session).get_many_and_count(*filters)
    counts = await _participant_counts(session, [case.id for case in cases])
    return CasePage(
        items=[
            CaseSummary(
                case_id=case.id,
                case_number=case.case_number,
                case_type=case.case_type,
                status=case.status,
                channel=case.channel,
                created_at=case.created_at,
                participant_count=counts.get(case.id, 0),
                process_instance_key=case.process_instance_key,
            )
            for case in cases
        ],
        total=total,
        page=query.page,
        page_size=size,
    )
