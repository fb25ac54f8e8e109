"""Case-type descriptors: what the panel tells participants about a kind of case.

A descriptor (``bpmn/<case-type>.case.json``) sits next to the BPMN model and is authored by
the process designer, not in Python: the business statuses and the stages they belong to,
plain-language "what happens next" texts, the participants' role names, task names, the
documents the case may ask for, instructions and the FAQ, each in every panel language.
``customer-panel deploy`` checks it against the model and stores it with the deployment.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import msgspec
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core import constants as c
from panel_core.db.models import CaseTypeDescriptor
from panel_core.i18n import LOCALES, gettext, pick

DESCRIPTOR_SUFFIX = ".case.json"
_BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
_ZEEBE = "{http://camunda.org/schema/zeebe/1.0}"

# A text in every panel language: {"pl": "...", "en": "..."}.
Texts = dict[str, str]


class Stage(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    id: str
    title: Texts
    # The business statuses (set by the model's status steps) during which the case is here.
    statuses: list[str]
    description: Texts = msgspec.field(default_factory=dict)


class Status(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    label: Texts
    next: Texts
    # A final status ends the participants' work; the timeline shows every stage as passed.
    final: bool = False
    # The decision SMS of a final status, sent to every participant in their language when
    # the case enters it (the in-review text promises one). Without personal data or reasons:
    # it goes to a phone the bank typed in, which may no longer be the participant's.
    sms: Texts = msgspec.field(default_factory=dict)
    # Whether participants see the reason the model gives with this status (statusReason);
    # some decisions' reasons must reach them another way (by post) or not at all.
    show_reason: bool = False
    # Where the reason comes from when the model gives none: the answer to this form field
    # (its key) in the case's latest completed bank task, kept in the panel like every
    # free-text answer (e.g. the analyst's "decisionReason").
    reason_answer: str = ""


class DocumentType(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    title: Texts
    description: Texts = msgspec.field(default_factory=dict)


class FaqEntry(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    question: Texts
    answer: Texts


class Descriptor(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    case_type: str
    process_id: str
    name: Texts
    # Role names as the other participants read them; "%(n)s" numbers co-participants.
    roles: dict[str, Texts]
    stages: list[Stage]
    statuses: dict[str, Status]
    instructions: Texts
    tasks: dict[str, Texts] = msgspec.field(default_factory=dict)
    documents: dict[str, DocumentType] = msgspec.field(default_factory=dict)
    faq: list[FaqEntry] = msgspec.field(default_factory=list)

    def stage_index(self, status: str) -> int:
        for index, stage in enumerate(self.stages):
            if status in stage.statuses:
                return index
        return 0

    def role_name(self, role: str, ordinal: int) -> str:
        """How others see a participant: "Co-borrower 1", never a name."""
        template = pick(self.roles.get(role)) or role
        return template % {"n": ordinal} if "%(n)s" in template else template

    def task_name(self, element_id: str, fallback: str) -> str:
        return pick(self.tasks.get(element_id)) or fallback


class DescriptorError(ValueError):
    """The descriptor does not fit its model; nothing is deployed."""


def parse(raw: bytes) -> Descriptor:
    try:
        return msgspec.json.decode(raw, type=Descriptor)
    except msgspec.ValidationError as exc:
        raise DescriptorError(str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise DescriptorError(f"not valid JSON ({exc})") from exc


def _all_texts(descriptor: Descriptor) -> Iterable[tuple[str, Texts]]:
    yield "name", descriptor.name
    yield "instructions", descriptor.instructions
    for role, texts in descriptor.roles.items():
        yield f"roles.{role}", texts
    for stage in descriptor.stages:
        yield f"stages.{stage.id}.title", stage.title
        if stage.description:
            yield f"stages.{stage.id}.description", stage.description
    for status, status_entry in descriptor.statuses.items():
        yield f"statuses.{status}.label", status_entry.label
        yield f"statuses.{status}.next", status_entry.next
        if status_entry.sms:
            yield f"statuses.{status}.sms", status_entry.sms
    for element, texts in descriptor.tasks.items():
        yield f"tasks.{element}", texts
    for doc, entry in descriptor.documents.items():
        yield f"documents.{doc}.title", entry.title
    for index, faq in enumerate(descriptor.faq):
        yield f"faq[{index}].question", faq.question
        yield f"faq[{index}].answer", faq.answer


def _decision_problems(status: str, entry: Status) -> list[str]:
    """A final status must tell everyone by SMS; only a final status decides anything."""
    if entry.final:
        if not entry.sms:
            # Named apart from a half-translated text: here the whole SMS is missing.
            return [f"final status {status!r} has no 'sms' (the decision text)"]
        return []
    problems = []
    if entry.sms:
        problems.append(f"status {status!r} is not final and cannot have an 'sms'")
    if entry.show_reason:
        problems.append(f"status {status!r} is not final and cannot have 'showReason'")
    return problems


def model_facts(bpmn_xml: bytes) -> tuple[set[str], set[str], set[str]]:
    """(process ids, statuses the status steps set, ids of user tasks) of a BPMN model."""
    root = ElementTree.fromstring(bpmn_xml)  # noqa: S314 - our own model file, no DTDs
    processes = {p.get("id", "") for p in root.iter(f"{_BPMN}process")}
    statuses: set[str] = set()
    for task in root.iter(f"{_BPMN}serviceTask"):
        definition = task.find(f"{_BPMN}extensionElements/{_ZEEBE}taskDefinition")
        if definition is None or definition.get("type") != c.JOB_SET_CASE_STATUS:
            continue
        for header in task.iter(f"{_ZEEBE}header"):
            if header.get("key") == c.HEADER_STATUS:
                statuses.add(header.get("value", ""))
    user_tasks = {t.get("id", "") for t in root.iter(f"{_BPMN}userTask")}
    return processes, statuses, user_tasks


def check(descriptor: Descriptor, bpmn_xml: bytes) -> list[str]:
    """Every way the descriptor would leave a participant without a text or a stage."""
    problems: list[str] = []
    processes, statuses, user_tasks = model_facts(bpmn_xml)
    if descriptor.process_id not in processes:
        problems.append(f"process {descriptor.process_id!r} is not in the model")
    staged = {status for stage in descriptor.stages for status in stage.statuses}
    for status in sorted(statuses | {c.STATUS_COLLECTING}):
        if status not in descriptor.statuses:
            problems.append(f"status {status!r} set by the model has no entry in 'statuses'")
        if status not in staged:
            problems.append(f"status {status!r} belongs to no stage")
    for status, entry in sorted(descriptor.statuses.items()):
        problems.extend(_decision_problems(status, entry))
    for element in sorted(descriptor.tasks):
        if element not in user_tasks:
            problems.append(f"task {element!r} is not a user task of the model")
    for where, texts in _all_texts(descriptor):
        missing = [locale for locale in LOCALES if not texts.get(locale, "").strip()]
        if missing:
            problems.append(f"{where} has no text in {', '.join(missing)}")
    if not descriptor.stages:
        problems.append("no stages")
    return problems


def descriptor_files(bpmn_dir: Path) -> list[Path]:
    return sorted(bpmn_dir.glob(f"*{DESCRIPTOR_SUFFIX}"))


def check_files(files: list[Path]) -> list[str]:
    """Problems of every descriptor among the files, against the models among them."""
    models = {path: path.read_bytes() for path in files if path.suffix == ".bpmn"}
    problems: list[str] = []
    for path in files:
        if not path.name.endswith(DESCRIPTOR_SUFFIX):
            continue
        try:
            descriptor = parse(path.read_bytes())
        except DescriptorError as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        model = next(
            (xml for xml in models.values() if descriptor.process_id in model_facts(xml)[0]),
            None,
        )
        if model is None:
            problems.append(
                f"{path.name}: no model deployed with it defines process {descriptor.process_id!r}"
            )
            continue
        problems.extend(f"{path.name}: {problem}" for problem in check(descriptor, model))
    return problems


def _insert_for(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def store(session: AsyncSession, raw: bytes) -> Descriptor:
    """Keep the descriptor as deployed; the newest deployment of a case type wins."""
    descriptor = parse(raw)
    document = json.loads(raw)
    statement = _insert_for(session)(CaseTypeDescriptor).values(
        case_type=descriptor.case_type,
        descriptor=document,
        sha256=hashlib.sha256(raw).hexdigest(),
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["case_type"],
            set_={"descriptor": document, "sha256": statement.excluded.sha256},
        )
    )
    return descriptor


async def load(session: AsyncSession, case_type: str) -> Descriptor:
    row = await session.scalar(
        select(CaseTypeDescriptor.descriptor).where(CaseTypeDescriptor.case_type == case_type)
    )
    if row is None:
        return fallback(case_type)
    return msgspec.convert(row, type=Descriptor)


def fallback(case_type: str) -> Descriptor:
    """What the panel shows for a case type deployed without a descriptor: still usable."""
    texts = {locale: case_type for locale in LOCALES}
    return Descriptor(
        case_type=case_type,
        process_id=case_type,
        name=texts,
        roles={},
        stages=[],
        statuses={},
        instructions={},
    )


def status_label(descriptor: Descriptor, status: str) -> str:
    entry = descriptor.statuses.get(status)
    return pick(entry.label) if entry else gettext("In progress")
