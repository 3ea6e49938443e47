"""The case view: the facts a decision needs, the trail, the place for pre-checks."""

from datetime import timedelta

from sqlalchemy import select

from recovery_app.extensions import db
from recovery_app.models import AuditEvent, SecurityEvent
from recovery_app.review import casefile


def _event(user, kind, at, address="198.51.100.9", browser="Mozilla/5.0 (Windows NT 10.0) Chrome/120.0"):
    db.session.add(SecurityEvent(user_id=user.id, kind=kind, at=at, address=address, browser=browser, details={}))


def test_case_view_shows_the_sellers_facts_and_never_secrets(make, review, auth, now):
    reviewer = make.user("reviewer", locale="en")
    account = make.account("Sakura Trading 株式会社")
    seller = review.seller(account=account, display_name="山田 花子", email="hanako@example.test")
    seller.last_sign_in_at = now - timedelta(days=3)
    seller.last_sign_in_address = "192.0.2.44"
    seller.last_sign_in_browser = "Mozilla/5.0 (iPhone) Safari/604.1"
    case = review.case(seller)
    page = auth.client_for(reviewer).get(f"/review/case/{case.reference}").get_data(as_text=True)
    for fact in (
        "Sakura Trading 株式会社",
        "山田 花子",
        "hanako@example.test",
        "192.0.2.44",
        "Safari / iPhone",
        "203.0.113.7",
        "Authenticator app",
        "Unused recovery codes: 1",
        "Trusted devices: 1",
    ):
        assert fact in page, fact
    assert seller._test_totp_seed not in page
    assert "argon2-hash-placeholder" not in page


def test_case_view_counts_the_sellers_passkeys(make, review, auth):
    reviewer = make.user("reviewer", locale="en")
    seller = review.seller()
    make.add_passkey(seller)
    case = review.case(seller)
    page = auth.client_for(reviewer).get(f"/review/case/{case.reference}").get_data(as_text=True)
    assert "Passkeys: 1" in page and "Authenticator app" in page


def test_security_events_of_30_days_with_failed_code_bursts_grouped(make, review, auth):
    from recovery_app.models.base import utcnow

    current = utcnow()
    reviewer = make.user("reviewer", locale="en")
    seller = review.seller()
    for minute in range(6):
        _event(seller, "code_failed", current - timedelta(hours=2, minutes=minute))
    _event(seller, "email_changed", current - timedelta(days=3))
    _event(seller, "signed_in", current - timedelta(days=40))  # too old
    case = review.case(seller, submitted_at=current)
    page = auth.client_for(reviewer).get(f"/review/case/{case.reference}").get_data(as_text=True)
    assert "Wrong 2SV code × 6" in page
    assert "E-mail address changed" in page
    assert "Signed in" not in page


def test_group_events_keeps_separate_bursts_apart(now):
    events = [SecurityEvent(kind="code_failed", at=now - timedelta(minutes=m)) for m in (0, 1, 2, 60, 61)]
    groups = casefile.group_events(events)
    assert [(g.kind, g.count) for g in groups] == [("code_failed", 3), ("code_failed", 2)]


def test_earlier_cases_and_their_outcomes_are_listed(make, review, auth, now):
    reviewer = make.user("reviewer", locale="en")
    seller = review.seller()
    earlier = make.case(seller, submitted_at=now - timedelta(days=60), status="rejected")
    earlier.reason_code = "expired"
    case = review.case(seller)
    page = auth.client_for(reviewer).get(f"/review/case/{case.reference}").get_data(as_text=True)
    assert earlier.reference in page and "Not approved: Document expired" in page


def test_case_view_is_audited_and_shows_the_trail(make, review, auth, now):
    reviewer = make.user("reviewer", locale="en")
    case = review.case()
    client = auth.client_for(reviewer)
    client.post(f"/review/case/{case.reference}/claim")
    page = client.get(f"/review/case/{case.reference}").get_data(as_text=True)
    actions = (
        db.session.execute(
            select(AuditEvent.action).where(AuditEvent.subject_id == case.reference).order_by(AuditEvent.seq)
        )
        .scalars()
        .all()
    )
    assert actions[:2] == ["case.submitted", "case.claimed"] and actions[-1] == "case.viewed"
    for action in ("case.submitted", "case.claimed", "case.viewed"):
        assert action in page


def test_case_view_shows_the_precheck_panel_beside_the_documents(app, make, review, auth):
    reviewer = make.user("reviewer")
    case = review.case()
    page = auth.client_for(reviewer).get(f"/review/case/{case.reference}").get_data(as_text=True)
    assert 'class="card precheck-panel"' in page
    assert page.index("precheck-panel") > page.index("<main")


def test_the_audit_trail_reads_in_words(make, review, auth):
    reviewer = make.user("reviewer", locale="en")
    case = review.case()
    client = auth.client_for(reviewer)
    client.post(f"/review/case/{case.reference}/claim")
    page = client.get(f"/review/case/{case.reference}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Case opened by the seller" in page and "Claimed" in page and "Case file opened" in page


def test_the_queue_labels_each_value_for_the_phone_layout(make, review, auth):
    reviewer = make.user("reviewer", locale="en")
    review.case()
    page = auth.client_for(reviewer).get("/review/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'class="review-table queue-cards"' in page
    for label in ("Document", "Submitted", "Time left", "Status", "Held by"):
        assert f'data-label="{label}"' in page
