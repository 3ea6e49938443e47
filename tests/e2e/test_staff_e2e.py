"""A manager invites a reviewer from the staff page and the newcomer accepts,
in a real browser, in Japanese and in English, on a desktop and a phone.
Screenshots of each page go to test-results/."""

from __future__ import annotations

import re

import pytest

from tests.helpers import outbox_messages

from .conftest import screenshot
from .journeys import DESKTOP, PHONE, create_person, open_page, sign_in_staff

WORDS = {
    "ja": {
        "staff": "スタッフ",
        "sent": "に招待メールを送りました",
        "join": "審査チームに参加する",
        "ready": "ログインの準備ができました",
        "find": "ユーザー検索",
    },
    "en": {
        "staff": "Staff",
        "sent": "An invitation was sent to",
        "join": "Join the review team",
        "ready": "Your login is ready",
        "find": "Find a user",
    },
}
NEW_PASSWORD = "quiet lantern orchard 9107"


def _no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), page.url


@pytest.mark.parametrize("language", ["ja", "en"])
@pytest.mark.parametrize("device_name", ["desktop", "phone"])
def test_manager_invites_a_reviewer_who_accepts(live_app, live_server, new_context, language, device_name):
    device = DESKTOP if device_name == "desktop" else PHONE
    words = WORDS[language]
    manager = create_person(
        live_app, "manager", locale=language, name="真野 マネージャー" if language == "ja" else "Mana Ger"
    )
    create_person(live_app, "reviewer", locale=language, name="審査 太郎" if language == "ja" else "Rae Viewer")
    newcomer = f"newcomer-{language}-{device_name}@example.test"

    page, errors = open_page(new_context, language, device)
    sign_in_staff(page, live_server, manager)
    if device_name == "desktop":
        with page.expect_navigation():
            page.click(f"nav.topnav a[href='/staff/']:has-text('{words['staff']}')")
    else:
        page.goto(f"{live_server}/staff/")
    page.fill("input[name=email]", newcomer)
    page.select_option("select[name=role]", "reviewer")
    with page.expect_navigation():
        page.click("form[action='/staff/invite'] button[type=submit]")
    assert words["sent"] in page.inner_text(".flash-success")
    assert newcomer in page.inner_text("main")
    _no_sideways_scroll(page)
    screenshot(page, f"staff-{language}-{device_name}")

    page.goto(f"{live_server}/staff/users?q=example.test")
    assert words["find"] in page.inner_text("h1")
    _no_sideways_scroll(page)
    screenshot(page, f"staff-users-{language}-{device_name}")

    with live_app.app_context():
        body = outbox_messages("email", newcomer)[-1].body
    link = re.search(r"https?://[^/\s]+(/account/invitation/[A-Za-z0-9_\-]+)", body).group(1)
    visitor, visitor_errors = open_page(new_context, language, device)
    visitor.goto(live_server + link)
    assert words["join"] in visitor.inner_text("h1")
    _no_sideways_scroll(visitor)
    screenshot(visitor, f"staff-accept-{language}-{device_name}")
    visitor.fill("input[name=display_name]", "新井 凛" if language == "ja" else "Rin Arai")
    visitor.fill("input[name=password]", NEW_PASSWORD)
    visitor.fill("input[name=confirm]", NEW_PASSWORD)
    with visitor.expect_navigation():
        visitor.click("form.stack button[type=submit]")
    assert visitor.url.endswith("/sign-in") and words["ready"] in visitor.inner_text(".flash-success")
    errors.check()
    visitor_errors.check()
