"""Words for the values a recovery case carries, shared by every page and e-mail
that shows them (seller, reviewer, manager, pre-checks), so that each value is
named the same way everywhere."""

from flask_babel import lazy_gettext as _l

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
