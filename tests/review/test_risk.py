"""Four eyes: a high-risk case needs two different people to approve it."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from recovery_app.extensions import db
from recovery_app.models import SecurityEvent, TwoFactorMethod
from recovery_app.review import claims, decisions, risk, services
from tests.factories import ALL_CHECKS


def test_new_user_with_no_changes_is_not_high_risk(make, now):
    seller = make.user(created_at=now - timedelta(days=2))
    assert risk.assess(seller, now) == []


def test_password_or_email_changed_within_seven_days_is_high_risk(make, now):
    seller = make.user(created_at=now - timedelta(days=100))
    seller.password_changed_at = now - timedelta(days=6, hours=23)
    assert risk.assess(seller, now) == ["password_changed"]
    seller.password_changed_at = now - timedelta(days=8)
    seller.email_changed_at = now - timedelta(days=1)
    assert risk.assess(seller, now) == ["email_changed"]
    seller.email_changed_at = now - timedelta(days=8)
    assert risk.assess(seller, now) == []


def test_security_events_count_as_changes(make, now):
    seller = make.user(created_at=now - timedelta(days=100))
    seller.password_changed_at = now - timedelta(days=100)
    db.session.add(SecurityEvent(user_id=seller.id, kind="password_changed", at=now - timedelta(days=2), details={}))
    db.session.add(SecurityEvent(user_id=seller.id, kind="email_changed", at=now - timedelta(days=9), details={}))
    assert risk.assess(seller, now) == ["password_changed"]


def test_earlier_case_rejected_for_fraud_is_high_risk(make, now):
    seller = make.user()
    earlier = make.case(seller, submitted_at=now - timedelta(days=90), status="rejected")
    earlier.reason_code = "suspected_fraud"
    db.session.flush()
    assert risk.assess(seller, now) == ["earlier_case_rejected_for_fraud"]


def test_assessment_is_kept_on_the_case_at_first_view_and_respects_other_checks(make, review, auth, now):
    reviewer = make.user("reviewer")
    case = review.case()
    case.high_risk = True
    case.risk_reasons = ["document_reused"]
    db.session.commit()
    auth.client_for(reviewer).get(f"/review/case/{case.reference}")
    db.session.expire_all()
    assert case.risk_assessed_at is not None
    assert case.high_risk is True and case.risk_reasons == ["document_reused", risk.UNKNOWN_PLACE]


def _high_risk_case(review, make, now):
    seller = review.seller(created_at=now - timedelta(days=100))
    seller.email_changed_at = now - timedelta(days=2)
    return review.case(seller)


def test_high_risk_approval_waits_for_a_different_reviewer(make, review, auth, now):
    first, second = make.user("reviewer", locale="en"), make.user("reviewer")
    case = _high_risk_case(review, make, now)
    seller = case.user
    client = auth.client_for(first)
    client.post(f"/review/case/{case.reference}/claim")
    client.post(f"/review/case/{case.reference}/approve", data={"checklist": ALL_CHECKS})
    db.session.expire_all()
    assert case.status == "awaiting_second_approval" and case.claimed_by_id is None
    assert case.high_risk and case.risk_reasons == ["email_changed", risk.UNKNOWN_PLACE]
    assert seller.must_enroll_2sv is False  # nothing reset yet
    # The first approver can neither take the second approval nor give it.
    again = client.post(f"/review/case/{case.reference}/claim", follow_redirects=True)
    assert "a different reviewer or a manager must confirm it" in again.get_data(as_text=True)
    own = client.post(f"/review/case/{case.reference}/confirm", follow_redirects=True)
    assert f"You gave the first approval of case {case.reference}" in own.get_data(as_text=True)
    db.session.expire_all()
    assert case.status == "awaiting_second_approval"
    other = auth.client_for(second)
    other.post(f"/review/case/{case.reference}/claim")
    other.post(f"/review/case/{case.reference}/confirm")
    db.session.expire_all()
    assert case.status == "approved" and case.decided_by_id == second.id
    assert seller.must_enroll_2sv is True
    assert (
        db.session.execute(
            select(func.count()).select_from(TwoFactorMethod).where(TwoFactorMethod.user_id == seller.id)
        ).scalar_one()
        == 0
    )
    assert [d.action for d in case.decisions] == ["first_approval", "second_approval"]


def test_manager_who_gave_the_first_approval_cannot_confirm_it(make, review, now, english):
    manager = make.user("manager")
    case = _high_risk_case(review, make, now)
    claims.claim(case.reference, manager, now=now)
    decisions.approve(case.reference, manager, ALL_CHECKS, now=now)
    with pytest.raises(services.ReviewError, match="first approval"):
        decisions.confirm_approval(case.reference, manager, now=now)
    assert case.status == "awaiting_second_approval"
    other_manager = make.user("manager")
    decisions.confirm_approval(case.reference, other_manager, now=now)
    assert case.status == "approved"


def test_second_reviewer_may_reject_instead(make, review, auth, now):
    first, second = make.user("reviewer"), make.user("reviewer")
    case = _high_risk_case(review, make, now)
    claims.claim(case.reference, first, now=now)
    decisions.approve(case.reference, first, ALL_CHECKS, now=now)
    claims.claim(case.reference, second, now=now)
    decisions.reject(case.reference, second, "suspected_fraud", "We could not confirm it was you.", now=now)
    assert case.status == "rejected" and case.user.must_enroll_2sv is False


def test_the_second_approver_sees_what_the_first_ticked_and_why_the_case_is_high_risk(make, review, auth, now):
    first, second = make.user("reviewer"), make.user("reviewer", locale="en")
    case = _high_risk_case(review, make, now)
    client = auth.client_for(first)
    client.post(f"/review/case/{case.reference}/claim")
    client.post(f"/review/case/{case.reference}/approve", data={"checklist": ALL_CHECKS})
    other = auth.client_for(second)
    other.post(f"/review/case/{case.reference}/claim")
    page = other.get(f"/review/case/{case.reference}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert f"First approval by {first.email}" in page
    assert "Selfie matches the document" in page and "High risk because:" in page


def test_a_case_from_a_browser_and_an_address_never_seen_asks_for_a_closer_look_only(make, now):
    seller = make.user(created_at=now - timedelta(days=100))
    db.session.add(
        SecurityEvent(
            user_id=seller.id,
            kind="signed_in",
            at=now - timedelta(days=3),
            address="198.51.100.4",
            browser="Firefox on the office PC",
            details={},
        )
    )
    db.session.flush()
    assert risk.assess(seller, now, "203.0.113.9", "Safari on a new phone") == [risk.UNKNOWN_PLACE]
    assert not risk.is_four_eyes([risk.UNKNOWN_PLACE])
    # A known address or a known browser is enough not to say it.
    assert risk.assess(seller, now, "198.51.100.4", "Safari on a new phone") == []
    assert risk.assess(seller, now, "203.0.113.9", "Firefox on the office PC") == []
    # Sign-ins after the case was opened do not count.
    assert risk.assess(seller, now - timedelta(days=4), "198.51.100.4", "Firefox on the office PC") == [
        risk.UNKNOWN_PLACE
    ]


def test_the_reviewer_reads_the_closer_look_in_words_and_one_approval_is_enough(make, review, auth, now):
    reviewer = make.user("reviewer", locale="en")
    case = review.case()  # opened from an address and browser that never signed in to this seller
    client = auth.client_for(reviewer)
    page = client.get(f"/review/case/{case.reference}").get_data(as_text=True)
    assert "from a browser and an address that never signed in to this user before" in page
    client.post(f"/review/case/{case.reference}/claim")
    client.post(f"/review/case/{case.reference}/approve", data={"checklist": ALL_CHECKS})
    db.session.expire_all()
    assert case.status == "approved" and case.high_risk is False


@pytest.mark.parametrize(
    ("check", "code", "reason"),
    [
        ("face", "no_face", risk.PRECHECK_NO_FACE),
        ("mrz", "check_digit", risk.PRECHECK_CHECK_DIGIT),
        ("mrz", "expired", risk.PRECHECK_EXPIRED),
    ],
)
def test_a_failed_pre_check_means_four_eyes_even_if_it_failed_after_the_file_was_opened(
    make, review, auth, now, check, code, reason
):
    from recovery_app.models import PrecheckResult

    first, second = make.user("reviewer", locale="en"), make.user("reviewer", locale="en")
    case = review.case()
    client = auth.client_for(first)
    client.post(f"/review/case/{case.reference}/claim")
    assert client.get(f"/review/case/{case.reference}").status_code == 200  # opened before the check finished
    front = next(document for document in case.documents if document.side == "front")
    db.session.add(
        PrecheckResult(
            case_id=case.id,
            document_id=front.id,
            check=check,
            verdict="fail",
            reasons=[code],
            measured={},
            versions={},
            created_at=now,
        )
    )
    db.session.commit()
    client.post(f"/review/case/{case.reference}/approve", data={"checklist": ALL_CHECKS})
    db.session.expire_all()
    assert case.status == "awaiting_second_approval" and case.high_risk and reason in case.risk_reasons
    assert case.user.must_enroll_2sv is False
    page = auth.client_for(second).get(f"/review/case/{case.reference}").get_data(as_text=True)
    assert "High risk: two approvals needed" in page
    with auth.app.test_request_context(headers={"Accept-Language": "en"}):
        assert risk.reason_label(reason) in page
