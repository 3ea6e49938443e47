"""Passkeys in a real browser: Debian's chromium with its virtual authenticator
(the DevTools protocol's WebAuthn domain, through Playwright's CDP session), so
the real ceremony runs: the page's script asks for options, the browser and the
authenticator sign with the page's real origin, the server checks it.

A new seller enrolls with a passkey alone, signs in with it, adds an
authenticator app after confirming with the passkey, removes the passkey, and a
sign-in page opened before the removal can no longer use it. The same page
opened at another address of the same server is refused by the browser itself.
A copy of the key whose counter is behind is refused. In Japanese and English.
"""

from __future__ import annotations

import re

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from tests.helpers import TEST_PASSWORD

from .conftest import screenshot

WORDS = {
    "ja": {
        "setup": "2段階認証の設定",
        "use": "パスキーを使う",
        "create": "パスキーを作成",
        "gone": "削除されています",
        "copy": "複製",
        "elsewhere": "パスキーで問題が発生しました",
        "name": "パスキー",
    },
    "en": {
        "setup": "Set up 2-step verification",
        "use": "Use your passkey",
        "create": "Create the passkey",
        "gone": "or it was removed",
        "copy": "looks like a copy",
        "elsewhere": "Something went wrong with the passkey",
        "name": "Passkeys",
    },
}
LOCALES = {"ja": "ja-JP", "en": "en-US"}


def virtual_authenticator(context, page):
    """A platform authenticator with user verification, answering at once."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    found = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, found["authenticatorId"]


def credentials(cdp, authenticator_id):
    return cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]


def sign_in_with_password(page, base, email):
    page.goto(f"{base}/sign-in")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("form.stack button[type=submit]")


def sign_out(page):
    page.click("header form[action='/sign-out'] button")
    page.wait_for_url(re.compile(r"/sign-in$"))


@pytest.fixture
def new_seller(live_app):
    def make(lang: str) -> str:
        from recovery_app.auth.users import create_user, get_or_create_account
        from recovery_app.extensions import db
        from recovery_app.models.base import utcnow

        with live_app.app_context():
            account = get_or_create_account(f"passkey shop {lang}", utcnow())
            user = create_user(
                email=f"passkey-{lang}@example.test",
                password=TEST_PASSWORD,
                role="seller_owner",
                account=account,
                display_name="山田 花子" if lang == "ja" else "Pat Lee",
                locale=lang,
                now=utcnow(),
            )
            db.session.commit()
            return user.email

    return make


def bump_counter(live_app, value: int) -> None:
    """The server has seen a higher counter than the authenticator will show: as if a copy had been used."""
    from recovery_app.extensions import db
    from recovery_app.models import Passkey

    with live_app.app_context():
        db.session.execute(update(Passkey).values(sign_count=value))
        db.session.commit()


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_enroll_sign_in_confirm_and_remove_a_passkey(live_server, live_app, new_context, new_seller, lang):
    words, email = WORDS[lang], new_seller(lang)
    context = new_context(LOCALES[lang])
    page = context.new_page()
    cdp, authenticator = virtual_authenticator(context, page)

    # Enroll with a passkey alone.
    sign_in_with_password(page, live_server, email)
    page.wait_for_url(re.compile(r"/sign-in/setup$"))
    assert words["setup"] in page.inner_text("h1")
    page.click("a[href='/sign-in/setup/passkey']")
    assert page.input_value("input[name=name]") == "Chrome / Linux"  # the browser and system, until renamed
    page.fill("input[name=name]", "Work laptop")
    screenshot(page, f"passkey-enroll-{lang}")
    page.click(f"button:has-text('{words['create']}')")
    page.wait_for_url(re.compile(r"/sign-in/setup$"))
    assert "Work laptop" in page.inner_text("main")
    [credential] = credentials(cdp, authenticator)
    assert credential["rpId"] == "localhost"
    page.click("form[action='/sign-in/setup/skip-backup'] button")
    page.click("form[action='/sign-in/setup/recovery-codes'] button")
    page.click("form[action='/sign-in/setup/finish'] button")
    page.wait_for_url(f"{live_server}/")

    # Sign in with it: the passkey is asked for first.
    sign_out(page)
    sign_in_with_password(page, live_server, email)
    page.wait_for_url(re.compile(r"/sign-in/code$"))
    assert words["use"] in page.inner_text("h1")
    screenshot(page, f"passkey-challenge-{lang}")
    page.click(f"form[data-passkey] button:has-text('{words['use']}')")
    page.wait_for_url(f"{live_server}/")
    assert credentials(cdp, authenticator)[0]["signCount"] >= 1

    # The settings list it; adding an authenticator app is confirmed with the passkey.
    page.goto(f"{live_server}/settings/security")
    listed = page.inner_text("#passkeys")
    assert words["name"] in listed and "Work laptop" in listed
    screenshot(page, f"passkey-settings-{lang}")
    page.goto(f"{live_server}/settings/security/app")
    page.wait_for_url(re.compile(r"/settings/confirm"))
    page.click(f"form[data-passkey] button:has-text('{words['use']}')")
    page.wait_for_url(re.compile(r"/settings/security/app$"))
    key = re.sub(r"\s", "", page.inner_text("#setup-key"))
    page.fill("input[name=code]", pyotp.TOTP(key).now())
    page.click("form.stack button[type=submit]")
    page.wait_for_url(re.compile(r"/account/sessions|/settings/security"))

    # A sign-in page opened before the passkey is removed cannot use it afterwards.
    other_context = new_context(LOCALES[lang])
    other = other_context.new_page()
    other_cdp, other_authenticator = virtual_authenticator(other_context, other)
    other_cdp.send("WebAuthn.addCredential", {"authenticatorId": other_authenticator, "credential": credential})
    sign_in_with_password(other, live_server, email)
    other.wait_for_url(re.compile(r"/sign-in/code$"))
    assert words["use"] in other.inner_text("h1")

    page.goto(f"{live_server}/settings/security")
    page.click("#passkeys form[action$='/remove'] button")
    page.wait_for_url(re.compile(r"/account/sessions|/settings/security"))
    page.goto(f"{live_server}/settings/security")
    assert "Work laptop" not in page.inner_text("#passkeys")
    screenshot(page, f"passkey-removed-settings-{lang}")

    other.click(f"form[data-passkey] button:has-text('{words['use']}')")
    problem = other.locator(".passkey-problem")
    problem.wait_for(state="visible")
    assert words["gone"] in problem.inner_text()
    assert re.search(r"/sign-in/code$", other.url)
    other.goto(f"{live_server}/settings/security")
    assert "/sign-in" in other.url  # never signed in


def test_a_copy_with_a_counter_behind_is_refused(live_server, live_app, new_context, new_seller):
    email = new_seller("en")
    context = new_context("en-US")
    page = context.new_page()
    cdp, authenticator = virtual_authenticator(context, page)
    sign_in_with_password(page, live_server, email)
    page.click("a[href='/sign-in/setup/passkey']")
    page.click(f"button:has-text('{WORDS['en']['create']}')")
    page.wait_for_url(re.compile(r"/sign-in/setup$"))
    page.click("form[action='/sign-in/setup/skip-backup'] button")
    page.click("form[action='/sign-in/setup/recovery-codes'] button")
    page.click("form[action='/sign-in/setup/finish'] button")
    page.wait_for_url(f"{live_server}/")
    sign_out(page)

    bump_counter(live_app, 1000)
    sign_in_with_password(page, live_server, email)
    page.wait_for_url(re.compile(r"/sign-in/code$"))
    page.click(f"form[data-passkey] button:has-text('{WORDS['en']['use']}')")
    page.wait_for_load_state()
    page.locator(".flash-error").wait_for()
    assert WORDS["en"]["copy"] in page.inner_text(".flash-error")
    assert re.search(r"/sign-in/code$", page.url)
    screenshot(page, "passkey-counter-refused-en")


def test_the_browser_refuses_the_passkey_at_another_address(live_server, live_app, new_context, new_seller):
    # The same server reached as 127.0.0.1 is another origin: the browser will not use a localhost passkey there
    email = new_seller("en")
    context = new_context("en-US")
    page = context.new_page()
    cdp, authenticator = virtual_authenticator(context, page)
    sign_in_with_password(page, live_server, email)
    page.click("a[href='/sign-in/setup/passkey']")
    page.click(f"button:has-text('{WORDS['en']['create']}')")
    page.wait_for_url(re.compile(r"/sign-in/setup$"))
    page.click("form[action='/sign-in/setup/skip-backup'] button")
    page.click("form[action='/sign-in/setup/recovery-codes'] button")
    page.click("form[action='/sign-in/setup/finish'] button")
    page.wait_for_url(f"{live_server}/")
    sign_out(page)

    count = credentials(cdp, authenticator)[0]["signCount"]
    elsewhere = live_server.replace("localhost", "127.0.0.1")
    sign_in_with_password(page, elsewhere, email)
    page.wait_for_url(re.compile(r"/sign-in/code$"))
    page.click(f"form[data-passkey] button:has-text('{WORDS['en']['use']}')")
    problem = page.locator(".passkey-problem")
    problem.wait_for(state="visible")
    assert WORDS["en"]["elsewhere"] in problem.inner_text()
    assert credentials(cdp, authenticator)[0]["signCount"] == count  # the key was never used there


def test_the_passkey_button_waits_for_its_script(live_server, live_app, new_context, new_seller):
    """A click before the page's script is ready would send the form without a
    passkey: the button stays disabled until the script takes over."""
    email = new_seller("en")
    context = new_context("en-US")
    page = context.new_page()
    virtual_authenticator(context, page)
    sign_in_with_password(page, live_server, email)
    page.wait_for_url(re.compile(r"/sign-in/setup$"))
    held = []
    page.route("**/static/js/passkeys.js", lambda route: held.append(route))
    page.goto(f"{live_server}/sign-in/setup/passkey", wait_until="commit")
    button = page.locator("button.passkey-button")
    button.wait_for(state="attached")  # parsed; the page waits for the held script below it
    assert button.is_disabled()
    assert held, "the script was asked for"
    held[0].continue_()
    expect(button).to_be_enabled()  # checked by Playwright itself: the page's CSP allows no eval
    button.click()
    page.wait_for_url(re.compile(r"/sign-in/setup$"))
