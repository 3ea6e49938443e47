"""Forms of the reviewers' pages. Every POST form carries a CSRF token."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    Optional,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from ..case_labels import STATUS_LABELS
from ..forms import Form
from ..models.cases import REASON_CODES
from .casefile import CHECKLIST
from .queue import QUEUE_STATUSES
from .services import REASON_LABELS

MESSAGE_MAX = 2000
NOTE_MAX = 4000


class ActionForm(Form):
    """A button that changes something (claim, claim next, release, confirm): only the CSRF token."""


class QueueFilterForm(Form):
    """The queue's filters, read from the query string (a GET: no CSRF token)."""

    class Meta:
        csrf = False

    status = SelectField(
        _l("Status"),
        choices=[SelectChoice("", _l("All waiting on us"))]
        + [SelectChoice(status, STATUS_LABELS[status]) for status in QUEUE_STATUSES],
        default="",
        validators=[Optional()],
    )
    at_risk = BooleanField(_l("At risk"))
    breached = BooleanField(_l("Breached"))
    mine = BooleanField(_l("Mine"))
    flagged = BooleanField(_l("Pre-check flags"))
    after = StringField(validators=[Optional(), Length(max=60)])


class ApproveForm(Form):
    checklist = SelectMultipleField(
        _l("Checklist"),
        choices=[SelectChoice(key, label) for key, label in CHECKLIST.items()],
        option_widget=CheckboxInput(),
        widget=ListWidget(prefix_label=False),
        validate_choice=True,
    )


class RejectForm(Form):
    reason = SelectField(
        _l("Reason"),
        choices=[SelectChoice("", _l("Choose a reason"))]
        + [SelectChoice(code, REASON_LABELS[code]) for code in REASON_CODES],
        validators=[InputRequired(message=_l("Choose one of the listed reasons."))],
    )
    message = TextAreaField(
        _l("Message to the seller"),
        validators=[
            DataRequired(message=_l("Write a message to the seller.")),
            Length(max=MESSAGE_MAX, message=_l("Keep the message under %(max)d characters.")),
        ],
    )
    # A rejection cannot be taken back: it is confirmed on the form itself (no script needed).
    confirm = BooleanField(
        _l("I have checked the documents: the seller will be told this case is not approved."),
        validators=[DataRequired(message=_l("Tick the box to confirm the rejection."))],
    )

    def validate_reason(self, field):
        if field.data not in REASON_CODES:
            raise ValidationError(_l("Choose one of the listed reasons."))


class NeedsInfoForm(Form):
    message = TextAreaField(
        _l("What the seller should send"),
        validators=[
            DataRequired(message=_l("Write a message to the seller.")),
            Length(max=MESSAGE_MAX, message=_l("Keep the message under %(max)d characters.")),
        ],
    )


class NoteForm(Form):
    body = TextAreaField(
        _l("Internal note"),
        validators=[
            DataRequired(message=_l("Write the note first.")),
            Length(max=NOTE_MAX, message=_l("Keep the note under %(max)d characters.")),
        ],
    )


class ReassignForm(Form):
    reviewer = SelectField(
        _l("Give to"),
        coerce=int,
        validate_choice=True,
        validators=[InputRequired(message=_l("Choose an active reviewer or manager."))],
    )
