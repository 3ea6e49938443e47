"""The base form's input rendering: the same HTML as WTForms writes, escaped the same way."""

from __future__ import annotations

import pytest
from markupsafe import Markup
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField
from wtforms.widgets import html_params as wtforms_html_params

from recovery_app.forms import Form, html_params

ATTRIBUTES = [
    {"id": "email", "type": "email", "value": "", "name": "email", "required": True, "maxlength": 254},
    {"aria_describedby": "code-hint", "data_send_url": "/x?a=1&b=2", "class_": "code", "for_": "code"},
    {"checked": True, "readonly": False, "disabled": False, "value": "y"},
    {"value": '"><script>alert(1)</script>', "title": "O'Reilly & <Sons>"},
    {"value": Markup('already "safe" <b>'), "placeholder": "例：山田 太郎"},
    {"value": 0, "min": -1, "step": 0.5},
]


@pytest.mark.parametrize("attributes", ATTRIBUTES)
def test_attributes_are_written_exactly_as_wtforms_writes_them(attributes):
    assert html_params(**attributes) == wtforms_html_params(**attributes)


def test_a_quote_inside_markup_cannot_end_the_attribute():
    written = html_params(value=Markup('a" onfocus="alert(1)'))
    assert written == 'value="a&quot; onfocus=&quot;alert(1)"'


class _Sample(Form):
    email = EmailField("E-mail", render_kw={"autocomplete": "username"})
    password = PasswordField("Password")
    name = StringField("Name")
    remember = BooleanField("Remember")
    next = HiddenField()


TYPED = {"email": 'a"b@example.test', "password": "secret", "name": "<i>x</i>", "remember": "y"}


def test_every_input_of_a_form_renders_as_with_wtforms_widgets(app):
    with app.test_request_context("/", method="POST", data=TYPED):
        form = _Sample(meta={"csrf": False})
        for field in form:
            assert field.widget.html_params is html_params, field.name
            wtforms_own = type(field.widget)()  # a widget of the same kind, writing with WTForms' html_params
            assert field() == wtforms_own(field, **(field.render_kw or {})), field.name
        assert 'value="a&#34;b@example.test"' in form.email()
        assert "secret" not in form.password()  # a password is never written back into the page
        assert "&lt;i&gt;x&lt;/i&gt;" in form.name()
        assert " checked " in f" {form.remember()} "
