"""Password rules end to end (ASVS 6.2.1-6.2.12, NIST SP 800-63B 5.1.1.2):
12 to 256 characters, any characters, never altered, refused when common,
breached or built on context words, with a message that says why and how."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recovery_app.auth.passwords import password_problems
from tests.helpers import TEST_PASSWORD

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
STATIC = Path(__file__).resolve().parents[2] / "static"


@pytest.fixture(autouse=True)
def request_context(app):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        yield


def change_password(client, new, current=TEST_PASSWORD):
    return client.post("/account/password", data={"current_password": current, "password": new, "confirm": new})


def sign_in_with(app, auth, user, password):
    browser = app.test_client()
    response = auth.password(browser, user, password=password)
    return response.status_code == 302 and response.headers["Location"].endswith("/sign-in/code")


def test_twelve_characters_is_the_minimum_and_the_message_says_how(app):
    # ASVS 6.2.1
    assert password_problems("tidal-mug-41") == []
    [message] = password_problems("tidal-mug-4")
    assert "at least 12" in message and "words" in message


@pytest.mark.parametrize(
    "password",
    [
        "é" * 128,  # 128 characters, well over the 64 the standard asks for
        "x7 " + "lantern orchard quiet " * 11,  # 245 characters
        "春の夜の夢のごとし、たけき者も遂にはほろびぬ",  # Japanese
        "Zürich 🦊 tea at 4 o'clock ☕",  # emoji and accents
        "   spaces at both ends   ",
        'Tab\there and "quotes" and \\ slashes',
    ],
)
def test_any_characters_are_accepted_and_the_exact_password_signs_in(app, client, make, auth, db, password):
    # ASVS 6.2.4 (any characters), 6.2.5 (at least 64), 6.2.9 (never altered)
    user = make.user(locale="en")
    auth.fast_sign_in(client, user)
    auth.fresh_code(client)
    response = change_password(client, password)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert sign_in_with(app, auth, user, password)
    for altered in {password.strip(), password.lower(), password.upper(), password[:-1], password[:64]} - {password}:
        assert not sign_in_with(app, auth, user, altered), f"{altered!r} signed in for {password!r}"


def test_over_the_maximum_is_refused_with_a_message_never_cut(app, client, make, auth):
    user = make.user(locale="en")
    auth.fast_sign_in(client, user)
    auth.fresh_code(client)
    maximum = app.config["RECOVERY_PASSWORD_MAX_LENGTH"]
    assert maximum >= 128
    response = change_password(client, "q" * 7 + " orchard" * 40)
    assert response.status_code in (200, 400) and f"at most {maximum}" in response.get_data(as_text=True)


@pytest.mark.parametrize("password", ["qwerty123456", "QWERTY123456", "1qaz2wsx3edc", "leavemealone"])
def test_common_and_breached_passwords_are_refused(app, password):
    # ASVS 6.2.11, 6.2.12: zxcvbn's list of leaked passwords, compared without case
    assert any("leaked" in message for message in password_problems(password))


@pytest.mark.parametrize(
    "password",
    [
        "RecoveryDesk2026!!",
        "recovery desk rocks",
        "my marketplace 2026",
        "SellerCentral!!99",
        "Sakura Trading 2026",
        "パスワード大好き123456",
    ],
)
def test_context_words_are_refused(app, password):
    # ASVS 6.2.11: the product, the marketplace, the business name
    messages = password_problems(password, email="hanako@example.test", account_name="Sakura Trading")
    assert any("name of this service" in m for m in messages), messages


def test_the_e_mail_address_is_refused_in_a_password(app):
    assert password_problems("hanako.sato@example.test", email="hanako.sato@example.test")
    assert password_problems("xx hanako.sato 2026 yy", email="hanako.sato@example.test")


def test_password_fields_allow_paste_and_password_managers(client, make, auth):
    # ASVS 6.2.7, 6.2.8: type=password, autocomplete values, nothing that blocks paste
    page = client.get("/sign-in").get_data(as_text=True)
    assert 'type="password"' in page and 'autocomplete="current-password"' in page
    auth.fast_sign_in(client, make.user())
    auth.fresh_code(client)
    page += client.get("/account/password").get_data(as_text=True)
    assert 'autocomplete="new-password"' in page
    for field in re.findall(r'<input[^>]*type="password"[^>]*>', page):
        limit = re.search(r'maxlength="(\d+)"', field)
        assert limit is None or int(limit.group(1)) >= 256, field  # never below what a new password may be
    for path in [*TEMPLATES.rglob("*.html"), *STATIC.rglob("*.js")]:
        text = path.read_text(encoding="utf-8").lower()
        assert "onpaste" not in text and "'paste'" not in text and '"paste"' not in text, path


def test_no_forced_rotation_setting_exists(app):
    # ASVS 6.2.10: passwords do not expire
    assert not [key for key in app.config if "EXPIR" in key.upper() and "PASSWORD" in key.upper()]
