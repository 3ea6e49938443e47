"""Forms of the account pages. Field lengths are checked here; the rules about
passwords and addresses live in ``services.py``."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import EmailField, HiddenField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from ..auth.users import normalise_email, valid_email
from ..forms import Form

EMAIL_MAX = 254
# A current password longer than any the rules accept cannot be right; it is
# refused before hashing. New passwords are measured by the password rules,
# which say "too long" rather than cut anything: a password is never truncated.
CURRENT_PASSWORD_MAX = 4096

EMAIL_REQUIRED = _l("Enter your e-mail address.")
EMAIL_TOO_LONG = _l("An e-mail address has at most %(max)d characters.")


def _looks_like_email(form, field) -> None:
    if field.data and len(field.data) <= EMAIL_MAX and not valid_email(normalise_email(field.data)):
        raise ValidationError(_l("Enter an e-mail address like name@example.com."))


def _email_field(label, autocomplete: str = "email", required=EMAIL_REQUIRED):
    return EmailField(
        label,
        validators=[
            DataRequired(message=required),
            Length(max=EMAIL_MAX, message=EMAIL_TOO_LONG),
            _looks_like_email,
        ],
        render_kw={"autocomplete": autocomplete, "spellcheck": "false", "autocapitalize": "off"},
    )


def _password_field(label, autocomplete: str = "new-password", max_length: int | None = None):
    validators = [DataRequired(message=_l("Enter a password."))]
    if max_length:
        validators.append(Length(max=max_length, message=_l("Use at most %(max)d characters.")))
    return PasswordField(label, validators=validators, render_kw={"autocomplete": autocomplete})


class ForgotPasswordForm(Form):
    email = _email_field(_l("E-mail address"), autocomplete="username")


class NewPasswordForm(Form):
    password = _password_field(_l("New password"))
    confirm = _password_field(_l("New password again"))


class AcceptInvitationForm(NewPasswordForm):
    display_name = StringField(
        _l("Your name (optional)"),
        validators=[Optional(), Length(max=200, message=_l("Use at most %(max)d characters."))],
        render_kw={"autocomplete": "name"},
    )


class ChangePasswordForm(NewPasswordForm):
    current_password = _password_field(
        _l("Current password"), autocomplete="current-password", max_length=CURRENT_PASSWORD_MAX
    )


class ChangeEmailForm(Form):
    email = _email_field(_l("New e-mail address"))


class InviteForm(Form):
    # Someone else's address: the browser must not offer the owner's own.
    email = _email_field(
        _l("E-mail address of the person to invite"),
        autocomplete="off",
        required=_l("Enter the e-mail address of the person to invite."),
    )
    locale = SelectField(
        _l("Language of the invitation"), choices=[SelectChoice("ja", "日本語"), SelectChoice("en", "English")]
    )


class ConfirmForm(Form):
    """A button and its CSRF token (remove a user, end sessions)."""


class EndSessionsForm(Form):
    # Digits, checked as text: WTForms' number checks overflow on huge values.
    session_id = StringField(validators=[Optional(), Length(max=9), Regexp(r"^[0-9]+$")])
    scope = HiddenField()
