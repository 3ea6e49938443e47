"""Decisions: approval resets 2SV in one transaction; refusals change nothing."""

from datetime import timedelta

import pytest
from flask import url_for
from sqlalchemy import func, select

from recovery_app.extensions import db
from recovery_app.models import (
    AuditEvent,
    Decision,
    OutboxMessage,
    Passkey,
    PasskeyChallenge,
    RecoveryCode,
    SentCode,
    TrustedDevice,
    TwoFactorMethod,
    UserSession,
)
from recovery_app.review import claims, decisions, services
from tests.factories import ALL_CHECKS
from tests.helpers import outbox_messages


def _count(model, user) -> int:
    return db.session.execute(select(func.count()).select_from(model).where(model.user_id == user.id)).scalar_one()


def _held(review, make, reviewer, now, **kwargs):
    case = review.case(**kwargs)
    claims.claim(case.reference, reviewer, now=now)
    db.session.commit()
    return case


def _snapshot(case):
    db.session.expire_all()
    return (
        case.status,
        case.decision,
        case.reason_code,
        case.claimed_by_id,
        db.session.execute(select(func.count()).select_from(Decision)).scalar_one(),
        db.session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one(),
        case.user.session_epoch,
        case.user.must_enroll_2sv,
        _count(TwoFactorMethod, case.user),
    )


def test_approval_resets_every_second_factor_in_one_transaction(app, make, review, auth, now):
    # ASVS 6.4.4, 6.5.6: a lost factor is removed only after identity proofing.
    reviewer = make.user("reviewer")
    seller = review.seller(locale="ja")
    make.add_totp(seller, primary=False)
    make.add_passkey(seller)
    db.session.add(
        SentCode(
            user_id=seller.id,
            challenge_id="c1",
            purpose="sign_in",
            channel="sms",
            phone_e164="+819012345678",
            code_hash="h" * 64,
            created_at=now,
            expires_at=now + timedelta(minutes=10),
        )
    )
    case = _held(review, make, reviewer, now, seller=seller)
    epoch = seller.session_epoch
    response = auth.client_for(reviewer).post(f"/review/case/{case.reference}/approve", data={"checklist": ALL_CHECKS})
    assert response.status_code == 303
    db.session.expire_all()
    assert (case.status, case.decision, case.decided_by_id) == ("approved", "approved", reviewer.id)
    assert case.claimed_by_id is None and case.decided_at is not None
    for model in (TwoFactorMethod, RecoveryCode, TrustedDevice, SentCode, Passkey, PasskeyChallenge):
        assert _count(model, seller) == 0, model
    assert seller.must_enroll_2sv is True
    assert seller.session_epoch == epoch + 1
    approved = db.session.execute(select(AuditEvent).where(AuditEvent.action == "case.approved")).scalar_one()
    assert approved.subject_id == case.reference
    assert approved.details["reset"] == {
        "sent_codes": 1,
        "methods": 2,
        "recovery_codes": 1,
        "trusted_devices": 1,
        "passkeys": 1,
        "sessions": 0,
    }
    mail = outbox_messages("email", seller.email)[-1]
    assert mail.template == "review/email/approved" and mail.locale == "ja"
    assert case.reference in mail.subject and "2段階認証" in mail.body
    assert "code" not in mail.body.lower() or "コード" not in mail.body


def test_open_seller_sessions_end_at_their_next_request(app, make, review, auth, now):
    # ASVS 7.4.1: the session epoch ends every session server-side.
    reviewer = make.user("reviewer")
    seller = review.seller()
    case = _held(review, make, reviewer, now, seller=seller)
    phone, laptop = auth.client_for(seller), auth.client_for(seller)
    assert phone.get("/").status_code == 200  # this one is in use when the approval happens
    auth.client_for(reviewer).post(f"/review/case/{case.reference}/approve", data={"checklist": ALL_CHECKS})
    with app.test_request_context():
        sign_in = url_for("auth.sign_in")
    for client in (phone, laptop):
        response = client.get("/")
        assert response.status_code == 302 and response.headers["Location"].startswith(sign_in)
    rows = db.session.execute(select(UserSession).where(UserSession.user_id == seller.id)).scalars().all()
    assert len(rows) == 2 and all(row.end_reason == "recovery_approved" for row in rows)


def test_deciding_a_case_someone_else_holds_is_refused(make, review, auth, now):
    holder, other = make.user("reviewer"), make.user("reviewer", locale="en")
    case = _held(review, make, holder, now)
    before = _snapshot(case)
    client = auth.client_for(other)
    for path, data in (
        ("approve", {"checklist": ALL_CHECKS}),
        ("reject", {"reason": "expired", "message": "x", "confirm": "y"}),
        ("request-documents", {"message": "again"}),
    ):
        response = client.post(f"/review/case/{case.reference}/{path}", data=data, follow_redirects=True)
        assert "only they or a manager can decide it" in response.get_data(as_text=True), path
    assert _snapshot(case) == before


def test_deciding_an_unclaimed_case_asks_to_claim_it_first(make, review, auth, now):
    reviewer = make.user("reviewer", locale="en")
    case = review.case()
    before = _snapshot(case)
    response = auth.client_for(reviewer).post(
        f"/review/case/{case.reference}/approve", data={"checklist": ALL_CHECKS}, follow_redirects=True
    )
    assert f"Claim case {case.reference} before deciding it." in response.get_data(as_text=True)
    assert _snapshot(case) == before


def test_a_manager_may_decide_a_case_a_reviewer_holds(make, review, auth, now):
    holder, manager = make.user("reviewer"), make.user("manager")
    case = _held(review, make, holder, now)
    auth.client_for(manager).post(
        f"/review/case/{case.reference}/reject",
        data={"confirm": "y", "reason": "unreadable", "message": "Please retake the photo."},
    )
    db.session.expire_all()
    assert case.status == "rejected" and case.decided_by_id == manager.id


def test_second_click_or_replayed_form_changes_nothing(make, review, auth, now):
    reviewer = make.user("reviewer", locale="en")
    case = _held(review, make, reviewer, now)
    client = auth.client_for(reviewer)
    client.post(f"/review/case/{case.reference}/approve", data={"checklist": ALL_CHECKS})
    after_first = _snapshot(case)
    audit_rows = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    replay = client.post(
        f"/review/case/{case.reference}/approve", data={"checklist": ALL_CHECKS}, follow_redirects=True
    )
    assert "was already decided (Approved). Nothing was changed." in replay.get_data(as_text=True)
    assert _snapshot(case) == after_first
    # The refusal is on the trail (ASVS 16.3.2), then the case view after the redirect.
    added = db.session.execute(select(AuditEvent.action).where(AuditEvent.seq > audit_rows)).scalars().all()
    assert added == ["case.refused", "case.viewed"]


def test_approving_an_already_rejected_case_is_refused(make, review, auth, now):
    reviewer = make.user("reviewer", locale="en")
    case = _held(review, make, reviewer, now)
    client = auth.client_for(reviewer)
    client.post(
        f"/review/case/{case.reference}/reject",
        data={"confirm": "y", "reason": "expired", "message": "Expired in 2024."},
    )
    before = _snapshot(case)
    response = client.post(
        f"/review/case/{case.reference}/approve", data={"checklist": ALL_CHECKS}, follow_redirects=True
    )
    assert "was already decided (Not approved)" in response.get_data(as_text=True)
    assert _snapshot(case) == before and case.status == "rejected"


@pytest.mark.parametrize(
    "data",
    [
        {"reason": "because", "message": "Nope.", "confirm": "y"},
        {"reason": "", "message": "Nope.", "confirm": "y"},
        {"reason": "expired", "message": "", "confirm": "y"},
        {"reason": "expired", "message": "x" * 2001, "confirm": "y"},
        {"reason": "expired", "message": "Unconfirmed."},  # a rejection is confirmed on the form first
    ],
)
def test_reject_with_a_bad_reason_or_message_gets_a_form_error(make, review, auth, now, data):
    reviewer = make.user("reviewer", locale="en")
    case = _held(review, make, reviewer, now)
    before = _snapshot(case)
    response = auth.client_for(reviewer).post(f"/review/case/{case.reference}/reject", data=data)
    assert response.status_code == 400
    assert 'class="field-error"' in response.get_data(as_text=True)
    assert _snapshot(case) == before


def test_reason_code_not_in_the_list_is_refused_by_the_service_too(make, review, now, english):
    reviewer = make.user("reviewer")
    case = _held(review, make, reviewer, now)
    with pytest.raises(services.ReviewError):
        decisions.reject(case.reference, reviewer, "made_up", "text", now=now)
    assert case.status == "in_review"


def test_approval_needs_every_checklist_item(make, review, auth, now):
    reviewer = make.user("reviewer", locale="en")
    case = _held(review, make, reviewer, now)
    before = _snapshot(case)
    client = auth.client_for(reviewer)
    partial = client.post(
        f"/review/case/{case.reference}/approve", data={"checklist": ALL_CHECKS[:-1]}, follow_redirects=True
    )
    assert "Tick every item of the checklist before approving." in partial.get_data(as_text=True)
    forged = client.post(f"/review/case/{case.reference}/approve", data={"checklist": ALL_CHECKS + ["bogus"]})
    assert forged.status_code == 400
    assert _snapshot(case) == before


def test_selfie_item_is_not_asked_when_the_case_has_no_selfie(make, review, auth, now):
    reviewer = make.user("reviewer")
    case = _held(review, make, reviewer, now, documents=(("front", "image/png"),))
    auth.client_for(reviewer).post(f"/review/case/{case.reference}/approve", data={"checklist": ALL_CHECKS[:-1]})
    db.session.expire_all()
    assert case.status == "approved"


def test_missing_csrf_token_changes_nothing(make, review, auth, now):
    # ASVS 3.5.1
    reviewer = make.user("reviewer", locale="en")
    case = _held(review, make, reviewer, now)
    before = _snapshot(case)
    client = auth.client_for(reviewer)
    for path in ("approve", "reject", "request-documents", "notes", "release", "confirm"):
        response = client.post(
            f"/review/case/{case.reference}/{path}",
            csrf=False,
            data={"checklist": ALL_CHECKS, "reason": "expired", "message": "m", "body": "b"},
        )
        assert response.status_code == 400, path
        assert "This form has expired" in response.get_data(as_text=True)
    assert _snapshot(case) == before


def test_rejection_tells_the_seller_in_their_language_with_the_message(make, review, auth, now):
    reviewer = make.user("reviewer")
    seller = review.seller(locale="en")
    case = _held(review, make, reviewer, now, seller=seller)
    auth.client_for(reviewer).post(
        f"/review/case/{case.reference}/reject",
        data={"confirm": "y", "reason": "name_mismatch", "message": "The name on the card is not yours."},
    )
    db.session.expire_all()
    assert (case.status, case.reason_code) == ("rejected", "name_mismatch")
    assert case.message_to_seller == "The name on the card is not yours."
    mail = outbox_messages("email", seller.email)[-1]
    assert mail.locale == "en" and "could not confirm your identity" in mail.subject
    assert "Name does not match" in mail.body and "The name on the card is not yours." in mail.body
    assert _count(TwoFactorMethod, seller) == 1  # nothing reset


def test_rejection_mail_in_japanese(make, review, auth, now):
    reviewer = make.user("reviewer")
    seller = review.seller(locale="ja")
    case = _held(review, make, reviewer, now, seller=seller)
    auth.client_for(reviewer).post(
        f"/review/case/{case.reference}/reject",
        data={"confirm": "y", "reason": "expired", "message": "有効期限が切れています。"},
    )
    mail = outbox_messages("email", seller.email)[-1]
    assert mail.locale == "ja" and "本人確認" in mail.subject and "有効期限が切れています。" in mail.body


def test_asking_for_new_documents_pauses_the_clock_and_tells_the_seller(make, review, auth, now):
    reviewer = make.user("reviewer")
    seller = review.seller(locale="en")
    case = _held(review, make, reviewer, now, seller=seller)
    auth.client_for(reviewer).post(
        f"/review/case/{case.reference}/request-documents", data={"message": "Please send the back of the card too."}
    )
    db.session.expire_all()
    assert case.status == "needs_info" and case.paused_since is not None and case.claimed_by_id is None
    assert case.info_request_message == "Please send the back of the card too."
    mail = outbox_messages("email", seller.email)[-1]
    assert "new documents" in mail.subject and "Please send the back of the card too." in mail.body


def test_notes_can_be_added_at_any_time_and_blank_ones_are_refused(make, review, auth, now):
    reviewer = make.user("reviewer", locale="en")
    case = review.case(status="withdrawn")
    client = auth.client_for(reviewer)
    blank = client.post(f"/review/case/{case.reference}/notes", data={"body": "   "})
    assert blank.status_code == 400 and "Write the note first." in blank.get_data(as_text=True)
    client.post(f"/review/case/{case.reference}/notes", data={"body": "Called the seller's office."})
    page = client.get(f"/review/case/{case.reference}").get_data(as_text=True)
    assert "Called the seller&#39;s office." in page
    assert len(case.notes) == 1
