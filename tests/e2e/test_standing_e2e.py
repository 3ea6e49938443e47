"""A seller watches their case page while reviewers work the queue.

Two cases are ahead of the seller's; a reviewer decides the first and then
starts on the seller's case. The page, never reloaded, says one case is
ahead, then that a reviewer started, with the expected decision and the
promise beside it. In Japanese and in English, on a phone.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from .conftest import screenshot
from .journeys import PHONE, create_person, open_page, sign_in_with_password

WORDS = {
    "ja": {
        "two_ahead": "あなたの申請より前に2件の申請があります。",
        "one_ahead": "あなたの申請より前に1件の申請があります。",
        "started": "審査担当者があなたの申請の審査を始めました。",
        "expected": "審査結果の見込み：",
        "promise": "お約束：書類の送信から12時間以内",
        "title": "申請の状況",
        "in_review": "審査中",
    },
    "en": {
        "two_ahead": "2 cases are ahead of yours.",
        "one_ahead": "1 case is ahead of yours.",
        "started": "A reviewer started on your case at",
        "expected": "Expected decision: around",
        "promise": "Our promise: a decision within 12 hours",
        "title": "Where your case stands",
        "in_review": "In review",
    },
}
NAMES = {"ja": ("佐藤 健", "けやき文具"), "en": ("Oliver Hughes", "Hughes Hardware")}


def _queue(live_app, seller_email: str, reviewer_email: str) -> tuple[str, str]:
    """Two cases of other sellers before the seller's, one of them held by the
    reviewer, and a decision yesterday to learn the handling time from.
    Returns (the first case ahead, the seller's case)."""
    from recovery_app.database import unit
    from recovery_app.extensions import db
    from recovery_app.models import User
    from recovery_app.models.base import utcnow
    from recovery_app.review import claims
    from tests.factories import Factory

    with live_app.app_context():
        with unit():
            make = Factory(live_app)
            now = utcnow()
            seller = db.session.execute(select(User).where(User.email == seller_email)).scalar_one()
            reviewer = db.session.execute(select(User).where(User.email == reviewer_email)).scalar_one()
            past = make.case(submitted_at=now - timedelta(days=1))
            past.status, past.first_claimed_at = "rejected", now - timedelta(days=1) + timedelta(hours=1)
            past.decided_at = past.closed_at = past.first_claimed_at + timedelta(minutes=40)
            past.decided_by_id = reviewer.id
            first = make.case(submitted_at=now - timedelta(hours=3))
            make.case(submitted_at=now - timedelta(hours=2))
            mine = make.case(seller, submitted_at=now - timedelta(minutes=20))
            references = first.reference, mine.reference
        with unit():
            claims.claim(references[0], reviewer, now=utcnow())
        db.session.remove()
    return references


def _as_reviewer(live_app, reviewer_email: str, action) -> None:
    from recovery_app.database import unit
    from recovery_app.extensions import db
    from recovery_app.models import User

    with live_app.app_context(), live_app.test_request_context():
        with unit():
            reviewer = db.session.execute(select(User).where(User.email == reviewer_email)).scalar_one()
            action(reviewer)
        db.session.remove()


@pytest.mark.parametrize("language", ["ja", "en"])
def test_case_page_follows_the_queue_without_a_reload(live_app, live_server, new_context, language):
    from recovery_app.models.base import utcnow
    from recovery_app.review import claims, decisions

    live_app.config["RECOVERY_STANDING_POLL_SECONDS"] = 1
    words = WORDS[language]
    name, shop = NAMES[language]
    seller = create_person(live_app, "seller_owner", locale=language, name=name, shop=shop)
    reviewer = create_person(live_app, "reviewer", locale=language, name="Reviewer")
    first_ahead, mine = _queue(live_app, seller.email, reviewer.email)

    page, errors = open_page(new_context, language, PHONE)
    sign_in_with_password(page, live_server, seller.email)  # the phone is lost: the password step only
    page.goto(f"{live_server}/recovery/case")
    assert page.inner_text("#case-reference") == mine
    assert page.inner_text("#standing-title") == words["title"]
    place, reviewer_line = page.locator("#standing-place"), page.locator("#standing-reviewer")
    assert place.inner_text() == words["two_ahead"]
    assert words["expected"] in page.inner_text("#standing-estimate")
    assert words["promise"] in page.inner_text("#standing-promise")
    page.evaluate("window.sameDocument = true")  # gone if the page were loaded again

    _as_reviewer(
        live_app,
        reviewer.email,
        lambda who: decisions.reject(first_ahead, who, "unreadable", "The photo is blurred.", now=utcnow()),
    )
    expect(place).to_have_text(words["one_ahead"])
    assert page.evaluate("window.sameDocument") is True

    _as_reviewer(live_app, reviewer.email, lambda who: claims.claim(mine, who, now=utcnow()))
    expect(reviewer_line).to_contain_text(words["started"])
    expect(place).to_be_hidden()
    expect(page.locator("#case-status")).to_have_text(words["in_review"])
    assert words["promise"] in page.inner_text("#standing-promise")
    assert page.evaluate("window.sameDocument") is True
    screenshot(page, f"recovery-standing-{language}-phone")
    errors.check()
