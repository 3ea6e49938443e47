"""The review's audit trail is provable: tampering with one row is caught and named."""

from sqlalchemy import select, update

from recovery_app.extensions import db
from recovery_app.models import AuditEvent
from recovery_app.review import casefile, claims
from tests.factories import ALL_CHECKS, png_bytes


def _reviewed_case(make, review, auth):
    reviewer = make.user("reviewer")
    case = review.case()
    case.seed = case.user._test_totp_seed
    client = auth.client_for(reviewer)
    client.post(f"/review/case/{case.reference}/claim")
    client.get(f"/review/case/{case.reference}/documents/{case.documents[0].id}")
    client.post(f"/review/case/{case.reference}/approve", data={"checklist": ALL_CHECKS})
    return case


def test_tampering_with_one_audit_row_makes_verify_fail_naming_it(make, review, auth, runner):
    case = _reviewed_case(make, review, auth)
    intact = runner.invoke(args=["audit", "verify"])
    assert intact.exit_code == 0, intact.output
    approved = db.session.execute(select(AuditEvent).where(AuditEvent.action == "case.approved")).scalar_one()
    # Someone rewrites history: the approval now names a different reviewer.
    db.session.execute(update(AuditEvent).where(AuditEvent.seq == approved.seq).values(actor_label="someone@else"))
    db.session.expire_all()
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert f"BROKEN at entry {approved.seq}" in broken.output
    assert case.reference == approved.subject_id


def test_audit_entries_hold_no_document_content_or_secrets(make, review, auth):
    case = _reviewed_case(make, review, auth)
    events = db.session.execute(select(AuditEvent).where(AuditEvent.subject_id == case.reference)).scalars().all()
    assert {"case.submitted", "case.claimed", "document.viewed", "case.approved"} <= {e.action for e in events}
    text = repr([(e.details, e.browser, e.actor_label) for e in events])
    assert png_bytes()[:16].hex() not in text and "PNG" not in text
    assert case.seed not in text


def test_trail_lists_the_cases_own_events_only(make, review, now):
    reviewer = make.user("reviewer")
    first, second = review.case(), review.case()
    claims.claim(first.reference, reviewer, now=now)
    file = casefile.open_case_file(second.reference, reviewer, now=now)
    assert {event.subject_id for event in file.trail} == {second.reference}
