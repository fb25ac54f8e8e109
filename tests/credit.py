"""The shipped credit case type as the tests drive it: its ids, roles, statuses and forms.

These are data of bpmn/credit-application (model, forms, descriptor), not of the panel:
the panel reads them from what is deployed. The tests name them to exercise that case type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

# The case type's folder, as a designer hands it over: model, forms and descriptor.
FOLDER: Final = Path(__file__).resolve().parent.parent / "bpmn" / "credit-application"

# Case types and the BPMN process ids that implement them.
CASE_TYPE_CREDIT: Final = "credit-application"
PROCESS_ID_CREDIT: Final = "credit-application"
# Participant roles.
ROLE_PRIMARY_BORROWER: Final = "primary-borrower"
ROLE_CO_BORROWER: Final = "co-borrower"
# Values of the analyst's decision.
DECISION_APPROVED: Final = "approved"
DECISION_REJECTED: Final = "rejected"
# Business statuses of a case.
STATUS_COLLECTING: Final = "collecting"
STATUS_IN_REVIEW: Final = "in-review"
STATUS_APPROVED: Final = "approved"
STATUS_REJECTED: Final = "rejected"
CASE_STATUSES: Final = (STATUS_COLLECTING, STATUS_IN_REVIEW, STATUS_APPROVED, STATUS_REJECTED)
# Staff candidate groups.
GROUP_CREDIT_ANALYSTS: Final = "credit-analysts"
# Camunda Form ids (the "id" of each .form file in the folder's forms/).
FORM_CONSENTS: Final = "credit-consents"
FORM_INCOME: Final = "credit-income"
FORM_QUESTIONNAIRE: Final = "credit-questionnaire"
FORM_ANALYST_REVIEW: Final = "credit-analyst-review"
FORM_SIGNATURE: Final = "credit-signature"
# The questionnaire's variant for call-centre agents in assisted mode (the descriptor's
# formVariants): the same step, fewer questions, worded for the call.
FORM_QUESTIONNAIRE_PHONE: Final = "credit-questionnaire-phone"
# BPMN element ids the tests and docs refer to.
ELEMENT_PARTICIPANT_WORK: Final = "participant-work"
ELEMENT_INVITE_PARTICIPANT: Final = "invite-participant"
ELEMENT_TASK_CONSENTS: Final = "task-consents"
ELEMENT_TASK_INCOME: Final = "task-income"
ELEMENT_TASK_QUESTIONNAIRE: Final = "task-questionnaire"
ELEMENT_TASK_SIGN: Final = "task-sign"
ELEMENT_TASK_ANALYST_REVIEW: Final = "task-analyst-review"
# The analyst's decision, the variable the decision gateway reads.
VAR_DECISION: Final = "decision"
# The credit bureau check, and the catch event of the bureau's "not found".
ELEMENT_CHECK_BUREAU: Final = "check-credit-bureau"
ELEMENT_BUREAU_NOT_FOUND: Final = "bureau-applicant-not-found"
