"""Forms of the account pages. Field lengths are checked here; the rules about
passwords and addresses live in ``services.py``."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, IntegerField, PasswordField, SearchField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

EMAIL_MAX = 254
# Long enough for any password the rules accept (256) with room to say "too long"
# rather than cut it: a password is never truncated.
PASSWORD_FIELD_MAX = 4096

EMAIL_REQUIRED = _l("Enter your e-mail address.")
EMAIL_TOO_LONG = _l("An e-mail address has at most %(max)d characters.")


def _email_field(label, autocomplete: str = "email"):
    return EmailField(
        label,
        validators=[DataRequired(message=EMAIL_REQUIRED), Length(max=EMAIL_MAX, message=EMAIL_TOO_LONG)],
        render_kw={"autocomplete": autocomplete, "spellcheck": "false", "autocapitalize": "off"},
    )


def _password_field(label, autocomplete: str = "new-password"):
    return PasswordField(
        label,
        validators=[DataRequired(message=_l("Enter a password.")),
                    Length(max=PASSWORD_FIELD_MAX, message=_l("Use at most %(max)d characters."))],
        render_kw={"autocomplete": autocomplete},
    )


class ForgotPasswordForm(FlaskForm):
    email = _email_field(_l("E-mail address"), autocomplete="username")


class NewPasswordForm(FlaskForm):
    password = _password_field(_l("New password"))
    confirm = _password_field(_l("New password again"))


class AcceptInvitationForm(NewPasswordForm):
    display_name = StringField(
        _l("Your name (optional)"),
        validators=[Optional(), Length(max=200, message=_l("Use at most %(max)d characters."))],
        render_kw={"autocomplete": "name"},
    )


class ChangePasswordForm(NewPasswordForm):
    current_password = _password_field(_l("Current password"), autocomplete="current-password")


class ChangeEmailForm(FlaskForm):
    email = _email_field(_l("New e-mail address"))


class InviteForm(FlaskForm):
    email = _email_field(_l("E-mail address of the person to invite"))
    locale = SelectField(_l("Language of the invitation"), choices=[SelectChoice("ja", "日本語"), SelectChoice("en", "English")])


class ConfirmForm(FlaskForm):
    """A button and its CSRF token (remove a user, end sessions)."""


class EndSessionsForm(FlaskForm):
    session_id = IntegerField(validators=[Optional()])
    scope = HiddenField()


class StaffSearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = SearchField(_l("Search by e-mail"), validators=[Optional(), Length(max=EMAIL_MAX, message=EMAIL_TOO_LONG)],
                    render_kw={"autocomplete": "off", "spellcheck": "false"})
