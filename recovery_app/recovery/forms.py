"""Forms of the seller's recovery pages. Files are checked by the document
pipeline (``recovery_app.documents.pipeline``), not by field validators, so that
every problem is reported on its own field in one pass."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import BooleanField, RadioField, SubmitField

from ..forms import Form


class StartForm(Form):
    # Choices come from RECOVERY_DOCUMENT_TYPES; the service checks the value.
    document_type = RadioField(_l("Which document will you send?"), choices=[], validate_choice=False)
    front = FileField(_l("Front"))
    back = FileField(_l("Back"))
    selfie = FileField(_l("Selfie holding the document"))
    consent = BooleanField(_l("I agree that my identity documents are collected, checked and kept as described above."))
    submit = SubmitField(_l("Send documents"))


class ResubmitForm(Form):
    front = FileField(_l("Front"))
    back = FileField(_l("Back"))
    selfie = FileField(_l("Selfie holding the document"))
    submit = SubmitField(_l("Send new documents"))


class WithdrawForm(Form):
    submit = SubmitField(_l("Withdraw my case"))
