"""Case-type descriptors: everything the panel knows about a kind of case.

A descriptor (``bpmn/<case-type>/<case-type>.case.json``) sits next to the BPMN model and is
authored by the process designer, not in Python: the participants' roles and how many of each a case
takes, the channels that may open it, the business statuses and the stages they belong to,
plain-language "what happens next" texts, task names, the documents the case may ask for,
instructions and the FAQ, each in every panel language. ``customer-panel deploy`` checks it
against the model and stores it with the deployment; the panel has no case type of its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar
from xml.etree import ElementTree

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core import constants as c
from panel_core.cases.variants import AssistedRules, FormVariant, ModelTask, variant_problems
from panel_core.db.models import Case, CaseTypeDescriptor, CaseTypeDescriptorVersion
from panel_core.forms.submission import sent_names
from panel_core.i18n import LOCALES, gettext, pick
from panel_core.notifications.sms_templates import CASE_TYPE_TEXTS, placeholders, text_problems
from panel_core.notifications.staff_templates import MESSAGE_ID, OWN_TEXT, PANEL_MESSAGES
from panel_core.notifications.staff_templates import PLACEHOLDERS as STAFF_PLACEHOLDERS

DESCRIPTOR_SUFFIX = ".case.json"
_BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
_ZEEBE = "{http://camunda.org/schema/zeebe/1.0}"

# A text in every panel language: {"pl": "...", "en": "..."}.
Texts = dict[str, str]


class Person(Protocol):
    """A participant as the descriptor names them (a row of ``participant``)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def role(self) -> str: ...
    @property
    def ordinal(self) -> int: ...


PersonT = TypeVar("PersonT", bound=Person)

# Case numbers are typed by people and checked at login: PREFIX-YYYY-NNNNNNNN.
CASE_NUMBER_PREFIX = re.compile(r"[A-Z]{2,6}")

# How many participants one case takes at most, whatever the descriptor allows.
MAX_PARTICIPANTS = 10


class Role(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    # How the other participants read the role; "%(n)s" numbers people within the role
    # ("Co-borrower 1", "Co-borrower 2").
    label: Texts
    # How many participants of the role a case takes.
    min: int = 0
    max: int = MAX_PARTICIPANTS


class Stage(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    id: str
    title: Texts
    # The business statuses (set by the model's status steps) during which the case is here.
    statuses: list[str]
    description: Texts = msgspec.field(default_factory=dict)


# What a closed case may still have purged: the personal data of its participants, by kind.
PURGEABLE = (
    # Uploaded files (the bytes in storage, and their rows).
    "documents",
    # The signed documents' bytes: a bank that keeps signed contracts in its own archive
    # may purge them here; one that relies on the panel's copy leaves them out.
    "signatures",
    # Form answers, the values sent to the process and mirrored back, the bank's reason.
    "answers",
    "drafts",
    # The keyed hashes of the PESEL fragment and of the whole PESEL: after them, nobody
    # can sign in to the case and the customer card no longer finds it.
    "identity",
    # Contact details: the participants' phone numbers and e-mail addresses, and those of the
    # texts and e-mails sent to them (with what they said and carried).
    "phones",
    # The staff's notes on the case (notes on the customer go with their last case's identity).
    "notes",
    # Appointments with the bank (time, place, subject, the number called) and the
    # participants' requests to move them.
    "appointments",
    # The conversations with the bank (the chat): every message, and what the FAQ answered.
    "conversations",
)
# What participants see of a closed case while they may still sign in.
Shows = Literal["status", "documents", "everything"]


class AfterClosure(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """How long a closed case stays open to its participants, and when its data goes."""

    # Days after the closure during which participants may still sign in; 0 ends access
    # at once. After it, signing in answers as for a case that does not exist.
    access_days: int = 30
    # "status": the case's status and decision only; "documents": also the documents and
    # what they signed; "everything": the whole case as it was, read only.
    shows: Shows = "status"
    # Days after the closure when the retention job purges personal data (at least
    # ``access_days``).
    purge_after_days: int = 365
    # What it purges (PURGEABLE); all of it when left out. The case's anonymised record
    # (type, status, dates, roles) and the audit log are always kept.
    purge: tuple[str, ...] = PURGEABLE


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
    # A final status's own rule for after the closure (the outcome: access after an
    # approval may last until the products are set up, after a refusal a few days); the
    # case type's ``afterClosure`` when left out.
    after_closure: AfterClosure | None = None


class DocumentType(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    title: Texts
    description: Texts = msgspec.field(default_factory=dict)


class StaffMessage(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """A message staff may send a participant from the case page (``staffMessages``)."""

    # The case type's own text, with {case_number} and {link}; left out for one of the
    # panel's own messages of the same id.
    text: Texts = msgspec.field(default_factory=dict)
    # How the staff choose it (required with a text of its own).
    label: Texts = msgspec.field(default_factory=dict)


class FaqEntry(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    question: Texts
    answer: Texts
    # Shown only to participants of these roles; to everyone when empty.
    roles: list[str] = msgspec.field(default_factory=list)


# How participants see who of the bank answered them (``conversations.staffShownAs``).
STAFF_SHOWN_AS = ("bank", "first-name")


class ConversationRules(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """The chat of a case type's participants with the bank."""

    # The staff group whose queue the cases' new conversations join; the panel's setting
    # (PANEL_CHAT_DEFAULT_TEAM) when left out.
    team: str = ""
    # "bank": answers read as the bank's; "first-name": with the employee's first name.
    staff_shown_as: str = "bank"


class Descriptor(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    case_type: str
    process_id: str
    name: Texts
    # The participants' roles, in the order the panel lists people.
    roles: dict[str, Role]
    # The channels that may open a case of this type, with their names for the staff.
    channels: dict[str, Texts]
    stages: list[Stage]
    statuses: dict[str, Status]
    instructions: Texts
    # The status a case has from its opening until the model sets another; the first
    # status of the first stage when left out.
    initial_status: str = ""
    # What the case numbers of this type start with ("KR" in KR-2026-12345674); the panel's
    # setting (PANEL_CASE_NUMBER_PREFIX) when left out.
    case_number_prefix: str = ""
    # The case type's own SMS texts by purpose ("invitation"), each in every language, with
    # {placeholders}; the panel's own texts where left out.
    messages: dict[str, Texts] = msgspec.field(default_factory=dict)
    # Further instructions for the participants of one role, after the common ones.
    role_instructions: dict[str, Texts] = msgspec.field(default_factory=dict)
    tasks: dict[str, Texts] = msgspec.field(default_factory=dict)
    documents: dict[str, DocumentType] = msgspec.field(default_factory=dict)
    faq: list[FaqEntry] = msgspec.field(default_factory=list)
    # The messages staff may send its participants, by id, in the order offered; the panel's
    # own (staff_templates.PANEL_MESSAGES) when left out.
    staff_messages: dict[str, StaffMessage] = msgspec.field(default_factory=dict)
    # After the case closes (a final status, or the process ending without one).
    after_closure: AfterClosure = msgspec.field(default_factory=AfterClosure)
    # Other forms for a user task (by element id) where staff work on it: in assisted mode
    # (a participant's task, with them on the phone) or in the dashboard (a bank task), per
    # group (panel_core/cases/variants.py).
    form_variants: dict[str, list[FormVariant]] = msgspec.field(default_factory=dict)
    # What staff may do for participants in assisted mode.
    assisted: AssistedRules = msgspec.field(default_factory=AssistedRules)
    conversations: ConversationRules = msgspec.field(default_factory=ConversationRules)

    def closure_rule(self, status: str) -> AfterClosure:
        """The after-closure rule of a case closed in ``status`` (any status, or none)."""
        entry = self.statuses.get(status)
        if entry is not None and entry.final and entry.after_closure is not None:
            return entry.after_closure
        return self.after_closure

    @property
    def first_status(self) -> str:
        if self.initial_status:
            return self.initial_status
        return next((s for stage in self.stages for s in stage.statuses), "")

    def participant_problems(self, roles: list[str]) -> list[str]:
        """Why a case of this type cannot have participants with these roles, if it cannot."""
        if not roles:
            return ["A case needs at least one participant."]
        if len(roles) > MAX_PARTICIPANTS:
            return [f"A case takes at most {MAX_PARTICIPANTS} participants."]
        unknown = sorted(set(roles) - set(self.roles))
        if unknown:
            return [f"Unknown role(s) for {self.case_type}: {', '.join(unknown)}."]
        problems = []
        for role, entry in self.roles.items():
            count = roles.count(role)
            if not entry.min <= count <= entry.max:
                wanted = (
                    f"exactly {entry.min}"
                    if entry.min == entry.max
                    else f"{entry.min} to {entry.max}"
                )
                problems.append(f"A {self.case_type} case takes {wanted} {role}, not {count}.")
        return problems

    def in_role_order(self, roles: Iterable[str]) -> list[int]:
        """Positions of ``roles`` sorted as the descriptor lists its roles (stable)."""
        order = {role: index for index, role in enumerate(self.roles)}
        listed = list(roles)
        return sorted(range(len(listed)), key=lambda i: order.get(listed[i], len(order)))

    def stage_index(self, status: str) -> int:
        for index, stage in enumerate(self.stages):
            if status in stage.statuses:
                return index
        return 0

    def role_name(self, role: str, number: int) -> str:
        """How others see a participant: "Co-borrower 1", never a name.

        ``number`` counts from 1 within the role (:func:`numbers_in_role`).
        """
        entry = self.roles.get(role)
        template = (pick(entry.label) if entry else "") or role
        return template % {"n": number} if "%(n)s" in template else template

    def in_order(self, people: Iterable[PersonT]) -> list[PersonT]:
        """People as the panel lists them: by the descriptor's roles, then as registered."""
        order = {role: index for index, role in enumerate(self.roles)}
        return sorted(people, key=lambda p: (order.get(p.role, len(order)), p.ordinal))

    def role_names(self, people: Iterable[Person]) -> dict[uuid.UUID, str]:
        """How others see each person, numbered within their role, by the person's id."""
        listed = self.in_order(people)
        numbers = numbers_in_role((p.id, p.role) for p in listed)
        return {p.id: self.role_name(p.role, numbers[p.id]) for p in listed}

    def instructions_for(self, role: str) -> str:
        """The instructions a participant of ``role`` reads: the common ones, then theirs."""
        own = pick(self.role_instructions.get(role))
        return " ".join(text for text in (pick(self.instructions), own) if text)

    def channel_name(self, channel: str) -> str:
        return pick(self.channels.get(channel)) or channel

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
    for role, role_entry in descriptor.roles.items():
        yield f"roles.{role}.label", role_entry.label
    for channel, texts in descriptor.channels.items():
        yield f"channels.{channel}", texts
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
    for purpose, texts in descriptor.messages.items():
        yield f"messages.{purpose}", texts
    for role, texts in descriptor.role_instructions.items():
        yield f"roleInstructions.{role}", texts
    for doc, entry in descriptor.documents.items():
        yield f"documents.{doc}.title", entry.title
    for index, faq in enumerate(descriptor.faq):
        yield f"faq[{index}].question", faq.question
        yield f"faq[{index}].answer", faq.answer
    for key, message in descriptor.staff_messages.items():
        if message.text or message.label:
            yield f"staffMessages.{key}.label", message.label
            yield f"staffMessages.{key}.text", message.text


def _message_problems(descriptor: Descriptor) -> list[str]:
    problems = []
    for purpose, texts in sorted(descriptor.messages.items()):
        if purpose not in CASE_TYPE_TEXTS:
            known = ", ".join(sorted(CASE_TYPE_TEXTS))
            problems.append(f"messages.{purpose}: not a text a case type words (only {known})")
            continue
        problems.extend(text_problems(f"messages.{purpose}", purpose, texts))
    return problems


def _staff_message_problems(descriptor: Descriptor) -> list[str]:
    problems = []
    for key, message in descriptor.staff_messages.items():
        where = f"staffMessages.{key}"
        if not MESSAGE_ID.fullmatch(key) or key == OWN_TEXT:
            problems.append(f"{where}: an id is 1 to 24 of a-z, 0-9 and '-', and not {OWN_TEXT!r}")
        if not message.text:
            if message.label:
                problems.append(f"{where}: a label without a text")
            elif key not in PANEL_MESSAGES:
                known = ", ".join(PANEL_MESSAGES)
                problems.append(f"{where}: no text, and the panel has no message {key!r} ({known})")
            continue
        for locale, text in sorted(message.text.items()):
            try:
                names = placeholders(text)
            except ValueError as exc:
                problems.append(f"{where}.text.{locale}: {exc}")
                continue
            problems.extend(
                f"{where}.text.{locale}: unknown placeholder {{{name}}}"
                for name in sorted(names - STAFF_PLACEHOLDERS)
            )
    return problems


def _role_problems(descriptor: Descriptor) -> list[str]:
    if not descriptor.roles:
        return ["no roles: a case needs participants"]
    problems = []
    for role, entry in descriptor.roles.items():
        if not 0 <= entry.min <= entry.max:
            problems.append(f"role {role!r}: 'min' must be 0 or more and at most 'max'")
        if entry.max > MAX_PARTICIPANTS:
            problems.append(f"role {role!r}: 'max' is above {MAX_PARTICIPANTS}")
    if sum(entry.min for entry in descriptor.roles.values()) > MAX_PARTICIPANTS:
        problems.append(f"the roles' 'min' add up to more than {MAX_PARTICIPANTS} participants")
    if not any(entry.max for entry in descriptor.roles.values()):
        problems.append("every role has 'max' 0: no case could have participants")
    return problems


def _closure_problems(where: str, rule: AfterClosure) -> list[str]:
    problems = []
    if rule.access_days < 0:
        problems.append(f"{where}.accessDays must be 0 or more")
    if rule.purge_after_days < max(rule.access_days, 0):
        problems.append(f"{where}.purgeAfterDays must be at least its accessDays")
    for kind in rule.purge:
        if kind not in PURGEABLE:
            problems.append(f"{where}.purge: {kind!r} is not one of {', '.join(PURGEABLE)}")
    return problems


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
    if entry.after_closure is not None:
        problems.append(f"status {status!r} is not final and cannot have 'afterClosure'")
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
    problems.extend(_role_problems(descriptor))
    problems.extend(_message_problems(descriptor))
    problems.extend(_staff_message_problems(descriptor))
    for role in sorted(descriptor.role_instructions):
        if role not in descriptor.roles:
            problems.append(f"roleInstructions.{role}: not one of the descriptor's roles")
    for index, faq in enumerate(descriptor.faq):
        problems.extend(
            f"faq[{index}].roles: {role!r} is not one of the descriptor's roles"
            for role in faq.roles
            if role not in descriptor.roles
        )
    if descriptor.conversations.staff_shown_as not in STAFF_SHOWN_AS:
        problems.append("conversations.staffShownAs must be one of " + ", ".join(STAFF_SHOWN_AS))
    if descriptor.conversations.team != descriptor.conversations.team.strip():
        problems.append("conversations.team must not begin or end with spaces")
    if descriptor.case_number_prefix and not CASE_NUMBER_PREFIX.fullmatch(
        descriptor.case_number_prefix
    ):
        problems.append("'caseNumberPrefix' must be 2 to 6 capital letters A-Z")
    if not descriptor.channels:
        problems.append("no channels: no case of this type could be opened")
    first = descriptor.first_status
    for status in sorted(statuses | ({first} if first else set())):
        if status not in descriptor.statuses:
            problems.append(f"status {status!r} set by the model has no entry in 'statuses'")
        if status not in staged:
            problems.append(f"status {status!r} belongs to no stage")
    for status, entry in sorted(descriptor.statuses.items()):
        problems.extend(_decision_problems(status, entry))
        if entry.final and entry.after_closure is not None:
            problems.extend(
                _closure_problems(f"statuses.{status}.afterClosure", entry.after_closure)
            )
    problems.extend(_closure_problems("afterClosure", descriptor.after_closure))
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


_ROLE_LITERALS = (
    re.compile(r"\brole\s*!?=\s*\"([^\"]*)\""),
    re.compile(r"\"([^\"]*)\"\s*!?=\s*[\w.]*\brole\b"),
)


def _expressions(element: ElementTree.Element) -> Iterable[str]:
    """The FEEL an element carries: condition texts and ``=…`` attribute values."""
    for node in element.iter():
        if node.tag == f"{_BPMN}conditionExpression" and node.text:
            yield node.text
        for value in node.attrib.values():
            if value.startswith("="):
                yield value


def _is_share(element: ElementTree.Element) -> bool:
    """A participant's share: a sub-process, multi-instance over the participants."""
    loop = element.find(f"{_BPMN}multiInstanceLoopCharacteristics/{_BPMN}extensionElements/"
                        f"{_ZEEBE}loopCharacteristics")  # fmt: skip
    return (
        element.tag == f"{_BPMN}subProcess"
        and loop is not None
        and loop.get("inputCollection", "").strip() == f"={c.VAR_PARTICIPANTS}"
    )


def _local_nulls(element: ElementTree.Element) -> set[str]:
    return {
        mapping.get("target", "")
        for mapping in element.findall(f"{_BPMN}extensionElements/{_ZEEBE}ioMapping/{_ZEEBE}input")
        if mapping.get("source", "").replace(" ", "") == "=null"
    }


def model_problems(
    descriptor: Descriptor, bpmn_xml: bytes, forms: dict[str, dict[str, Any]]
) -> list[str]:
    """What in the model the panel would fail on at run time, naming the element.

    Every user task has a form deployed with it; a participant's form that sends answers to
    the process has, for each, a local ``=null`` input mapping on its share (or the task), so
    no two participants' answers overwrite each other; roles the model compares with are the
    descriptor's.
    """
    root = ElementTree.fromstring(bpmn_xml)  # noqa: S314 - our own model file, no DTDs
    parents = {child: parent for parent in root.iter() for child in parent}
    problems: list[str] = []
    for task in root.iter(f"{_BPMN}userTask"):
        name = task.get("id", "?")
        definition = task.find(f"{_BPMN}extensionElements/{_ZEEBE}formDefinition")
        form_id = definition.get("formId", "") if definition is not None else ""
        if not form_id:
            problems.append(f"user task {name!r} has no form (zeebe:formDefinition formId)")
            continue
        if form_id not in forms:
            problems.append(f"user task {name!r} links form {form_id!r}, not deployed with it")
            continue
        scopes = [task]
        node = task
        while node in parents and not _is_share(node):
            node = parents[node]
            scopes.append(node)
        if not _is_share(node):
            continue  # a bank task: its answers are the process's own
        local = set().union(*(_local_nulls(scope) for scope in scopes))
        for variable in sorted(sent_names(forms[form_id]) - local):
            problems.append(
                f"user task {name!r}: form {form_id!r} sends {variable!r} to the process, but "
                f"the share {node.get('id', '?')!r} has no local input mapping for it "
                f'(<zeebe:input source="=null" target="{variable}" />), so participants\' '
                "answers would overwrite each other"
            )
    for element in root.iter():
        element_id = element.get("id")
        if not element_id:
            continue
        own = [element] if element.tag == f"{_BPMN}sequenceFlow" else [
            child for child in element if child.tag == f"{_BPMN}extensionElements"
        ]  # fmt: skip
        for part in own:
            for text in _expressions(part):
                for pattern in _ROLE_LITERALS:
                    for role in pattern.findall(text):
                        if role not in descriptor.roles:
                            problems.append(
                                f"element {element_id!r} compares the role with {role!r}, "
                                "which the descriptor's 'roles' do not list"
                            )
    return sorted(set(problems))


def model_user_tasks(bpmn_xml: bytes) -> dict[str, ModelTask]:
    """The model's user tasks by element id: each one's own form, and whether it is a
    participant's (inside a participant's share)."""
    root = ElementTree.fromstring(bpmn_xml)  # noqa: S314 - our own model file, no DTDs
    parents = {child: parent for parent in root.iter() for child in parent}
    tasks = {}
    for task in root.iter(f"{_BPMN}userTask"):
        definition = task.find(f"{_BPMN}extensionElements/{_ZEEBE}formDefinition")
        node = task
        while node in parents and not _is_share(node):
            node = parents[node]
        tasks[task.get("id", "")] = ModelTask(
            form_id=definition.get("formId", "") if definition is not None else "",
            participant=_is_share(node),
        )
    return tasks


def descriptor_files(bpmn_dir: Path) -> list[Path]:
    return sorted(bpmn_dir.glob(f"*{DESCRIPTOR_SUFFIX}"))


def check_files(files: list[Path]) -> list[str]:
    """Problems of every descriptor among the files, against the models among them."""
    models = {path: path.read_bytes() for path in files if path.suffix == ".bpmn"}
    forms: dict[str, dict[str, Any]] = {}
    for path in files:
        if path.suffix == ".form":
            with contextlib.suppress(OSError, ValueError):
                schema = json.loads(path.read_text(encoding="utf-8"))
                forms[str(schema.get("id", ""))] = schema
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
        problems.extend(
            f"{path.name}: {problem}" for problem in model_problems(descriptor, model, forms)
        )
        problems.extend(
            f"{path.name}: {problem}"
            for problem in variant_problems(
                descriptor.form_variants, descriptor.assisted, model_user_tasks(model), forms
            )
        )
    return problems


async def store(
    session: AsyncSession, raw: bytes, *, process_version: int | None = None
) -> tuple[Descriptor, int, bool]:
    """Keep the descriptor as deployed with its process: (descriptor, version, new?).

    A descriptor or process version not seen before makes a new descriptor version, which new
    cases open with; cases opened earlier keep theirs. The same files deployed again change
    nothing. Deployments of one case type are an operator's serial steps, not a race.
    """
    descriptor = parse(raw)
    document = json.loads(raw)
    sha256 = hashlib.sha256(raw).hexdigest()
    newest = await session.get(CaseTypeDescriptor, descriptor.case_type, with_for_update=True)
    same_process = newest is not None and (
        process_version is None or newest.process_version in (None, process_version)
    )
    if newest is not None and newest.sha256 == sha256 and same_process:
        newest.process_version = newest.process_version or process_version
        return descriptor, newest.version, False
    version = newest.version + 1 if newest is not None else 1
    session.add(
        CaseTypeDescriptorVersion(
            case_type=descriptor.case_type,
            version=version,
            descriptor=document,
            sha256=sha256,
            process_version=process_version,
        )
    )
    if newest is None:
        session.add(
            CaseTypeDescriptor(
                case_type=descriptor.case_type,
                descriptor=document,
                sha256=sha256,
                version=version,
                process_version=process_version,
            )
        )
    else:
        newest.descriptor, newest.sha256, newest.version = document, sha256, version
        newest.process_version = process_version
    await session.flush()
    return descriptor, version, True


async def find(session: AsyncSession, case_type: str) -> Descriptor | None:
    """The newest deployed descriptor of a case type; None for a case type never deployed."""
    found = await newest(session, case_type)
    return found[0] if found else None


async def newest(session: AsyncSession, case_type: str) -> tuple[Descriptor, int] | None:
    """The newest descriptor of a case type and its version, which new cases open with."""
    row = await session.get(CaseTypeDescriptor, case_type)
    if row is None:
        return None
    return msgspec.convert(row.descriptor, type=Descriptor), row.version


async def deployed(session: AsyncSession) -> dict[str, Descriptor]:
    """Every deployed case type's descriptor, by case type."""
    rows = await session.scalars(select(CaseTypeDescriptor).order_by(CaseTypeDescriptor.case_type))
    return {row.case_type: msgspec.convert(row.descriptor, type=Descriptor) for row in rows}


async def load(session: AsyncSession, case_type: str, version: int | None = None) -> Descriptor:
    """A case type's descriptor: ``version`` (a case's own) where given, else the newest."""
    if version is not None:
        row = await session.get(CaseTypeDescriptorVersion, (case_type, version))
        if row is not None:
            return msgspec.convert(row.descriptor, type=Descriptor)
    found = await newest(session, case_type)
    return found[0] if found else fallback(case_type)


async def of_case(session: AsyncSession, case: Case) -> Descriptor:
    """The descriptor a case was opened with."""
    return await load(session, case.case_type, case.descriptor_version)


async def of_case_id(session: AsyncSession, case_id: uuid.UUID) -> Descriptor:
    """The descriptor a case was opened with, by the case's id."""
    row = (
        await session.execute(
            select(Case.case_type, Case.descriptor_version).where(Case.id == case_id)
        )
    ).one_or_none()
    if row is None:
        return fallback("")
    return await load(session, row.case_type, row.descriptor_version)


def fallback(case_type: str) -> Descriptor:
    """What the panel shows for a case type deployed without a descriptor: still usable."""
    texts = {locale: case_type for locale in LOCALES}
    return Descriptor(
        case_type=case_type,
        process_id=case_type,
        name=texts,
        roles={},
        channels={},
        stages=[],
        statuses={},
        instructions={},
    )


def numbers_in_role(people: Iterable[tuple[Any, str]]) -> dict[Any, int]:
    """Each person's number within their role, from 1, in the order given: (key, role)."""
    seen: dict[str, int] = {}
    numbers = {}
    for key, role in people:
        seen[role] = seen.get(role, 0) + 1
        numbers[key] = seen[role]
    return numbers


def status_label(descriptor: Descriptor, status: str) -> str:
    entry = descriptor.statuses.get(status)
    return pick(entry.label) if entry else gettext("In progress")
