"""Forms of sign-in, the challenge, enrollment and security settings.

Fields carry the standard ``autocomplete`` values and ``inputmode`` so that
password managers and phones fill them (ASVS 6.2.7). Codes are checked for
shape in the services (spaces and dashes stripped, then six digits), so the
same message is given wherever a code is typed.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, RadioField, SelectChoice, StringField
from wtforms.validators import InputRequired, Length

from ..forms import Form

CODE_FIELD = {
    "inputmode": "numeric",
    "autocomplete": "one-time-code",
    "class": "code",
    "spellcheck": "false",
    "autocapitalize": "off",
}


class SignInForm(Form):
    email = EmailField(
        _l("E-mail address"),
        validators=[
            InputRequired(_l("Enter your e-mail address.")),
            Length(max=254, message=_l("An e-mail address has at most 254 characters.")),
        ],
        render_kw={"autocomplete": "username", "spellcheck": "false", "autocapitalize": "off"},
    )
    password = PasswordField(
        _l("Password"),
        validators=[
            InputRequired(_l("Enter your password.")),
            Length(max=1024, message=_l("That password is too long.")),
        ],
        render_kw={"autocomplete": "current-password"},
    )
    next = HiddenField()


class CodeForm(Form):
    code = StringField(
        _l("Code"),
        validators=[InputRequired(_l("Enter the code.")), Length(max=40, message=_l("That code is too long."))],
        render_kw=CODE_FIELD,
    )


class ChallengeForm(CodeForm):
    remember_device = BooleanField(_l("Don't ask for codes on this device"))


class RecoveryCodeForm(Form):
    code = StringField(
        _l("Recovery code"),
        validators=[
            InputRequired(_l("Enter one of your recovery codes.")),
            Length(max=40, message=_l("That code is too long.")),
        ],
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "off", "class": "code recovery"},
    )
    remember_device = BooleanField(_l("Don't ask for codes on this device"))


class PhoneForm(Form):
    number = StringField(
        _l("Phone number"),
        validators=[
            InputRequired(_l("Enter a phone number.")),
            Length(max=40, message=_l("That phone number is too long.")),
        ],
        render_kw={"autocomplete": "tel", "inputmode": "tel", "type": "tel"},
    )
    channel = RadioField(
        _l("How should we send codes?"),
        choices=[SelectChoice("sms", _l("Text message (SMS)")), SelectChoice("voice", _l("Voice call"))],
        default="sms",
        validate_choice=False,
        validators=[InputRequired(_l("Choose text message or voice call."))],
    )


class PasskeyForm(Form):
    """The answer of a passkey, filled in by static/js/passkeys.js."""

    credential = HiddenField(validators=[InputRequired(_l("Use your passkey first."))])
    remember_device = BooleanField(_l("Don't ask for codes on this device"))


class PasskeyAddForm(Form):
    name = StringField(
        _l("Name of this passkey"),
        validators=[Length(max=200, message=_l("That name is too long."))],
        render_kw={"autocomplete": "off", "maxlength": 60},
    )
    credential = HiddenField(validators=[InputRequired(_l("Create the passkey with your device first."))])


class ActionForm(Form):
    """A button that changes something: only the CSRF token."""


class BackupChoiceForm(Form):
    method_id = HiddenField()
    channel = HiddenField()
