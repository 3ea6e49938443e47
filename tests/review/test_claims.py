"""Claims are atomic: one holder per case, the loser is told who has it."""

import threading
from datetime import UTC, timedelta

import pytest
from sqlalchemy import select

from recovery_app import audit
from recovery_app.database import unit
from recovery_app.extensions import db
from recovery_app.models import AuditEvent, Case, User
from recovery_app.review import claims, decisions, services


def test_claim_puts_the_case_in_review_for_the_reviewer(make, auth, now):
    reviewer = make.user("reviewer")
    case = make.case(submitted_at=now)
    response = auth.client_for(reviewer).post(f"/review/case/{case.reference}/claim")
    assert response.status_code == 303
    db.session.refresh(case)
    assert (case.status, case.claimed_by_id) == ("in_review", reviewer.id)
    assert case.first_claimed_at is not None
    actions = db.session.execute(select(AuditEvent.action).where(AuditEvent.subject_id == case.reference)).scalars()
    assert "case.claimed" in list(actions)


def test_second_reviewer_is_told_who_holds_the_case(make, auth, now):
    first = make.user("reviewer", display_name="Aiko Reviewer")
    second = make.user("reviewer", locale="en")
    case = make.case(submitted_at=now)
    auth.client_for(first).post(f"/review/case/{case.reference}/claim")
    client = auth.client_for(second)
    response = client.post(f"/review/case/{case.reference}/claim", follow_redirects=True)
    assert f"Case {case.reference} is already held by Aiko Reviewer." in response.get_data(as_text=True)
    db.session.refresh(case)
    assert case.claimed_by_id == first.id


def test_claim_of_a_closed_case_changes_nothing(make, now, english):
    reviewer = make.user("reviewer", locale="en")
    case = make.case(submitted_at=now, status="withdrawn")
    with pytest.raises(services.ReviewError, match="closed"):
        claims.claim(case.reference, reviewer, now=now)
    assert case.status == "withdrawn" and case.claimed_by_id is None


def test_actions_on_a_case_in_another_state_are_refused_with_a_reason(make, review, now, english):
    reviewer = make.user("reviewer")
    case = review.case()
    claims.claim(case.reference, reviewer, now=now)
    decisions.request_documents(case.reference, reviewer, "Please send the back.", now=now)
    for action in (
        lambda: claims.claim(case.reference, reviewer, now=now),
        lambda: decisions.approve(case.reference, reviewer, [], now=now),
        lambda: decisions.confirm_approval(case.reference, reviewer, now=now),
        lambda: decisions.reject(case.reference, reviewer, "other", "text", now=now),
    ):
        with pytest.raises(services.ReviewError) as refused:
            action()
        assert "waiting for the seller's new documents" in str(refused.value.message)
    assert case.status == "needs_info"


def test_unknown_reference_is_not_found(make, auth):
    client = auth.client_for(make.user("reviewer"))
    assert client.get("/review/case/RC-NOPE-NOPE").status_code == 404
    assert client.post("/review/case/RC-NOPE-NOPE/claim").status_code == 404
    assert client.post("/review/case/RC-NOPE-NOPE/approve", data={"checklist": ["type_matches"]}).status_code == 404
    assert client.get("/review/case/" + "X" * 500).status_code == 404


def test_claim_next_takes_the_most_urgent_unclaimed_case(make, auth, now):
    reviewer = make.user("reviewer")
    other = make.user("reviewer")
    make.case(submitted_at=now - timedelta(hours=1))
    held = make.case(submitted_at=now - timedelta(hours=6))
    urgent = make.case(submitted_at=now - timedelta(hours=4))
    claims.claim(held.reference, other, now=now)
    response = auth.client_for(reviewer).post("/review/claim-next")
    assert response.status_code == 303 and response.headers["Location"].endswith(urgent.reference)
    db.session.refresh(urgent)
    assert urgent.claimed_by_id == reviewer.id


def test_claim_next_with_an_empty_queue_says_so(make, auth):
    client = auth.client_for(make.user("reviewer", locale="en"))
    response = client.post("/review/claim-next", follow_redirects=True)
    assert "No case is waiting to be claimed." in response.get_data(as_text=True)


def test_release_gives_the_case_back_to_the_queue(make, auth, now):
    reviewer = make.user("reviewer")
    case = make.case(submitted_at=now)
    client = auth.client_for(reviewer)
    client.post(f"/review/case/{case.reference}/claim")
    client.post(f"/review/case/{case.reference}/release")
    db.session.refresh(case)
    assert (case.status, case.claimed_by_id) == ("submitted", None)


def test_reviewer_cannot_release_a_case_someone_else_holds(make, now, english):
    holder, other = make.user("reviewer"), make.user("reviewer")
    case = make.case(submitted_at=now)
    claims.claim(case.reference, holder, now=now)
    with pytest.raises(services.ReviewError):
        claims.release(case.reference, other, now=now)
    assert case.claimed_by_id == holder.id


def test_manager_reassigns_a_case_and_reviewers_cannot(make, auth, now):
    manager, holder, target = make.user("manager"), make.user("reviewer"), make.user("reviewer")
    case = make.case(submitted_at=now)
    claims.claim(case.reference, holder, now=now)
    assert (
        auth.client_for(holder)
        .post(f"/review/case/{case.reference}/reassign", data={"reviewer": target.id})
        .status_code
        == 404
    )
    response = auth.client_for(manager).post(f"/review/case/{case.reference}/reassign", data={"reviewer": target.id})
    assert response.status_code == 303
    db.session.refresh(case)
    assert case.claimed_by_id == target.id


def test_reassigning_twice_to_the_same_reviewer_moves_and_records_once(make, auth, now):
    # A double click: the second request finds the case already with the reviewer it names.
    manager, holder, target = make.user("manager"), make.user("reviewer"), make.user("reviewer")
    case = make.case(submitted_at=now)
    claims.claim(case.reference, holder, now=now)
    client = auth.client_for(manager)
    for _ in range(2):
        response = client.post(f"/review/case/{case.reference}/reassign", data={"reviewer": target.id})
        assert response.status_code == 303
    db.session.refresh(case)
    assert case.claimed_by_id == target.id
    moves = select(AuditEvent).where(AuditEvent.subject_id == case.reference, AuditEvent.action == "case.reassigned")
    [move] = db.session.execute(moves).scalars().all()
    assert (move.details["from_holder"], move.details["to_holder"]) == (holder.id, target.id)


def test_reassign_to_a_seller_or_nobody_is_refused(make, auth, now):
    manager, holder = make.user("manager", locale="en"), make.user("reviewer")
    seller = make.user()
    case = make.case(submitted_at=now)
    claims.claim(case.reference, holder, now=now)
    client = auth.client_for(manager)
    for value in (seller.id, 999999, "abc", ""):
        response = client.post(f"/review/case/{case.reference}/reassign", data={"reviewer": value})
        assert response.status_code == 400, value
        assert "field-error" in response.get_data(as_text=True)
    db.session.refresh(case)
    assert case.claimed_by_id == holder.id


def test_claim_without_csrf_token_is_refused(make, auth, now):
    reviewer = make.user("reviewer", locale="en")
    case = make.case(submitted_at=now)
    response = auth.client_for(reviewer).post(f"/review/case/{case.reference}/claim", csrf=False)
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    db.session.refresh(case)
    assert case.status == "submitted"


# --- concurrency, with real commits -------------------------------------------


def _seed(live_app, cases: int, workers: int):
    from datetime import datetime

    from recovery_app import lifecycle
    from recovery_app.auth.users import create_user, get_or_create_account

    moment = datetime.now(UTC)
    with live_app.app_context():
        account = get_or_create_account("Concurrency Shop", moment)
        seller = create_user(
            email="seller@example.test",
            password="x",
            role="seller_owner",
            account=account,
            now=moment,
            check_password=False,
        )
        for n in range(cases):
            lifecycle.new_case(seller, "passport", now=moment + timedelta(seconds=n), address=None, browser=None)
        ids = [
            create_user(email=f"r{n}@example.test", password="x", role="reviewer", now=moment, check_password=False).id
            for n in range(workers)
        ]
        db.session.commit()
        return ids


def _claim_in_threads(live_app, reviewer_ids):
    """Every worker claims as fast as it can, all starting together, until the queue is empty."""
    from recovery_app.models.base import utcnow

    results: dict[int, list[int]] = {rid: [] for rid in reviewer_ids}
    errors: list[BaseException] = []
    start = threading.Barrier(len(reviewer_ids))

    def work(reviewer_id):
        try:
            with live_app.app_context():
                start.wait()
                while True:
                    with unit():
                        case = claims.claim_next(db.session.get(User, reviewer_id), now=utcnow())
                    if case is None:
                        break
                    results[reviewer_id].append(case.id)
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(rid,)) for rid in reviewer_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors


def _check_every_case_held_once(live_app, results, cases):
    claimed = [case_id for ids in results.values() for case_id in ids]
    assert len(claimed) == len(set(claimed)) == cases  # none twice, none lost
    with live_app.app_context():
        rows = db.session.execute(select(Case.id, Case.status, Case.claimed_by_id)).all()
        assert all(status == "in_review" for _, status, _ in rows)
        holder = {case_id: by for case_id, _, by in rows}
        for reviewer_id, ids in results.items():
            assert all(holder[case_id] == reviewer_id for case_id in ids)
        assert audit.verify().ok
        claims = db.session.execute(select(AuditEvent).where(AuditEvent.action == "case.claimed")).scalars().all()
        assert len(claims) == cases


def test_eight_workers_claim_twenty_cases_each_exactly_once_on_postgresql(live_app, backend):
    if backend != "postgresql":
        pytest.skip("SELECT … FOR UPDATE SKIP LOCKED is PostgreSQL's; SQLite is covered by the threaded test below")
    reviewer_ids = _seed(live_app, cases=20, workers=8)
    results, errors = _claim_in_threads(live_app, reviewer_ids)
    assert not errors, errors
    _check_every_case_held_once(live_app, results, 20)


def test_threads_claiming_at_once_never_share_a_case(live_app):
    """The conditional UPDATE (SQLite's path, and PostgreSQL's) under real concurrency."""
    reviewer_ids = _seed(live_app, cases=12, workers=4)
    results, errors = _claim_in_threads(live_app, reviewer_ids)
    assert not errors, errors
    _check_every_case_held_once(live_app, results, 12)


def test_two_reviewers_claiming_the_same_case_one_wins_the_other_is_told(live_app):
    from recovery_app.models.base import utcnow

    reviewer_ids = _seed(live_app, cases=1, workers=2)
    with live_app.app_context():
        reference = db.session.execute(select(Case.reference)).scalar_one()
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def work(reviewer_id):
        with live_app.test_request_context(headers={"Accept-Language": "en"}):
            start.wait()
            try:
                with unit():
                    claims.claim(reference, db.session.get(User, reviewer_id), now=utcnow())
                outcomes.append("won")
            except services.ReviewError as exc:
                outcomes.append(str(exc.message))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=work, args=(rid,)) for rid in reviewer_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes)[1] == "won"
    assert "is already held by" in sorted(outcomes)[0]


def test_manager_can_hand_an_unclaimed_case_to_a_reviewer(make, now):
    manager, reviewer = make.user("manager"), make.user("reviewer")
    case = make.case(submitted_at=now)
    claims.reassign(case.reference, manager, reviewer.id, now=now)
    assert (case.status, case.claimed_by_id) == ("in_review", reviewer.id)


def test_second_approval_cannot_be_handed_to_the_first_approver(make, review, now, english):
    from tests.factories import ALL_CHECKS

    manager, first = make.user("manager"), make.user("reviewer")
    seller = review.seller()
    seller.email_changed_at = now - timedelta(days=1)
    case = review.case(seller)
    claims.claim(case.reference, first, now=now)
    decisions.approve(case.reference, first, ALL_CHECKS, now=now)
    with pytest.raises(services.ReviewError, match="gave the first approval"):
        claims.reassign(case.reference, manager, first.id, now=now)
    assert case.status == "awaiting_second_approval" and case.claimed_by_id is None


def test_releasing_a_second_approval_keeps_it_waiting_for_someone_else(make, review, now):
    from tests.factories import ALL_CHECKS

    first, second = make.user("reviewer"), make.user("reviewer")
    seller = review.seller()
    seller.password_changed_at = now - timedelta(days=2)
    case = review.case(seller)
    claims.claim(case.reference, first, now=now)
    decisions.approve(case.reference, first, ALL_CHECKS, now=now)
    claims.claim(case.reference, second, now=now)
    claims.release(case.reference, second, now=now)
    assert (case.status, case.claimed_by_id) == ("awaiting_second_approval", None)
