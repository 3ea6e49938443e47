"""The seller's case page after submission: status and due time, new documents
when a reviewer asks for them, withdrawal."""

from __future__ import annotations

import io
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from recovery_app import lifecycle
from recovery_app.models import AuditEvent, Case, Document
from recovery_app.models.base import utcnow
from tests.factories import id_card, jpeg_bytes

from .conftest import full_form, send, stored_files


def _open_case(client, documents, db) -> Case:
    assert send(client, "/recovery/", full_form(documents)).status_code == 302
    return db.session.execute(select(Case)).scalar_one()


def _ask_for_new_documents(case, reviewer, message, *, at):
    lifecycle.transition(case, "in_review", now=at, actor=reviewer, action="claimed")
    case.claimed_by_id = reviewer.id
    lifecycle.transition(case, "needs_info", now=at, actor=reviewer, action="info_requested")
    case.info_request_message = message


def test_case_page_without_a_case_leads_to_the_start(client, seller):
    response = client.get("/recovery/case")
    assert response.status_code == 302 and response.headers["Location"].endswith("/recovery/")


def test_case_page_needs_the_password_step(client):
    assert client.get("/recovery/case").status_code == 302
    assert client.get("/recovery/case/withdraw").status_code == 302


def test_case_page_in_english_shows_status_due_time_and_next_steps(client, seller, documents, db):
    client.get("/language/en")  # before the first page: the test app context keeps the locale it resolved
    case = _open_case(client, documents, db)
    page = client.get("/recovery/case").get_data(as_text=True)
    assert case.reference in page and "Waiting for review" in page and "Decision due by" in page
    tokyo = case.due_at.astimezone(ZoneInfo("Asia/Tokyo"))
    # Day, month, year, a 24-hour clock, and the zone by its abbreviation and offset (never a US-style date).
    shown = f"{tokyo.day} {tokyo.strftime('%B')} {tokyo.year}, {tokyo.strftime('%H:%M')} JST (UTC+9)"
    assert shown in page
    assert "We will e-mail you the result" in page


def test_seller_sends_new_documents_when_asked_and_the_clock_resumes(client, seller, make, documents, db, app):
    case = _open_case(client, documents, db)
    reviewer = make.user("reviewer")
    # Five hours ago the case was sent; three hours ago a reviewer asked for a new back.
    opened = utcnow() - timedelta(hours=5)
    case.submitted_at = case.created_at = case.clock_started_at = opened
    case.due_at = due_before = opened + timedelta(hours=12)
    _ask_for_new_documents(
        case, reviewer, "裏面がぼやけています。\n明るい場所で撮り直してください。<b>", at=opened + timedelta(hours=2)
    )
    db.session.commit()

    page = client.get("/recovery/case").get_data(as_text=True)
    assert "書類の再提出が必要です" in page and "裏面がぼやけています。" in page
    assert "<b>" not in page and "&lt;b&gt;" in page  # the reviewer's text is shown as text
    assert 'action="/recovery/case/documents"' in page

    new_back = jpeg_bytes(id_card(seed=61, label="REVERSE AGAIN"))
    response = send(client, "/recovery/case/documents", {"back": (io.BytesIO(new_back), "back2.jpg", "image/jpeg")})
    assert response.status_code == 302
    db.session.refresh(case)
    assert case.status == "submitted"
    # The pause is added to the due time (DESIGN.md: the clock pauses while the case waits on the seller).
    assert case.paused_since is None and abs(case.paused_seconds - 3 * 3600) < 60
    assert abs((case.due_at - due_before) - timedelta(hours=3)) < timedelta(minutes=1)
    rounds = sorted((d.round, d.side) for d in case.documents)
    assert rounds == [(1, "back"), (1, "front"), (1, "selfie"), (2, "back")]
    assert len(stored_files(app)) == 4
    actions = db.session.execute(select(AuditEvent.action)).scalars().all()
    assert "case.resubmitted" in actions


def test_resubmission_refuses_bad_files_and_changes_nothing(client, seller, make, documents, db, app):
    client.get("/language/en")
    case = _open_case(client, documents, db)
    _ask_for_new_documents(case, make.user("reviewer"), "Again please", at=utcnow())
    db.session.commit()
    for form, message in (
        ({}, "Please choose at least one new photo: the message above says which document we need again."),
        ({"front": (io.BytesIO(b"<html>"), "f.jpg", "image/jpeg")}, "This file cannot be used"),
        ({"back": (io.BytesIO(documents["back"]), "b.jpg", "image/jpeg")}, "the same picture you sent before"),
    ):
        response = send(client, "/recovery/case/documents", form)
        page = response.get_data(as_text=True)
        assert response.status_code == 422 and message in page
        if not form:  # nothing sent: no field is marked, and nothing is said to be kept
            assert "has-error" not in page and "Files that were fine are kept" not in page
    db.session.refresh(case)
    assert case.status == "needs_info"
    assert len(db.session.execute(select(Document)).scalars().all()) == 3 and len(stored_files(app)) == 3


def test_resubmission_is_refused_while_the_case_does_not_wait_on_the_seller(client, seller, documents, db):
    client.get("/language/en")  # before the first page: the test app context keeps the locale it resolved
    case = _open_case(client, documents, db)
    response = send(
        client, "/recovery/case/documents", {"front": (io.BytesIO(jpeg_bytes(seed=62)), "f.jpg", "image/jpeg")}
    )
    assert response.status_code == 302
    assert "not waiting for new documents" in client.get("/recovery/case").get_data(as_text=True)
    assert len(case.documents) == 3


def test_seller_withdraws_an_open_case(client, seller, documents, db):
    case = _open_case(client, documents, db)
    confirm = client.get("/recovery/case/withdraw").get_data(as_text=True)
    assert case.reference in confirm
    response = client.post("/recovery/case/withdraw", data={"submit": "y"})
    assert response.status_code == 302
    db.session.refresh(case)
    assert case.status == "withdrawn" and case.closed_at is not None
    page = client.get("/recovery/case").get_data(as_text=True)
    assert "取り下げ済み" in page and "新しく申請する" in page
    assert "この申請は取り下げられたため、審査は行われていません。" in page
    assert client.get("/recovery/").status_code == 200  # a new case may be opened
    # Nothing left to withdraw: the way back is to the closed case, not to an empty form.
    again = client.get("/recovery/case/withdraw").get_data(as_text=True)
    assert 'href="/recovery/case"' in again and "申請の状況に戻る" in again and "入力画面に戻る" not in again


def test_closed_case_pages_say_why_each_case_closed(client, seller, documents, db):
    client.get("/language/en")
    case = _open_case(client, documents, db)
    why = {
        "expired": "the new documents did not arrive in time",
        "cancelled": "signed in to with its 2-step verification",
    }
    for status, words in why.items():
        case.status = status
        case.closed_at = utcnow()
        db.session.commit()
        page = client.get("/recovery/case").get_data(as_text=True)
        assert words in page and "Send a new recovery case" in page, status
    # A case the owner stopped is no reason to send another: the offer is there, but not the main button.
    assert 'class="button secondary" href="/recovery/"' in page


STOPPED_BY_SIGN_IN = "stopped because the account was signed in to with its 2-step verification"


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("owner_signed_in", STOPPED_BY_SIGN_IN),
        ("owner_cancelled", "The account's owner, signed in with 2-step verification, cancelled this case."),
    ],
)
def test_a_cancelled_case_says_how_the_owner_stopped_it(app, client, seller, documents, db, reason, words):
    from recovery_app.recovery import services

    client.get("/language/en")
    _open_case(client, documents, db)
    with app.test_request_context():  # the notice links to the site
        services.cancel_for_owner(seller, reason=reason, now=utcnow(), address=None, browser=None)
    db.session.commit()
    page = client.get("/recovery/case").get_data(as_text=True)
    assert words in page
    assert (STOPPED_BY_SIGN_IN in page) == (reason == "owner_signed_in")


def test_withdrawal_without_csrf_token_changes_nothing(client, seller, documents, db):
    case = _open_case(client, documents, db)
    assert client.post("/recovery/case/withdraw", data={"submit": "y"}, csrf=False).status_code == 400
    db.session.refresh(case)
    assert case.status == "submitted"


def test_case_in_review_cannot_be_withdrawn(client, seller, make, documents, db):
    client.get("/language/en")
    case = _open_case(client, documents, db)
    lifecycle.transition(case, "in_review", now=utcnow(), actor=make.user("reviewer"), action="claimed")
    db.session.commit()
    assert "Withdraw this case" not in client.get("/recovery/case").get_data(as_text=True)
    client.post("/recovery/case/withdraw", data={"submit": "y"})
    db.session.refresh(case)
    assert case.status == "in_review"
    assert "A reviewer is working on your case right now" in client.get("/recovery/case").get_data(as_text=True)


def test_fully_signed_in_owner_can_withdraw_a_case_someone_else_opened(app, make, auth, documents, db):
    owner = make.user()
    intruder_browser, owner_browser = app.test_client(), app.test_client()
    auth.fast_password_step(intruder_browser, owner)
    case = _open_case(intruder_browser, documents, db)
    auth.fast_sign_in(owner_browser, owner)
    db.session.commit()  # the session row must outlive the first request's app context
    with app.app_context():  # a fresh ``g``, as each real request has
        assert case.reference in owner_browser.get("/recovery/case").get_data(as_text=True)
    with app.app_context():
        owner_browser.post("/recovery/case/withdraw", data={"submit": "y"})
    assert db.session.execute(select(Case.status)).scalar_one() == "cancelled"  # signed in: the owner wins


def test_staff_at_the_password_step_cannot_open_a_case(client, make, auth):
    reviewer = make.user("reviewer")
    auth.fast_password_step(client, reviewer)
    assert client.get("/recovery/").status_code == 302


def test_expired_password_step_is_sent_to_sign_in(client, make, auth):
    user = make.user()
    auth.fast_password_step(client, user, at=utcnow() - timedelta(hours=2))
    assert client.get("/recovery/").status_code == 302


def test_signed_in_seller_without_a_case_cannot_open_one(client, make, auth, documents, db):
    user = make.user()
    auth.fast_sign_in(client, user)
    assert client.get("/recovery/").headers["Location"].endswith("/recovery/case")
    assert client.get("/recovery/case").headers["Location"] == "/"
    response = send(client, "/recovery/", full_form(documents))
    assert response.status_code == 302 and response.headers["Location"].endswith("/recovery/case")
    assert db.session.execute(select(Case)).first() is None
    assert client.get("/recovery/case/withdraw").status_code == 200  # the signed-in user is accepted there


def test_withdrawing_without_an_open_case_says_so(client, seller):
    client.get("/language/en")
    assert "You have no open recovery case to withdraw." in client.get("/recovery/case/withdraw").get_data(as_text=True)
    response = client.post("/recovery/case/withdraw", data={"submit": "y"})
    assert response.status_code == 302


def test_due_time_falls_back_to_utc_for_an_unknown_time_zone(app):
    from datetime import datetime

    from recovery_app.recovery.services import in_zone

    moment = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert in_zone(moment, "Mars/Olympus_Mons", "en") == in_zone(moment, "UTC", "en")
    assert in_zone(moment, "Asia/Tokyo", "ja") == "2026年3月2日 18:00（日本標準時）"
