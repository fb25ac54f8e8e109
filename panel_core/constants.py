"""Identifiers shared by the BPMN models, forms, workers, BFF and tests.

Every string a process designer types into Camunda Modeler that Python code relies on lives
here, and the modelling guide (docs/modelling-guide.md) lists the same names.
"""

from __future__ import annotations

from typing import Final

# Case types and the BPMN process ids that implement them.
CASE_TYPE_CREDIT: Final = "credit-application"
PROCESS_ID_CREDIT: Final = "credit-application"

# Process variables. They carry ids, roles and decisions only, never personal data.
VAR_CASE_ID: Final = "caseId"
VAR_CASE_NUMBER: Final = "caseNumber"
VAR_PARTICIPANTS: Final = "participants"
VAR_PARTICIPANT: Final = "participant"
VAR_DECISION: Final = "decision"
# What each participant's share gives the process (the multi-instance output collection):
# their participantId and the answers their forms mark with FORM_PROPERTY_SEND_TO_PROCESS,
# which are local variables of the share so that no two participants' answers mix.
VAR_SHARES: Final = "shares"
# Why the case got its status, as the participants may read it: a local variable of a
# JOB_SET_CASE_STATUS task (an input mapping, e.g. from the analyst's decisionReason). The
# worker keeps it on the case; the overview shows it only for a status whose descriptor entry
# has showReason. Absent or null means no reason.
VAR_STATUS_REASON: Final = "statusReason"

# Keys of one entry of the participants list (and of the multi-instance element variable).
KEY_PARTICIPANT_ID: Final = "participantId"
KEY_ROLE: Final = "role"

# Participant roles.
ROLE_PRIMARY_BORROWER: Final = "primary-borrower"
ROLE_CO_BORROWER: Final = "co-borrower"

# Values of the analyst's decision.
DECISION_APPROVED: Final = "approved"
DECISION_REJECTED: Final = "rejected"

# Job types of service tasks handled by the workers.
JOB_SET_CASE_STATUS: Final = "customer-panel.case.set-status"
# Invites one participant (inside the participant multi-instance): creates their access and
# sends the invitation SMS with the case link and a one-time code. Reads VAR_CASE_ID and
# VAR_PARTICIPANT.
JOB_INVITE_PARTICIPANT: Final = "customer-panel.participant.invite"
# Task header of JOB_SET_CASE_STATUS: the business status the case enters.
HEADER_STATUS: Final = "status"

# Business statuses of a case.
STATUS_COLLECTING: Final = "collecting"
STATUS_IN_REVIEW: Final = "in-review"
STATUS_APPROVED: Final = "approved"
STATUS_REJECTED: Final = "rejected"
CASE_STATUSES: Final = (STATUS_COLLECTING, STATUS_IN_REVIEW, STATUS_APPROVED, STATUS_REJECTED)

# Staff candidate groups.
GROUP_CREDIT_ANALYSTS: Final = "credit-analysts"

# Camunda Form ids (the "id" of each .form file under bpmn/forms).
FORM_CONSENTS: Final = "credit-consents"
FORM_INCOME: Final = "credit-income"
FORM_QUESTIONNAIRE: Final = "credit-questionnaire"
FORM_ANALYST_REVIEW: Final = "credit-analyst-review"
FORM_SIGNATURE: Final = "credit-signature"

# BPMN element ids the tests and docs refer to.
ELEMENT_PARTICIPANT_WORK: Final = "participant-work"
ELEMENT_INVITE_PARTICIPANT: Final = "invite-participant"
ELEMENT_TASK_CONSENTS: Final = "task-consents"
ELEMENT_TASK_INCOME: Final = "task-income"
ELEMENT_TASK_QUESTIONNAIRE: Final = "task-questionnaire"
ELEMENT_TASK_SIGN: Final = "task-sign"
ELEMENT_TASK_ANALYST_REVIEW: Final = "task-analyst-review"

# Custom property (Camunda Modeler: "Custom properties") that marks a form field whose value
# the process needs. Only such fields are sent to the engine; every answer is kept in the
# panel's own storage, so personal data never becomes a process variable.
FORM_PROPERTY_SEND_TO_PROCESS: Final = "sendToProcess"

# Custom property marking a checkbox as a consent: giving it is recorded with the exact text
# shown (see panel_core/tasks/consents.py).
FORM_PROPERTY_CONSENT: Final = "consent"

# Custom property marking a checkbox as a signature: ticking it needs a one-time SMS code
# bound to the SHA-256 of the document shown (see panel_core/tasks/signing.py). Its value names the
# document; "application" is the participant's application summary.
FORM_PROPERTY_SIGNATURE: Final = "signature"

# Redis streams written by the Zeebe Redis exporter (stream prefix + ":" + value type).
EXPORTER_STREAM_PREFIX: Final = "zeebe"
STREAM_USER_TASK: Final = f"{EXPORTER_STREAM_PREFIX}:USER_TASK"
STREAM_FORM: Final = f"{EXPORTER_STREAM_PREFIX}:FORM"
STREAM_PROCESS: Final = f"{EXPORTER_STREAM_PREFIX}:PROCESS"
# Scopes and variables: what a participant's form reads from its process (valuesKey options,
# prefilled fields, FEEL over the process data).
STREAM_PROCESS_INSTANCE: Final = f"{EXPORTER_STREAM_PREFIX}:PROCESS_INSTANCE"
STREAM_VARIABLE: Final = f"{EXPORTER_STREAM_PREFIX}:VARIABLE"
# Failed automatic steps (a job out of retries, an expression that cannot be evaluated), for
# the staff dashboard.
STREAM_INCIDENT: Final = f"{EXPORTER_STREAM_PREFIX}:INCIDENT"
# Value types the exporter must send (ZEEBE_REDIS_ENABLED_VALUE_TYPES).
EXPORTED_VALUE_TYPES: Final = (
    "PROCESS",
    "FORM",
    "USER_TASK",
    "PROCESS_INSTANCE",
    "VARIABLE",
    "INCIDENT",
)

# Purposes of SMS messages (the outbox's ``purpose`` column and the template names).
SMS_INVITATION: Final = "invitation"
# The decision: sent once to every participant when the case enters a final status, with the
# text the case-type descriptor gives that status.
SMS_DECISION: Final = "decision"
SMS_LOGIN_CODE: Final = "login-code"
SMS_SIGNING_CODE: Final = "signing"
