"""The whole recovery journey across two browsers: a locked-out seller sends
documents, a reviewer signs in with a password and an authenticator code,
claims the case from the queue, looks at every document and decides.

Approved: the seller's next sign-in with the password goes straight to
setting up 2-step verification again, then home. Rejected: the seller reads
the outcome and the reviewer's message on the case page, and the e-mail is in
the seller's language, whatever language the reviewer works in.

Each test mixes languages on purpose (an English-speaking seller with a
Japanese reviewer, and the other way round), so both are seen on both sides.
"""

from __future__ import annotations

import re

import pyotp
from sqlalchemy import select

from .conftest import screenshot
from .journeys import (
    DESKTOP,
    PHONE,
    WORDS,
    create_person,
    document_photos,
    open_page,
    open_recovery_case,
    sign_in_staff,
    sign_in_with_password,
)

# Written for a Japanese seller, by a reviewer whose pages are in English.
REJECTION_MESSAGE = (
    "運転免許証の写真がぼやけていて、氏名と番号が読み取れませんでした。"
    "明るい場所で、全体が写るように撮り直してください。"
)


def claim_from_queue(page, base: str, reviewer, reference: str, language: str) -> None:
    """The case is in the queue, unclaimed; the reviewer claims it from its row."""
    words = WORDS[language]
    page.goto(f"{base}/review/")
    assert page.inner_text("h1") == words["queue"]
    row = page.locator("tr.queue-row", has=page.locator(f"a.case-link:text-is('{reference}')"))
    assert row.count() == 1
    screenshot(page, f"review-queue-{language}-desktop")
    with page.expect_navigation():
        row.locator(f"form[action='/review/case/{reference}/claim'] button").click()
    assert page.url == f"{base}/review/case/{reference}"
    assert words["claimed"].format(ref=reference) in page.inner_text(".flash-success")


def look_at_every_document(page, language: str) -> None:
    """Front, back and selfie are shown in the viewer, each image really decoded by the browser."""
    images = page.locator("img[data-viewer-image]")
    assert images.count() == 3
    page.wait_for_function("() => [...document.querySelectorAll('img[data-viewer-image]')].every(i => i.complete)")
    sizes = images.evaluate_all("images => images.map(i => [i.naturalWidth, i.naturalHeight])")
    assert sorted(sizes) == [[900, 1200], [1200, 760], [1200, 760]], sizes  # selfie, front and back as sent
    # The viewer's tools work on the image they belong to.
    first = page.locator("[data-viewer]").first
    first.locator("[data-action=zoom-in]").click()
    assert first.locator("img").evaluate("i => i.style.width") == "125%"
    first.locator("[data-action=rotate]").click()
    assert first.locator("img").evaluate("i => i.style.transform") == "rotate(90deg)"
    first.locator("[data-action=reset]").click()
    # The seller's security history names the request in the reviewer's language.
    events = page.inner_text("section[aria-labelledby=events-title]")
    assert WORDS[language]["event_requested"] in events and "recovery_requested" not in events
    screenshot(page, f"review-case-{language}-desktop")


def test_approved_seller_sets_up_2sv_again_and_reaches_home(live_app, live_server, new_context, tmp_path):
    seller = create_person(live_app, "seller_owner", locale="en", name="Emma Clarke", shop="Clarke Crafts Ltd")
    reviewer = create_person(live_app, "reviewer", locale="ja", name="審査 一郎")
    seller_page, seller_errors = open_page(new_context, "en", PHONE)
    reference = open_recovery_case(seller_page, live_server, seller, document_photos(tmp_path, "EMMA CLARKE"))

    page, errors = open_page(new_context, "ja", DESKTOP)
    sign_in_staff(page, live_server, reviewer)
    assert page.url == f"{live_server}/review/"  # staff land on the queue
    claim_from_queue(page, live_server, reviewer, reference, "ja")
    look_at_every_document(page, "ja")
    checklist = page.locator("#approve-form input[name=checklist]")
    assert checklist.count() == 5  # selfie included
    boxes = checklist.all()
    for box in boxes[:2] + boxes[3:]:
        box.check()
    with page.expect_navigation():  # one box left unticked: sent back, that box marked and focused
        page.click("#approve-form button[type=submit]")
    assert page.locator("fieldset.checklist.has-error #checklist-error").is_visible()
    assert page.evaluate("document.activeElement.value") == boxes[2].get_attribute("value")
    assert page.locator("[data-unticked]").count() == 1
    assert all(box.is_checked() for box in boxes[:2] + boxes[3:])  # what was ticked stays ticked
    errors.seen = [e for e in errors.seen if not ("status of 400" in e and e.endswith("/approve)"))]  # as asked
    boxes[2].check()
    assert boxes[2].get_attribute("aria-invalid") is None  # ticked: no longer announced as invalid
    with page.expect_navigation():
        page.click("#approve-form button[type=submit]")
    assert WORDS["ja"]["approved_flash"].format(ref=reference) in page.inner_text(".flash-success")
    assert "承認済み" in page.inner_text(".decide")
    errors.check()

    # The seller's browser still holds the password step from before: the approval ended it.
    sign_in_with_password(seller_page, live_server, seller.email)
    assert seller_page.url == f"{live_server}/sign-in/setup"
    assert seller_page.inner_text("h1") == WORDS["en"]["setup"]
    with seller_page.expect_navigation():
        seller_page.click("a[href='/sign-in/setup/app']")
    key = re.sub(r"\s", "", seller_page.inner_text("#setup-key"))
    seller_page.fill("input[name=code]", pyotp.TOTP(key).now())
    with seller_page.expect_navigation():
        seller_page.click("form.stack button[type=submit]")
    assert seller_page.url == f"{live_server}/sign-in/setup"
    with seller_page.expect_navigation():
        seller_page.click("form[action='/sign-in/setup/skip-backup'] button")
    with seller_page.expect_navigation():
        seller_page.click("form[action='/sign-in/setup/recovery-codes'] button")
    assert seller_page.locator("#recovery-codes li").count() == 10
    with seller_page.expect_navigation():
        seller_page.click("form[action='/sign-in/setup/finish'] button")
    assert seller_page.url == f"{live_server}/"
    assert seller_page.inner_text("h1") == WORDS["en"]["welcome"].format(name=seller.name)
    seller_errors.check()

    from recovery_app.extensions import db
    from recovery_app.models import Case, TwoFactorMethod, User

    with live_app.app_context():
        case = db.session.execute(select(Case).where(Case.reference == reference)).scalar_one()
        user = db.session.get(User, case.user_id)
        assert case.status == "approved" and not user.must_enroll_2sv
        methods = db.session.execute(select(TwoFactorMethod).where(TwoFactorMethod.user_id == user.id)).scalars().all()
        assert (
            len(methods) == 1 and methods[0].confirmed_at is not None
        )  # the lost phone's app is gone, the new one set
        db.session.remove()


def test_rejected_seller_reads_the_outcome_and_the_message(live_app, live_server, new_context, tmp_path):
    seller = create_person(live_app, "seller_owner", locale="ja", name="山田 花子", shop="さくら雑貨店")
    reviewer = create_person(live_app, "reviewer", locale="en", name="Oliver Reed")
    seller_page, seller_errors = open_page(new_context, "ja", PHONE)
    reference = open_recovery_case(seller_page, live_server, seller, document_photos(tmp_path))

    page, errors = open_page(new_context, "en", DESKTOP)
    sign_in_staff(page, live_server, reviewer)
    claim_from_queue(page, live_server, reviewer, reference, "en")
    look_at_every_document(page, "en")
    page.click("details.decide-more > summary:text-is('Reject')")
    page.select_option("select[name=reason]", "unreadable")
    page.fill("textarea[name=message]", REJECTION_MESSAGE)
    page.check("input[name=confirm]")
    with page.expect_navigation():
        page.click(f"form[action='/review/case/{reference}/reject'] button.danger")
    assert WORDS["en"]["rejected_flash"].format(ref=reference) in page.inner_text(".flash-success")
    assert REJECTION_MESSAGE in page.inner_text(".decide")
    errors.check()

    # A rejection leaves 2-step verification as it was: the seller, still without
    # their phone, stops at the code and looks at the case page.
    words = WORDS["ja"]
    seller_page.context.clear_cookies()
    sign_in_with_password(seller_page, live_server, seller.email)
    assert seller_page.url == f"{live_server}/sign-in/code"
    seller_page.goto(f"{live_server}/recovery/case")
    assert seller_page.inner_text("#case-reference") == reference
    assert seller_page.inner_text("#case-status") == words["not_approved"]
    outcome = seller_page.inner_text("section.next")
    assert words["not_confirmed"] in outcome
    assert seller_page.inner_text("blockquote.reviewer-message .message") == REJECTION_MESSAGE
    assert seller_page.locator("section.next a.button[href='/recovery/']").is_visible()  # may start again
    screenshot(seller_page, "review-rejected-case-ja-phone")
    seller_errors.check()

    from recovery_app.extensions import db
    from recovery_app.models import OutboxMessage
    from recovery_app.notify.services import text_of

    with live_app.app_context():
        mails = (
            db.session.execute(
                select(OutboxMessage).where(
                    OutboxMessage.to == seller.email, OutboxMessage.template == "review/email/rejected"
                )
            )
            .scalars()
            .all()
        )
        assert len(mails) == 1
        mail = mails[0]
        assert mail.channel == "email" and mail.locale == "ja"  # the seller's language, not the reviewer's
        subject, body = text_of(mail)  # written by its sender, in the seller's language
        assert subject == words["rejected_subject"].format(ref=reference)
        assert words["reason_unreadable"] in body
        assert REJECTION_MESSAGE in body
        db.session.remove()
