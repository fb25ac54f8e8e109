"""Identifiers shared by the BPMN models, forms, workers, BFF and tests.

Every string a process designer types into Camunda Modeler that Python code relies on lives
here, and the modelling guide (docs/modelling-guide.md) lists the same names.
"""

from __future__ import annotations

from typing import Final

# Process variables. They carry ids, roles and decisions only, never personal data.
VAR_CASE_ID: Final = "caseId"
VAR_CASE_NUMBER: Final = "caseNumber"
VAR_PARTICIPANTS: Final = "participants"
VAR_PARTICIPANT: Final = "participant"
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

# Job types of service tasks handled by the workers.
JOB_SET_CASE_STATUS: Final = "customer-panel.case.set-status"
# Invites one participant (inside the participant multi-instance): creates their access and
# sends the invitation SMS with the case link and a one-time code. Reads VAR_CASE_ID and
# VAR_PARTICIPANT.
JOB_INVITE_PARTICIPANT: Final = "customer-panel.participant.invite"
# Task header of JOB_SET_CASE_STATUS: the business status the case enters.
HEADER_STATUS: Final = "status"
# Asks the credit bureau about the case's participants (workers/routers/bureau.py): sends the
# case id and each participant's PESEL blind index, never a PESEL or a name. Reads VAR_CASE_ID;
# writes VAR_BUREAU_RESULT. A bureau that cannot be reached, answers 5xx or answers nonsense
# fails the job with a backoff, and an incident follows once the task's retries are used.
JOB_CHECK_CREDIT_BUREAU: Final = "customer-panel.bureau.check"
# What the bureau said, without personal data: {"found": true, "score": 640, "subjects": 2}
# (the lowest score among the participants), or {"found": false, "score": null} mapped by the
# model's catch event of ERROR_BUREAU_NOT_FOUND.
VAR_BUREAU_RESULT: Final = "bureauResult"
# BPMN error code thrown when the bureau does not know a participant: a business outcome the
# model catches (the analyst reviews the case with the flag), not a failure.
ERROR_BUREAU_NOT_FOUND: Final = "bureau-applicant-not-found"

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
# Jobs' retries, so the dashboard's failed steps show how many a job has left (Zeebe 8.6 has
# no job query without Operate).
STREAM_JOB: Final = f"{EXPORTER_STREAM_PREFIX}:JOB"
# Value types the exporter must send (ZEEBE_REDIS_ENABLED_VALUE_TYPES).
EXPORTED_VALUE_TYPES: Final = (
    "PROCESS",
    "FORM",
    "USER_TASK",
    "PROCESS_INSTANCE",
    "VARIABLE",
    "INCIDENT",
    "JOB",
)

# Purposes of SMS messages (the outbox's ``purpose`` column and the template names).
SMS_INVITATION: Final = "invitation"
# The decision: sent once to every participant when the case enters a final status, with the
# text the case-type descriptor gives that status.
SMS_DECISION: Final = "decision"
SMS_LOGIN_CODE: Final = "login-code"
SMS_SIGNING_CODE: Final = "signing"
# Assisted mode: the code a participant reads out to a member of staff on the phone, proving
# they are the one on the line before staff complete their task with them.
SMS_ASSISTED_CODE: Final = "assisted-code"
# Appointments (panel_core/appointments): booked, moved, cancelled, and the reminder the day
# before. Each message is keyed by the appointment and its sequence, so a new time is told
# once and a repeated request tells nothing twice.
SMS_APPOINTMENT: Final = "appointment"
SMS_APPOINTMENT_MOVED: Final = "appointment-moved"
SMS_APPOINTMENT_CANCELLED: Final = "appointment-cancelled"
SMS_APPOINTMENT_REMINDER: Final = "appointment-reminder"
# The chat: an answer of the bank the participant has not read (no content, only the case).
SMS_MESSAGE_WAITING: Final = "message-waiting"
