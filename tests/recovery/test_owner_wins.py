"""The owner who still has a working second step wins over whoever opened a
recovery case with their password: signing in with 2SV cancels the case, a
signed-in owner cancels it at any open status ("this wasn't me"), every address
of the account hears of withdrawals and cancellations, and a decision racing
a cancellation ends with exactly one of them (ASVS 6.4.2, 6.4.3)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from recovery_app import lifecycle
from recovery_app.database import unit
from recovery_app.extensions import db
from recovery_app.models import AuditEvent, Case, SecurityEvent, TwoFactorMethod, User
from recovery_app.models.base import utcnow
from recovery_app.recovery import services as recovery
from recovery_app.review import claims, decisions
from recovery_app.review.services import ReviewError
from tests.factories import ALL_CHECKS, Factory, ReviewFactory
from tests.helpers import outbox_messages

from .conftest import full_form, send


def _opened_by_intruder(app, make, auth, documents, owner) -> Case:
    """A case opened in another browser that passed only the password step."""
    intruder = app.test_client()
    auth.fast_password_step(intruder, owner)
    assert send(intruder, "/recovery/", full_form(documents)).status_code == 302
    return db.session.execute(select(Case).where(Case.user_id == owner.id)).scalar_one()


def _audit(action: str, case: Case) -> list[AuditEvent]:
    return (
        db.session.execute(
            select(AuditEvent).where(AuditEvent.action == action, AuditEvent.subject_id == case.reference)
        )
        .scalars()
        .all()
    )


def test_signing_in_with_2sv_cancels_an_open_case_and_tells_every_address(app, make, auth, documents, db):
    account = make.account()
    owner = make.user(account=account, locale="en")
    co_owner = make.user(account=account, locale="ja")
    case = _opened_by_intruder(app, make, auth, documents, owner)
    requested = outbox_messages("email", to=owner.email)[-1]
    assert "sign in as usual with your 2-step verification: that cancels the request at once" in requested.body

    owner_browser = app.test_client()
    owner_browser.get("/language/en")
    auth.sign_in(owner_browser, owner)
    db.session.expire_all()
    assert case.status == "cancelled" and case.closed_at is not None and case.claimed_by_id is None
    [event] = _audit("case.cancelled", case)
    assert event.details["reason"] == "owner_signed_in" and event.details["via"] == "totp"
    assert (
        db.session.execute(
            select(func.count())
            .select_from(SecurityEvent)
            .where(SecurityEvent.user_id == owner.id, SecurityEvent.kind == "recovery_cancelled")
        ).scalar_one()
        == 1
    )
    [to_owner] = [m for m in outbox_messages("email", to=owner.email) if "cancelled" in m.subject]
    assert case.reference in to_owner.body and "You signed in with your 2-step verification" in to_owner.body
    [to_co_owner] = [m for m in outbox_messages("email", to=co_owner.email) if "取り消" in m.subject]
    assert case.reference in to_co_owner.body

    home = owner_browser.get("/").get_data(as_text=True)
    assert "A recovery case for your user was cancelled" in home and case.reference in home
    assert "/account/password" in home and "/account/sessions" in home


def test_the_owner_wins_while_a_reviewer_holds_the_case(app, make, auth, documents, db):
    owner = make.user()
    reviewer = make.user("reviewer", locale="en")
    case = _opened_by_intruder(app, make, auth, documents, owner)
    claims.claim(case.reference, reviewer, now=utcnow())
    db.session.commit()
    auth.sign_in(app.test_client(), owner)
    db.session.expire_all()
    assert case.status == "cancelled"
    with pytest.raises(ReviewError):
        decisions.approve(case.reference, reviewer, ALL_CHECKS, now=utcnow())
    db.session.rollback()
    assert (
        db.session.execute(
            select(func.count()).select_from(TwoFactorMethod).where(TwoFactorMethod.user_id == owner.id)
        ).scalar_one()
        == 1
    )  # nothing was reset
    text = auth.client_for(reviewer).get(f"/review/case/{case.reference}").get_data(as_text=True)
    assert "The account&#39;s owner signed in with 2-step verification, so no recovery was needed." in text


def test_a_trusted_device_is_the_owner_too(app, make, auth, documents, db):
    owner = make.user()
    browser = app.test_client()
    auth.sign_in(browser, owner, remember=True)  # this browser is now trusted
    browser.post("/sign-out")
    case = _opened_by_intruder(app, make, auth, documents, owner)
    auth.password(browser, owner)  # the trusted device skips the code
    db.session.expire_all()
    assert case.status == "cancelled"
    assert _audit("case.cancelled", case)[0].details["via"] == "trusted_device"


def test_a_signed_in_owner_says_this_was_not_them_at_any_open_status(app, make, auth, documents, db):
    owner = make.user(locale="en")
    owner_browser = auth.client_for(owner)
    case = _opened_by_intruder(app, make, auth, documents, owner)
    lifecycle.transition(case, "in_review", now=utcnow(), actor=make.user("reviewer"), action="claimed")
    db.session.commit()
    home = owner_browser.get("/").get_data(as_text=True)
    assert "A recovery case is open for your user" in home and case.reference in home
    assert "This wasn't me: cancel this case" in home
    assert "Cancel this case" in owner_browser.get("/recovery/case/withdraw").get_data(as_text=True)
    response = owner_browser.post("/recovery/case/withdraw", data={"submit": "y"})
    assert response.status_code == 302 and response.location.endswith("/")
    db.session.expire_all()
    assert case.status == "cancelled"
    assert _audit("case.cancelled", case)[0].details["reason"] == "owner_cancelled"
    assert "Change your password" in owner_browser.get("/").get_data(as_text=True)


def test_withdrawal_with_only_the_password_tells_every_address(app, make, auth, documents, db):
    account = make.account()
    owner = make.user(account=account, locale="en")
    colleague = make.user("seller_user", account=account, locale="en")
    intruder = app.test_client()
    auth.fast_password_step(intruder, owner)
    send(intruder, "/recovery/", full_form(documents))
    intruder.post("/recovery/case/withdraw", data={"submit": "y"})
    case = db.session.execute(select(Case)).scalar_one()
    assert case.status == "withdrawn"
    for person in (owner, colleague):
        [notice] = [m for m in outbox_messages("email", to=person.email) if "withdrawn" in m.subject]
        assert case.reference in notice.body
    assert (
        "someone who knows your password did"
        in [m for m in outbox_messages("email", to=owner.email) if "withdrawn" in m.subject][0].body
    )


def test_a_refused_withdrawal_is_audited_and_changes_nothing(app, make, auth, documents, db):
    owner = make.user()
    intruder = app.test_client()
    auth.fast_password_step(intruder, owner)
    send(intruder, "/recovery/", full_form(documents))
    case = db.session.execute(select(Case)).scalar_one()
    lifecycle.transition(case, "in_review", now=utcnow(), actor=make.user("reviewer"), action="claimed")
    db.session.commit()
    mails = len(outbox_messages("email"))
    intruder.post("/recovery/case/withdraw", data={"submit": "y"})
    db.session.expire_all()
    assert case.status == "in_review"
    [refused] = _audit("case.withdrawal_refused", case)
    assert refused.details == {"status": "in_review"}
    assert len(outbox_messages("email")) == mails


def test_first_enrollment_does_not_count_as_the_owner(app, make, db, now):
    """Whoever knows the password of a user who never set 2SV up can enroll:
    that proves nothing, so an open case stays."""
    from recovery_app.auth import services as auth_services

    user = make.user(enrolled=False)
    case = make.case(user)
    with app.test_request_context():
        auth_services.complete_sign_in(user, now, address="192.0.2.1", browser="x", via="enrollment")
    assert case.status == "submitted"


def _approve_and_cancel_at_once(live_app, reference: str, reviewer_id: int, owner_id: int) -> dict:
    """The reviewer's approval and the owner's cancellation, each in its own
    thread and unit of work, released together."""
    start = threading.Barrier(2)
    results: dict[str, object] = {}

    def approve():
        start.wait()  # before either begins: on SQLite the first writer makes the other wait
        with live_app.test_request_context(), unit():
            actor = db.session.get(User, reviewer_id)
            try:
                decisions.approve(reference, actor, ALL_CHECKS, now=utcnow())
                results["approve"] = "done"
            except ReviewError:
                results["approve"] = "refused"

    def cancel():
        start.wait()
        with live_app.test_request_context(), unit():
            owner = db.session.get(User, owner_id)
            results["cancel"] = recovery.cancel_for_owner(
                owner, reason="owner_signed_in", now=utcnow(), address="192.0.2.1", browser="x", via="totp"
            )

    threads = [threading.Thread(target=approve), threading.Thread(target=cancel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_a_decision_and_a_cancellation_at_once_end_with_exactly_one(live_app):
    """The reviewer approves while the owner signs in: either the approval
    commits (2SV reset, nothing to cancel) or the cancellation does (the
    approval is refused, nothing reset), never both and never neither."""
    outcomes = []
    make = Factory(live_app)
    for _round in range(4):
        with live_app.app_context():
            review = ReviewFactory(make, utcnow())
            reviewer = make.user("reviewer")
            case = review.case()
            claims.claim(case.reference, reviewer, now=utcnow())
            db.session.commit()
            reference, reviewer_id, owner_id = case.reference, reviewer.id, case.user_id
        results = _approve_and_cancel_at_once(live_app, reference, reviewer_id, owner_id)
        with live_app.app_context():
            final = db.session.execute(select(Case).where(Case.reference == reference)).scalar_one()
            methods = db.session.execute(
                select(func.count()).select_from(TwoFactorMethod).where(TwoFactorMethod.user_id == owner_id)
            ).scalar_one()
            if final.status == "approved":
                assert results == {"approve": "done", "cancel": None} and methods == 0
            else:
                assert final.status == "cancelled", final.status
                assert results["approve"] == "refused" and results["cancel"] is not None and methods == 1
            outcomes.append(final.status)
    assert len(outcomes) == 4
