"""Words for the values a recovery case carries, shared by every page and e-mail
that shows them (seller, reviewer, manager, pre-checks), so that each value is
named the same way everywhere."""

from flask_babel import lazy_gettext as _l

# One wording per status, for the seller's, the reviewer's and the manager's pages
# alike (models.cases.CaseStatus).
STATUS_LABELS = {
    "submitted": _l("Waiting for review"),
    "in_review": _l("In review"),
    "awaiting_second_approval": _l("Waiting for a second reviewer"),
    "needs_info": _l("New documents needed"),
    "approved": _l("Approved"),
    "rejected": _l("Not approved"),
    "withdrawn": _l("Withdrawn"),
    "expired": _l("Closed without new documents"),
    "cancelled": _l("Cancelled by the account's owner"),
}
# Why the owner stopped a case (the ``reason`` of its ``case.cancelled`` event).
CANCEL_REASONS = {
    "owner_signed_in": _l("The account's owner signed in with 2-step verification, so no recovery was needed."),
    "owner_cancelled": _l("The account's owner, signed in with 2-step verification, said it was not them."),
}
DOCUMENT_TYPE_LABELS = {
    "passport": _l("Passport"),
    "drivers_licence": _l("Driver's licence"),
    "my_number_card": _l("My Number card"),
    "residence_card": _l("Residence card"),
}
SIDE_LABELS = {
    "front": _l("Front"),
    "back": _l("Back"),
    "selfie": _l("Selfie holding the document"),
}
# Why a reviewer rejected a case (models.cases.REASON_CODES).
REJECTION_REASON_LABELS = {
    "unreadable": _l("Documents unreadable"),
    "expired": _l("Document expired"),
    "name_mismatch": _l("Name does not match"),
    "selfie_mismatch": _l("Selfie does not match the document"),
    "suspected_fraud": _l("Suspected fraud"),
    "other": _l("Other reason"),
}


def _label(labels: dict):
    return lambda value: labels.get(value, value)


def template_helpers() -> dict:
    """The words for a case's values, for every template (one context processor)."""
    return {
        "status_label": _label(STATUS_LABELS),
        "reason_label": _label(REJECTION_REASON_LABELS),
        "document_type_label": _label(DOCUMENT_TYPE_LABELS),
        "side_label": _label(SIDE_LABELS),
    }
