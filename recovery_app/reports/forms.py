"""Forms of the managers' pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from ..forms import Form
from wtforms import SelectField
from wtforms.fields.choices import SelectChoice

ROLE_LABELS = {"reviewer": _l("Reviewer"), "manager": _l("Manager")}


class RoleForm(Form):
    role = SelectField(_l("Role"), choices=[SelectChoice(value, label) for value, label in ROLE_LABELS.items()])
