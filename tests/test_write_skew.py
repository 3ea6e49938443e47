"""Two units that each check a rule against what the other is about to
change, at the same moment (write skew), run by ``units_at_once``: on
PostgreSQL both read before either writes; SQLite runs one writer at a time.
Either way, the rule holds."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import func, select

from recovery_app.account import services as account_services
from recovery_app.auth import passkeys, twofactor
from recovery_app.auth import services as auth_services
from recovery_app.domain import DomainError
from recovery_app.extensions import db
from recovery_app.models import (
    ActionToken,
    AuditEvent,
    Case,
    Decision,
    ReportRollupMark,
    SecurityEvent,
    SentCode,
    TwoFactorMethod,
    User,
    UserSession,
)
from recovery_app.models.base import utcnow
from recovery_app.models.prechecks import DocumentMatch
from recovery_app.prechecks import services as prechecks
from recovery_app.recovery import services as recovery
from recovery_app.reports import rollups
from recovery_app.review import claims, decisions, risk
from recovery_app.staff import services as staff_services
from tests.account.test_invitations import NEW_PASSWORD
from tests.factories import ALL_CHECKS, Factory, ReviewFactory, jpeg_bytes
from tests.helpers import outbox_messages, units_at_once
from tests.passkey_device import SoftPasskey
from tests.reports.test_rollups import recomputed, stored


def _a_case_held_by_a_reviewer(make):
    """A seller's case, claimed by a reviewer; returns (seller, case, reviewer). Inside a request context."""
    review = ReviewFactory(make, utcnow())
    reviewer = make.user("reviewer")
    seller = review.seller(locale="en")
    case = review.case(seller)
    claims.claim(case.reference, reviewer, now=utcnow())
    return seller, case, reviewer


def _approval(reference, reviewer_id):
    """The reviewer's approval as a ``units_at_once`` step; it returns the case's status."""
    return (lambda: (db.session.get(User, reviewer_id),)), (
        lambda reviewer: decisions.approve(reference, reviewer, ALL_CHECKS, now=utcnow()).status
    )


def _the_owner_won(live_app, backend, reference, seller_id, approved, owner_won: bool):
    """An approval against the owner's own request at the same moment: the owner
    wins (the case cancelled, nothing reset), or, only where SQLite ran the
    approval first, the approval stands whole."""
    with live_app.app_context():
        case = db.session.execute(select(Case).where(Case.reference == reference)).scalar_one()
        seller = db.session.get(User, seller_id)
        if owner_won:
            assert isinstance(approved, decisions.ReviewError), approved
            assert case.status == "cancelled" and auth_services.has_second_factor(seller)
        else:
            assert backend == "sqlite", approved
            assert approved == "approved" and case.status == "approved" and seller.must_enroll_2sv
        db.session.remove()


def test_two_tabs_removing_the_last_two_methods_leave_one(live_app, backend):
    with live_app.app_context():
        make = Factory(live_app)
        user = make.user(locale="en")
        make.add_phone(user, primary=False)
        db.session.commit()
        user_id, method_ids = user.id, [m.id for m in twofactor.confirmed_methods(user)]
        db.session.remove()
    assert len(method_ids) == 2

    def read():  # each tab's page listed both methods
        user = db.session.get(User, user_id)
        twofactor.confirmed_methods(user)
        return (user,)

    def remover(method_id):
        return lambda user: auth_services.remove_method(user, method_id, utcnow(), address=None, browser=None)

    outcomes = units_at_once(live_app, backend, [(read, remover(method_ids[0])), (read, remover(method_ids[1]))])
    refused = [o for o in outcomes if isinstance(o, auth_services.AuthError)]
    assert len(refused) == 1 and "only way to get codes" in str(refused[0].message)
    assert [o for o in outcomes if o is not None and o not in refused] == []
    with live_app.app_context():
        left = db.session.execute(select(TwoFactorMethod).where(TwoFactorMethod.user_id == user_id)).scalars().all()
        assert len(left) == 1 and left[0].is_primary
        db.session.remove()


def test_two_managers_demoting_each_other_leave_one_manager(live_app, backend):
    with live_app.app_context():
        make = Factory(live_app)
        first, second = make.user("manager", locale="en"), make.user("manager", locale="en")
        db.session.commit()
        ids = (first.id, second.id)
        db.session.remove()

    def demoter(me, other):
        def read():  # the page let both in as managers
            return (db.session.get(User, me),)

        return read, lambda manager: staff_services.change_role(manager, other, "reviewer", now=utcnow())

    outcomes = units_at_once(live_app, backend, [demoter(*ids), demoter(*reversed(ids))])
    changed = [o for o in outcomes if isinstance(o, User)]
    refused = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(changed) == 1 and len(refused) == 1, outcomes
    assert "no longer one" in str(refused[0].message)
    with live_app.app_context():
        roles = db.session.execute(select(User.role).where(User.id.in_(ids))).scalars().all()
        assert sorted(roles) == ["manager", "reviewer"]
        db.session.remove()


@pytest.mark.parametrize("first", ["method", "passkey"])
def test_removing_a_passkey_and_a_method_at_once_leaves_one(live_app, backend, first):
    """The two kinds of second step count together: a passkey and the only
    method, removed from two tabs at once, cannot both go."""
    with live_app.app_context():
        make = Factory(live_app)
        user = make.user(locale="en")
        make.add_passkey(user)
        db.session.commit()
        user_id = user.id
        (passkey_id,) = [p.id for p in passkeys.passkeys_of(user)]
        (method_id,) = [m.id for m in twofactor.confirmed_methods(user)]
        db.session.remove()

    def read():
        return (db.session.get(User, user_id),)

    remove_method = (read, lambda u: auth_services.remove_method(u, method_id, utcnow(), address=None, browser=None))
    remove_passkey = (
        read,
        lambda u: auth_services.remove_passkey(u, passkey_id, utcnow(), address=None, browser=None),
    )
    pairs = [remove_method, remove_passkey] if first == "method" else [remove_passkey, remove_method]
    outcomes = units_at_once(live_app, backend, pairs)
    assert sum(isinstance(o, auth_services.AuthError) for o in outcomes) == 1, outcomes
    with live_app.app_context():
        user = db.session.get(User, user_id)
        assert auth_services.has_second_factor(user)
        db.session.remove()


def test_two_tabs_making_new_recovery_codes_at_once_leave_one_set(live_app, backend):
    with live_app.app_context():
        user = Factory(live_app).user(locale="en")
        twofactor.generate_recovery_codes(user, utcnow())
        db.session.commit()
        user_id = user.id
        db.session.remove()

    def read():
        return (db.session.get(User, user_id),)

    def new_codes(user):
        return auth_services.new_recovery_codes(user, utcnow(), address=None, browser=None)

    first, second = units_at_once(live_app, backend, [(read, new_codes), (read, new_codes)])
    assert isinstance(first, list) and isinstance(second, list), (first, second)
    with live_app.app_context():
        user = db.session.get(User, user_id)
        assert twofactor.remaining_recovery_codes(user) == 10
        # The set shown last is the one that works; the other tab's codes were replaced.
        works = [
            any(twofactor.use_recovery_code(user, code, utcnow()) for code in codes[:1]) for codes in (first, second)
        ]
        assert sorted(works) == [False, True]
        db.session.rollback()
        db.session.remove()


def test_two_invitations_to_one_address_accepted_at_once_make_one_login(live_app, backend):
    with live_app.test_request_context():  # the invitation e-mail carries a full link
        make = Factory(live_app)
        for owner in (make.user("seller_owner", locale="en"), make.user("seller_owner", locale="en")):
            account_services.invite(owner, "both@example.test", "en", utcnow(), address=None, browser=None)
        db.session.commit()
        tokens = [
            re.search(r"/account/invitation/([A-Za-z0-9_-]+)", message.body).group(1)
            for message in outbox_messages("email", "both@example.test")
        ]
        db.session.remove()
    assert len(tokens) == 2

    def accepting(token):
        def read():  # the page found the invitation good
            account_services.invitation_for(token, utcnow())
            return ()

        def accept():
            return account_services.accept_invitation(
                token, "Hanako", NEW_PASSWORD, NEW_PASSWORD, utcnow(), address=None, browser=None
            )

        return read, accept

    outcomes = units_at_once(live_app, backend, [accepting(token) for token in tokens])
    made = [o for o in outcomes if isinstance(o, User)]
    # PostgreSQL: the unique index refuses the second, which is told so; SQLite:
    # the second unit, after the first, finds the link no longer stands.
    refused = [o for o in outcomes if isinstance(o, account_services.AccountError | account_services.LinkInvalid)]
    assert len(made) == 1 and len(refused) == 1, outcomes
    with live_app.app_context():
        assert db.session.execute(select(func.count()).where(User.email == "both@example.test")).scalar_one() == 1
        used = db.session.execute(select(ActionToken.used_at).where(ActionToken.email == "both@example.test")).all()
        assert sorted(row.used_at is None for row in used) == [False, True]  # the refused link was not used
        db.session.remove()


def test_two_logins_moving_to_one_address_at_once_one_is_told_to_choose_another(live_app, backend):
    with live_app.app_context():
        make = Factory(live_app)
        ids = [make.user(locale="en").id, make.user(locale="en").id]
        db.session.commit()
        db.session.remove()

    def moving(user_id):
        def read():
            return (db.session.get(User, user_id),)

        def move(user):
            return account_services.change_email(user, "same@example.test", utcnow(), address=None, browser=None)

        return read, move

    outcomes = units_at_once(live_app, backend, [moving(user_id) for user_id in ids])
    refused = [o for o in outcomes if isinstance(o, account_services.AccountError)]
    assert len(refused) == 1 and refused[0].field == "email", outcomes
    assert "Another login already uses this address" in str(refused[0].message)
    assert [o for o in outcomes if o not in refused] == [None]
    with live_app.app_context():
        emails = db.session.execute(select(User.email).where(User.id.in_(ids))).scalars().all()
        assert sorted(emails).count("same@example.test") == 1
        db.session.remove()


def test_an_approval_and_a_new_passkey_at_once_leave_no_second_step(live_app, backend):
    """A reviewer approves a recovery (every second step goes) while the seller
    adds a passkey: either the passkey is added first and removed with the
    rest, or it comes after and is refused. It never survives the reset."""
    with live_app.test_request_context():
        seller, case, reviewer = _a_case_held_by_a_reviewer(Factory(live_app))
        challenge_id, options = auth_services.passkey_options(seller, "register", utcnow())
        db.session.commit()
        credential = SoftPasskey().create(json.loads(options))
        reference, reviewer_id, seller_id = case.reference, reviewer.id, seller.id
        db.session.remove()

    def new_passkey():
        def read():
            return (db.session.get(User, seller_id),)

        return read, lambda seller: auth_services.add_passkey(
            seller, challenge_id, credential, "Phone", utcnow(), address=None, browser=None
        )

    approved, added = units_at_once(live_app, backend, [_approval(reference, reviewer_id), new_passkey()])
    assert not isinstance(approved, Exception), approved
    assert not isinstance(added, Exception) or isinstance(added, auth_services.AuthError), added
    with live_app.app_context():
        seller = db.session.get(User, seller_id)
        assert seller.must_enroll_2sv and not auth_services.has_second_factor(seller)
        assert passkeys.passkeys_of(seller) == []
        db.session.remove()


def test_a_first_approval_and_its_own_confirmation_at_once_still_need_a_second_person(live_app, backend, monkeypatch):
    """A manager approves a high-risk case in one tab and confirms it in another
    at the same moment. The confirmation must not read "in review" before the
    first approval commits and then take the case once it has: the case waits
    for someone else, and 2-step verification is not reset on one person's word."""
    with live_app.test_request_context():
        make = Factory(live_app)
        review = ReviewFactory(make, utcnow())
        manager = make.user("manager")
        seller = review.seller(locale="en")
        case = review.case(seller)
        case.high_risk, case.risk_reasons, case.risk_assessed_at = True, ["password_changed"], utcnow()
        claims.claim(case.reference, manager, now=utcnow())
        db.session.commit()
        reference, manager_id, seller_id = case.reference, manager.id, seller.id
        db.session.remove()

    # The confirmation's take of the case comes a moment after its first look
    # at it (a pause of the thread, say), long enough for the first approval
    # to commit in between.
    confirming = threading.local()
    take = decisions._take_for_decision

    def take_a_moment_later(*args):
        if getattr(confirming, "now", False):
            time.sleep(0.4)
        return take(*args)

    monkeypatch.setattr(decisions, "_take_for_decision", take_a_moment_later)

    def first_approval(manager):
        case = decisions.approve(reference, manager, ALL_CHECKS, now=utcnow())
        time.sleep(0.1)  # the rest of the request, before the commit at its edge
        return case.status

    def confirmation(manager):
        confirming.now = True
        return decisions.confirm_approval(reference, manager, now=utcnow()).status

    def as_manager(act):
        return (lambda: (db.session.get(User, manager_id),)), act

    first, confirmed = units_at_once(live_app, backend, [as_manager(first_approval), as_manager(confirmation)])
    assert first == "awaiting_second_approval", first
    assert isinstance(confirmed, decisions.ReviewError), confirmed
    with live_app.app_context():
        case = db.session.execute(select(Case).where(Case.reference == reference)).scalar_one()
        assert case.status == "awaiting_second_approval"
        actions = db.session.execute(select(Decision.action).where(Decision.case_id == case.id)).scalars().all()
        assert actions == ["first_approval"]
        assert auth_services.has_second_factor(db.session.get(User, seller_id))
        db.session.remove()


def test_an_approval_and_the_sellers_own_sign_in_at_once_both_finish(live_app, backend):
    """The seller signs in with their authenticator while a reviewer approves
    their recovery. The sign-in holds the seller's row (the code counter) and
    then cancels the open case; the approval must take the two in the same
    order, or PostgreSQL finds them waiting on each other and aborts one (a
    500). The owner who signed in wins: the case is cancelled, nothing reset."""
    with live_app.test_request_context():
        seller, case, reviewer = _a_case_held_by_a_reviewer(Factory(live_app))
        seed = seller._test_totp_seed
        (method,) = twofactor.confirmed_methods(seller)
        db.session.commit()
        reference, reviewer_id, seller_id, method_id = case.reference, reviewer.id, seller.id, method.id
        db.session.remove()

    def sign_in():
        def read():  # the code is checked: its try is counted on the seller's row
            seller, now = db.session.get(User, seller_id), utcnow()
            challenge = auth_services.Challenge(id="c1", method_id=method_id)
            via = auth_services.verify_code(seller, challenge, pyotp.TOTP(seed).now(), now, address=None, browser=None)
            return seller, now, via

        def finish(seller, now, via):
            time.sleep(0.3)  # the approval has started meanwhile
            with live_app.test_request_context():  # the new-device notice links to the site
                auth_services.complete_sign_in(seller, now, address="192.0.2.9", browser="Firefox", via=via)
            return "signed in"

        return read, finish

    approved, signed_in = units_at_once(live_app, backend, [_approval(reference, reviewer_id), sign_in()])
    if signed_in != "signed in":  # SQLite may run the approval first: the code's method is gone with the rest
        assert isinstance(signed_in, auth_services.AuthError), signed_in
    _the_owner_won(live_app, backend, reference, seller_id, approved, owner_won=signed_in == "signed in")


def test_codes_asked_for_at_once_keep_the_per_user_limits(live_app, backend):
    """Eight requests for a text-message code at the same moment: one per
    challenge per resend interval, and never more than the hourly cap for the
    user, however the requests line up (the victim's phone has no other guard
    when the requests come from many addresses)."""
    with live_app.test_request_context():
        make = Factory(live_app)
        seller = make.user("seller_owner", locale="en")
        make.add_phone(seller, "+819012345678")
        db.session.commit()
        seller_id = seller.id
        db.session.remove()

    def ask(challenge_id):
        def send(seller):
            with live_app.test_request_context():
                twofactor.send_code(
                    seller,
                    phone_e164="+819012345678",
                    channel="sms",
                    purpose="sign_in",
                    challenge_id=challenge_id,
                    now=utcnow(),
                )
            return "sent"

        return (lambda: (db.session.get(User, seller_id),)), send

    one_challenge = units_at_once(live_app, backend, [ask("same") for _ in range(8)])
    assert one_challenge.count("sent") == 1, one_challenge
    assert all(isinstance(o, twofactor.CodeError) for o in one_challenge if o != "sent"), one_challenge

    many_challenges = units_at_once(live_app, backend, [ask(f"c{n}") for n in range(twofactor.CODES_PER_HOUR + 3)])
    assert many_challenges.count("sent") == twofactor.CODES_PER_HOUR - 1, many_challenges
    with live_app.app_context():
        sent = db.session.execute(select(func.count(SentCode.id)).where(SentCode.user_id == seller_id)).scalar_one()
        assert sent == twofactor.CODES_PER_HOUR
        db.session.remove()


def _two_cases_with_one_photo(live_app):
    """Two sellers' cases whose front is the same photograph, neither checked yet."""
    photo = jpeg_bytes()
    with live_app.test_request_context():
        review = ReviewFactory(Factory(live_app), utcnow())
        cases = []
        for _ in range(2):
            case = review.case(review.seller(locale="en"), document_type="drivers_licence", documents=())
            review.document(case, "front", "image/jpeg", content=photo)
            review.document(case, "back", "image/png")
            cases.append(case.id)
        db.session.commit()
        db.session.remove()
    return cases


def test_two_copies_of_one_document_checked_at_once_find_each_other(live_app, backend):
    """Two pre-check workers record the same photograph on two sellers' cases
    at the same moment. Each inserts its hash and looks for the other's: one of
    them must see the other's, so the reuse is found and both cases need four
    eyes, as when the two are checked one after the other."""
    cases = _two_cases_with_one_photo(live_app)

    def worker(case_id):
        def read():
            case = db.session.get(Case, case_id)
            return case, prechecks.examine(case, 1)

        return read, lambda case, examined: prechecks.record(case, examined, utcnow())

    verdicts = units_at_once(live_app, backend, [worker(case_id) for case_id in cases])
    assert not any(isinstance(verdict, Exception) for verdict in verdicts), verdicts
    with live_app.app_context():
        assert db.session.execute(select(func.count()).select_from(DocumentMatch)).scalar_one() > 0
        for case_id in cases:
            case = db.session.get(Case, case_id)
            assert case.high_risk and "document_reused" in case.risk_reasons, case.risk_reasons
        db.session.remove()


def test_a_reuse_found_while_a_reviewer_first_looks_keeps_both_reasons(live_app, backend):
    """The pre-checks mark a case "document reused" while a reviewer's first
    look assesses it (opened from a browser and an address the seller never
    signed in from). Each adds to the case's list of reasons: both stay."""
    older, newer = _two_cases_with_one_photo(live_app)
    with live_app.app_context():
        case = db.session.get(Case, older)
        case.opened_address, case.opened_browser, case.risk_assessed_at = "203.0.113.7", "Opera/12", None
        db.session.commit()
        db.session.remove()

    def reviewer():
        def read():
            case = db.session.get(Case, older)
            return case, list(case.risk_reasons or [])

        return read, lambda case, _seen: risk.ensure_assessed(case, utcnow())

    def pre_checks():
        def read():
            case, counterpart = db.session.get(Case, older), db.session.get(Case, newer)
            return case, counterpart, list(case.risk_reasons or [])

        return read, lambda case, counterpart, _seen: prechecks._flag_reuse(
            case, case.documents[0].id, counterpart, counterpart.documents[0].id, 3, utcnow()
        )

    outcomes = units_at_once(live_app, backend, [reviewer(), pre_checks()])
    assert not any(isinstance(outcome, Exception) for outcome in outcomes), outcomes
    with live_app.app_context():
        case = db.session.get(Case, older)
        assert set(case.risk_reasons) == {risk.UNKNOWN_PLACE, "document_reused"}, case.risk_reasons
        assert case.high_risk and case.risk_assessed_at is not None
        db.session.remove()


def test_an_approval_and_the_owner_saying_it_was_not_them_at_once_both_finish(live_app, backend):
    """A signed-in owner, back after a while, says "this wasn't me" while a
    reviewer approves the case. The owner's request has written its session's
    last-seen time (holding that row) when it cancels the case; the approval,
    which ends every session of the seller, must take the sessions before the
    case, or the two wait on each other. The owner wins: cancelled, nothing reset."""
    with live_app.test_request_context():
        seller, case, reviewer = _a_case_held_by_a_reviewer(Factory(live_app))
        session_row = UserSession(
            user_id=seller.id, token_hash="0" * 64, created_at=utcnow(), last_seen_at=utcnow(), browser="Firefox"
        )
        db.session.add(session_row)
        db.session.commit()
        reference, reviewer_id, seller_id, session_id = case.reference, reviewer.id, seller.id, session_row.id
        db.session.remove()

    def not_me():
        def read():  # the request's first touch of its session, as load_user makes it
            db.session.get(UserSession, session_id).last_seen_at = utcnow()
            db.session.flush()
            return (db.session.get(User, seller_id),)

        def cancel(owner):
            time.sleep(0.3)  # the approval has started meanwhile
            with live_app.test_request_context():
                case = recovery.cancel_for_owner(
                    owner, reason="owner_cancelled", now=utcnow(), address=None, browser=None
                )
            return case.status

        return read, cancel

    approved, cancelled = units_at_once(live_app, backend, [_approval(reference, reviewer_id), not_me()])
    # SQLite may run the approval first: then nothing is left to cancel.
    _the_owner_won(live_app, backend, reference, seller_id, approved, owner_won=cancelled == "cancelled")


def test_a_user_removed_from_two_tabs_at_once_is_removed_once(live_app, backend):
    """An owner double-clicks "Remove": both requests found the user active.
    The second must find them removed and write nothing: one security event,
    one audit entry, one bump of the session epoch."""
    with live_app.app_context():
        make = Factory(live_app)
        owner = make.user("seller_owner", locale="en")
        member = make.user("seller_user", account=owner.account)
        db.session.commit()
        owner_id, member_id, epoch = owner.id, member.id, member.session_epoch
        db.session.remove()

    def removal():
        def read():  # the view loads whom it removes before it calls the service
            owner = db.session.get(User, owner_id)
            account_services.account_user(owner, member_id)
            return (owner,)

        return read, lambda owner: account_services.remove_user(owner, member_id, utcnow(), address=None, browser=None)

    outcomes = units_at_once(live_app, backend, [removal(), removal()])
    assert all(isinstance(o, User) for o in outcomes), outcomes
    with live_app.app_context():
        member = db.session.get(User, member_id)
        events = select(func.count()).where(SecurityEvent.kind == "user_removed", SecurityEvent.user_id == member_id)
        audited = select(func.count()).where(AuditEvent.action == "account.user_removed")
        written = db.session.execute(events).scalar_one(), db.session.execute(audited).scalar_one()
        assert written == (1, 1) and member.session_epoch == epoch + 1, (written, member.session_epoch)
        assert member.disabled_at is not None
        db.session.remove()


@pytest.mark.parametrize("first", [rollups.roll_up, rollups.rebuild], ids=["job", "rebuild"])
def test_the_first_rollups_made_twice_at_once_count_each_case_once(live_app, backend, first):
    """The scheduler's job and a second job (or ``flask reports rebuild``) run
    at once while no zone has a mark yet: both find none and start from the
    first case. One mark per zone results, each case is counted once, and
    neither unit fails."""
    with live_app.app_context():
        make = Factory(live_app)
        for hours in (30, 50, 70):
            make.case(submitted_at=utcnow() - timedelta(hours=hours))
        db.session.commit()
        db.session.remove()

    def read():  # on PostgreSQL neither finds a mark
        rollups.marks()
        return ()

    outcomes = units_at_once(
        live_app, backend, [(read, lambda: first(utcnow())), (read, lambda: rollups.roll_up(utcnow()))]
    )
    assert not any(isinstance(o, Exception) for o in outcomes), outcomes
    with live_app.app_context():
        zones = db.session.execute(select(ReportRollupMark.zone).order_by(ReportRollupMark.zone)).scalars().all()
        assert zones == sorted(rollups.zones())
        for zone in zones:
            rows = stored(zone)
            assert rows == recomputed(zone)
            assert sum(n for (_, measure, _, _), n in rows.items() if measure == "opened") == 3
        db.session.remove()


@pytest.mark.parametrize("job_first", [True, False], ids=["job_first", "rebuild_first"])
def test_a_rebuild_beside_the_job_counts_each_case_once(live_app, backend, job_first):
    """``flask reports rebuild`` while the job adds a new day's figures. A
    rebuild after the job must not delete the old rows, miss the job's new ones
    and count them again; a job after the rebuild must work from the rebuild's
    marks, not from those it read before."""
    with live_app.app_context():
        make = Factory(live_app)
        for hours in (70, 50):
            make.case(submitted_at=utcnow() - timedelta(hours=hours))
        rollups.roll_up(utcnow() - timedelta(hours=1))
        make.case(submitted_at=utcnow() - timedelta(minutes=30))  # after the mark: the job adds its day
        db.session.commit()
        db.session.remove()

    def read():  # the marks each unit read stay loaded
        return (rollups.marks(),)

    def step(work, first: bool):
        def act(_marks_read):
            if not first:
                time.sleep(0.1)  # the other unit has begun
            result = work(utcnow())
            if first:
                time.sleep(0.2)  # the rest of its unit, before the commit
            return result

        return read, act

    outcomes = units_at_once(
        live_app, backend, [step(rollups.roll_up, job_first), step(rollups.rebuild, not job_first)]
    )
    assert not any(isinstance(o, Exception) for o in outcomes), outcomes
    with live_app.app_context():
        for zone in rollups.zones():
            rows = stored(zone)
            assert sum(n for (_, measure, _, _), n in rows.items() if measure == "opened") == 3, rows
            assert rows == recomputed(zone)
        db.session.remove()


def test_a_case_claimed_beside_a_rebuild_is_counted(live_app, backend):
    """A case's first claim is counted on the day it was sent, long rolled up.
    When it happens while ``flask reports rebuild`` runs, the rebuild cannot
    see it (not yet committed) and the claim's hook waits on the marks the
    rebuild holds: once the rebuild commits, the hook must find the marks as
    the rebuild left them and add its share, not find none and lose it."""
    with live_app.app_context():
        make = Factory(live_app)
        waiting = make.case(submitted_at=utcnow() - timedelta(hours=50))
        make.case(submitted_at=utcnow() - timedelta(hours=70))
        reviewer = make.user("reviewer")
        rollups.roll_up(utcnow())
        db.session.commit()
        reference, reviewer_id = waiting.reference, reviewer.id
        db.session.remove()

    def rebuild():
        def act():
            result = rollups.rebuild(utcnow())
            time.sleep(0.3)  # the claim starts, and waits on the marks, before this commits
            return result

        return (lambda: ()), act

    def claim():
        def act(reviewer):
            time.sleep(0.1)  # after the rebuild has locked the marks
            return claims.claim(reference, reviewer, now=utcnow())

        return (lambda: (db.session.get(User, reviewer_id),)), act

    outcomes = units_at_once(live_app, backend, [rebuild(), claim()])
    assert not any(isinstance(o, Exception) for o in outcomes), outcomes
    with live_app.app_context():
        for zone in rollups.zones():
            rows = stored(zone)
            assert sum(n for (_, measure, _, _), n in rows.items() if measure == "first_claim") == 1, (zone, rows)
            assert rows == recomputed(zone)
        db.session.remove()


@pytest.mark.parametrize("link", ["reset", "staff_invitation", "account_invitation"])
def test_two_links_to_one_address_at_once_leave_one_live(live_app, backend, link):
    """A new reset link or invitation replaces every older one to the same
    place. Two at once (a double click, two managers) each retire what they
    can see: the second must see the first's, or both stay usable."""
    address = "twice@example.test"
    with live_app.app_context():
        make = Factory(live_app)
        people = [make.user("manager"), make.user("manager")] if link == "staff_invitation" else []
        owner = make.user("seller_owner", locale="en") if link == "account_invitation" else None
        if link == "reset":
            make.user(email=address)
        db.session.commit()
        ids = [person.id for person in people] or [owner.id if owner else None] * 2
        db.session.remove()

    def sending(person_id):
        def act():
            with live_app.test_request_context():  # the e-mail carries a full link
                now = utcnow()
                if link == "reset":
                    return account_services.request_password_reset(address, "en", now, address=None, browser=None)
                sender = db.session.get(User, person_id)
                if link == "staff_invitation":
                    return staff_services.invite(sender, address, "reviewer", "en", now, address=None, browser=None)
                return account_services.invite(sender, address, "en", now, address=None, browser=None)

        return (lambda: ()), act

    outcomes = units_at_once(live_app, backend, [sending(person_id) for person_id in ids])
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    with live_app.app_context():
        live = select(func.count()).where(ActionToken.email == address, ActionToken.used_at.is_(None))
        assert db.session.execute(live).scalar_one() == 1
        db.session.remove()


def test_a_user_unlocked_by_two_managers_at_once_is_unlocked_once(live_app, backend):
    """Both requests found the user locked; the second must find them unlocked and
    write nothing, or the audit says twice that a hard lock was lifted."""
    with live_app.app_context():
        make = Factory(live_app)
        managers = [make.user("manager"), make.user("manager")]
        user = make.user()
        user.hard_locked_at, user.consecutive_failures = utcnow(), 100
        db.session.commit()
        manager_ids, user_id = [m.id for m in managers], user.id
        db.session.remove()

    def unlocking(manager_id):
        def read():  # the view loads the manager and the user it unlocks
            db.session.get(User, user_id)
            return (db.session.get(User, manager_id),)

        return read, lambda manager: staff_services.unlock_for(manager, user_id, utcnow(), address=None, browser=None)

    outcomes = units_at_once(live_app, backend, [unlocking(manager_id) for manager_id in manager_ids])
    assert sorted(lifted for _, lifted in outcomes) == [False, True], outcomes
    with live_app.app_context():
        audited = select(func.count()).where(AuditEvent.action == "user.unlocked")
        events = select(func.count()).where(SecurityEvent.kind == "unlocked", SecurityEvent.user_id == user_id)
        assert (db.session.execute(audited).scalar_one(), db.session.execute(events).scalar_one()) == (1, 1)
        assert db.session.get(User, user_id).hard_locked_at is None
        db.session.remove()


def test_one_method_made_primary_from_two_tabs_at_once_is_told_once(live_app, backend):
    """Both tabs listed the phone as a second method: the first makes it the main
    way, the second finds it already is and writes and sends nothing."""
    with live_app.app_context():
        make = Factory(live_app)
        user = make.user(locale="en")
        phone = make.add_phone(user, primary=False)
        db.session.commit()
        user_id, phone_id = user.id, phone.id
        db.session.remove()

    def read():
        user = db.session.get(User, user_id)
        twofactor.confirmed_methods(user)
        return (user,)

    def make_primary(user):
        with live_app.test_request_context():  # the notice e-mail is written in the user's language
            return auth_services.make_primary(user, phone_id, utcnow(), address=None, browser=None)

    outcomes = units_at_once(live_app, backend, [(read, make_primary), (read, make_primary)])
    assert outcomes == [None, None], outcomes
    with live_app.app_context():
        changed = select(func.count()).where(SecurityEvent.kind == "method_primary_changed")
        assert db.session.execute(changed).scalar_one() == 1
        assert len(outbox_messages("email")) == 1
        primary = select(TwoFactorMethod.id).where(TwoFactorMethod.user_id == user_id, TwoFactorMethod.is_primary)
        assert db.session.execute(primary).scalars().all() == [phone_id]
        db.session.remove()


def test_a_case_withdrawn_from_two_tabs_at_once_is_withdrawn_once(live_app, backend):
    """Both requests found the case open. The second finds it withdrawn by the
    first (PostgreSQL: under the lock; SQLite: from the start, as it runs after)
    and records nothing: no second withdrawal, no refusal."""
    with live_app.test_request_context():
        make = Factory(live_app)
        seller = ReviewFactory(make, utcnow()).seller(locale="en")
        case = ReviewFactory(make, utcnow()).case(seller)
        db.session.commit()
        seller_id, reference = seller.id, case.reference
        db.session.remove()

    def read():  # the withdraw page showed the open case
        seller = db.session.get(User, seller_id)
        recovery.open_case(seller)
        return (seller,)

    def withdraw(seller):
        with live_app.test_request_context():  # the account is told by e-mail
            return recovery.withdraw(seller, now=utcnow(), address=None, browser=None).status

    outcomes = units_at_once(live_app, backend, [(read, withdraw), (read, withdraw)])
    assert outcomes[0] == "withdrawn" or outcomes[1] == "withdrawn", outcomes
    for outcome in outcomes:
        nothing_open = isinstance(outcome, recovery.RecoveryError) and "no open recovery case" in str(outcome.message)
        assert outcome == "withdrawn" or nothing_open, outcomes
    with live_app.app_context():
        actions = select(AuditEvent.action).where(AuditEvent.subject_id == reference)
        assert sorted(db.session.execute(actions).scalars()) == ["case.submitted", "case.withdrawn"]
        events = select(func.count()).where(SecurityEvent.kind == "recovery_withdrawn")
        assert db.session.execute(events).scalar_one() == 1
        db.session.remove()
