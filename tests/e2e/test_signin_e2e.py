"""A new seller sets up 2-step verification and signs in, in a real browser.

The scenario of the sign-in issue: enroll an authenticator by reading the key
from the page, save recovery codes, sign out, sign in ticking "don't ask on
this device", sign out and in again without a code; a fresh browser context is
asked for a code. In Japanese, with one check in English.
"""

from __future__ import annotations

import re
import time

import pyotp
import pytest

from tests.helpers import TEST_PASSWORD

from .conftest import screenshot

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


@pytest.fixture
def seller(live_app):
    from recovery_app.auth.users import create_user, get_or_create_account
    from recovery_app.extensions import db
    from recovery_app.models.base import utcnow

    with live_app.app_context():
        account = get_or_create_account("さくら雑貨店", utcnow())
        user = create_user(
            email="hanako@example.test",
            password=TEST_PASSWORD,
            role="seller_owner",
            account=account,
            display_name="山田 花子",
            locale="ja",
            now=utcnow(),
        )
        db.session.commit()
        return user.email


def sign_in_with_password(page, base, email):
    page.goto(f"{base}/sign-in")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("form.stack button[type=submit]")


def sign_out(page):
    page.click("header form[action='/sign-out'] button")
    page.wait_for_url(re.compile(r"/sign-in$"))


def next_step_code(key: str) -> str:
    """The code of the coming 30-second step: the one just used is refused as a replay."""
    return pyotp.TOTP(key).at(time.time() + 30)


def test_new_seller_enrolls_and_trusted_device_skips_the_code(live_server, new_context, seller):
    page = new_context("ja-JP", **PHONE).new_page()
    sign_in_with_password(page, live_server, seller)
    page.wait_for_url(re.compile(r"/sign-in/setup$"))
    assert "2段階認証の設定" in page.inner_text("h1")
    screenshot(page, "signin-enroll-choose-ja-phone")

    page.click("a[href='/sign-in/setup/app']")
    assert page.locator(".qr svg").count() == 1
    # A wrong code: on a phone the form is below the QR code, far under where
    # the page opens; its field gets the focus and comes into view.
    page.fill("input[name=code]", "000000")
    page.click("form.stack button[type=submit]")
    page.locator(".field-error").wait_for()
    assert page.evaluate("document.activeElement.name") == "code"
    in_view = "e => { const box = e.getBoundingClientRect(); return box.top >= 0 && box.bottom <= innerHeight; }"
    assert page.locator("input[name=code]").evaluate(in_view)
    assert page.locator(".has-error .field-error").evaluate(in_view)  # and its message under it
    screenshot(page, "signin-enroll-app-wrong-code-ja-phone")
    key = re.sub(r"\s", "", page.inner_text("#setup-key"))
    screenshot(page, "signin-enroll-app-ja-phone")
    page.fill("input[name=code]", pyotp.TOTP(key).now())
    page.click("form.stack button[type=submit]")
    page.wait_for_url(re.compile(r"/sign-in/setup$"))
    screenshot(page, "signin-enroll-backup-ja-phone")

    page.click("form[action='/sign-in/setup/skip-backup'] button")
    screenshot(page, "signin-enroll-codes-intro-ja-phone")
    page.click("form[action='/sign-in/setup/recovery-codes'] button")
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z0-9]{5}-[a-z0-9]{5}", c) for c in codes)
    assert "メール" in page.inner_text("main")  # why codes never come by e-mail
    with page.expect_download() as download:
        page.click("#download-codes")
    saved = download.value.path().read_text(encoding="utf-8")
    assert all(code in saved for code in codes)
    screenshot(page, "signin-recovery-codes-ja-phone")
    page.click("form[action='/sign-in/setup/finish'] button")
    page.wait_for_url(f"{live_server}/")
    assert "山田 花子" in page.inner_text("main")

    sign_out(page)
    sign_in_with_password(page, live_server, seller)
    page.wait_for_url(re.compile(r"/sign-in/code$"))
    assert "確認コードを入力" in page.inner_text("h1")
    screenshot(page, "signin-challenge-ja-phone")
    page.check("input[name=remember_device]")
    page.fill("input[name=code]", next_step_code(key))
    page.click("form.stack button[type=submit]")
    page.wait_for_url(f"{live_server}/")

    sign_out(page)
    sign_in_with_password(page, live_server, seller)
    page.wait_for_url(f"{live_server}/")  # no code asked on this device
    assert "山田 花子" in page.inner_text("main")

    fresh = new_context("ja-JP", **PHONE).new_page()
    sign_in_with_password(fresh, live_server, seller)
    fresh.wait_for_url(re.compile(r"/sign-in/code$"))
    assert fresh.locator("input[name=code][autocomplete=one-time-code][inputmode=numeric]").count() == 1

    english = new_context("en-US").new_page()
    sign_in_with_password(english, live_server, seller)
    english.wait_for_url(re.compile(r"/sign-in/code$"))
    assert "Enter your code" in english.inner_text("h1")
    # Every button and field is a thumb's size (44 px), in English too.
    sizes = english.locator("main button:visible, main input:visible:not([type=checkbox]):not([type=hidden])")
    assert sizes.count() > 1
    assert all(height >= 44 for height in sizes.evaluate_all("all => all.map(e => e.getBoundingClientRect().height)"))
    english.click("text=Didn't get a code?")
    assert "I can't use any of these" in english.inner_text("main")
    screenshot(english, "signin-backups-en-desktop")
