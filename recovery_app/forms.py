"""The base of every form: CSRF (Flask-WTF) and text that reads as what it is.

Control characters (NUL, other C0 and C1 controls), bidirectional overrides and
zero-width characters are refused in every text field with a message: they
break databases (PostgreSQL refuses NUL) and let a name or a note disguise
itself in a reviewer's screen or an e-mail ("evil\u202egpj.exe").
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache

from babel import support
from flask import current_app, has_request_context
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import HiddenField, PasswordField, StringField, TextAreaField
from wtforms.i18n import messages_path
from wtforms.widgets.core import clean_key

_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_LINE_BREAKS = "\t\n\r"
_INVISIBLE = "\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
_FORBIDDEN = {
    "line": re.compile(f"[{_CONTROLS}{_LINE_BREAKS}{_INVISIBLE}]"),
    "text": re.compile(f"[{_CONTROLS}{_INVISIBLE}]"),  # a text area keeps its line breaks
    "password": re.compile(f"[{_CONTROLS}]"),  # any printable character, tab too, is fine (NIST 800-63B)
}
UNSAFE_TEXT = _l(
    "This contains invisible or control characters (such as direction marks or zero-width spaces). "
    "Please type it again without them."
)


def unsafe_characters(value: str | None, kind: str = "line") -> bool:
    return bool(value) and _FORBIDDEN[kind].search(value) is not None


def _kind(field) -> str:
    if isinstance(field, PasswordField):
        return "password"
    return "text" if isinstance(field, TextAreaField) else "line"


def put_on_form(form, error) -> None:
    """Show a refused rule (``domain.DomainError``) beside the field it names,
    or above the form when it names none."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, str(error)]
    else:
        form.form_errors.append(str(error))


@lru_cache(maxsize=8)
def _wtforms_catalog(locale: str) -> support.Translations:
    return support.Translations.load(messages_path(), [locale], domain="wtforms")


def html_params(**attributes) -> Markup:
    """The attributes of a tag, as ``wtforms.widgets.html_params`` writes them
    (sorted, escaped, ``True`` bare and ``False`` left out), joined as plain
    strings: WTForms formats each one through ``Markup.format``, which made an
    input cost about 65 microseconds, a fifth of the sign-in page."""
    written = []
    for key, value in sorted(attributes.items()):
        if value is False:
            continue
        key = clean_key(key)
        written.append(key if value is True else f'{key}="{str(escape(value)).replace(chr(34), "&quot;")}"')
    return Markup(" ".join(written))


@lru_cache(maxsize=64)
def _quick(widget):
    """A copy of an input widget (WTForms' ``Input`` and ``Button`` families)
    that writes its attributes with ``html_params`` above."""
    quick = copy.copy(widget)
    quick.html_params = html_params
    return quick


class Form(FlaskForm):
    """A Flask-WTF form that also refuses unsafe characters in every text field."""

    class Meta:
        def get_translations(self, form):
            """WTForms' own messages ("This field is required.") in the page's
            language, read from disk once per language and process: Flask-WTF
            would read the catalog again in every request that builds a form."""
            if not has_request_context() or not current_app.config.get("WTF_I18N_ENABLED", True):
                return super().get_translations(form)
            return _wtforms_catalog(str(get_locale() or current_app.config["BABEL_DEFAULT_LOCALE"]))

        def bind_field(self, form, unbound_field, options):
            widget = unbound_field.kwargs.get("widget") or getattr(unbound_field.field_class, "widget", None)
            if widget is not None and hasattr(type(widget), "html_params"):
                options = {**options, "widget": _quick(widget)}
            return super().bind_field(form, unbound_field, options)

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        for field in self:
            typed = isinstance(field, StringField) and not isinstance(field, HiddenField)  # hidden: checked where used
            if typed and isinstance(field.data, str) and unsafe_characters(field.data, _kind(field)):
                field.errors = [*field.errors, UNSAFE_TEXT]
                valid = False
        return valid
