"""Forms of the staff pages. Lengths and choices are checked here; the rules
about who may join or change role live in ``services.py``."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import EmailField, SearchField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from ..forms import Form

EMAIL_MAX = 254
EMAIL_TOO_LONG = _l("An e-mail address has at most %(max)d characters.")
ROLE_LABELS = {"reviewer": _l("Reviewer"), "manager": _l("Manager")}
LANGUAGES = (SelectChoice("ja", "日本語"), SelectChoice("en", "English"))


def _role_choices() -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in ROLE_LABELS.items()]


class RoleForm(Form):
    role = SelectField(_l("Role"), choices=_role_choices())


class InviteStaffForm(Form):
    # The address is checked by the invitation rules (services), which say what is wrong with it.
    email = EmailField(
        _l("E-mail address of the person to invite"),
        validators=[
            DataRequired(message=_l("Enter the e-mail address of the person to invite.")),
            Length(max=EMAIL_MAX, message=EMAIL_TOO_LONG),
        ],
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "off"},
    )
    role = SelectField(_l("Role"), choices=_role_choices(), default="reviewer")
    locale = SelectField(_l("Language of the invitation"), choices=list(LANGUAGES))


class ConfirmForm(Form):
    """A button and its CSRF token (end sessions, unlock, cancel an invitation)."""


class SearchForm(Form):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = SearchField(
        _l("Search by e-mail"),
        validators=[Optional(), Length(max=EMAIL_MAX, message=EMAIL_TOO_LONG)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
