"""Where a seller's case stands: its place in the reviewers' queue, the
expected decision from the staffing model, the promise and its honest
exceptions, and the update the case page asks for (one statement, owner only)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from recovery_app.models import Case, OutboxMessage, UserSession
from recovery_app.models.base import utcnow
from recovery_app.recovery import standing
from recovery_app.reports.services import erlang_c
from recovery_app.review import claims, queue
from tests.helpers import count_statements, statements_of


@pytest.fixture(autouse=True)
def fresh_inputs(app):
    """The inputs are kept per process for a minute; each test starts without them."""
    standing.forget_inputs()
    yield
    standing.forget_inputs()


def _decided(make, reviewer, *, submitted, claimed, decided, status="rejected"):
    case = make.case(submitted_at=submitted)
    case.status, case.first_claimed_at, case.decided_at = status, claimed, decided
    case.decided_by_id, case.closed_at = reviewer.id, decided
    return case


def _url(case) -> str:
    return f"/recovery/case/{case.reference}/standing"


# --- the place ---------------------------------------------------------------------


def test_place_counts_the_cases_the_reviewers_queue_lists_before_the_case(make, db, now):
    reviewer = make.user("reviewer")
    mine = make.case(submitted_at=now)
    earlier = [make.case(submitted_at=now - timedelta(hours=h)) for h in (1, 2, 3)]
    claims.claim(earlier[0].reference, reviewer, now=now)  # in review: still ahead
    twin_before = make.case(submitted_at=now)  # the same due time, a higher id: behind
    waiting_on_seller = make.case(submitted_at=now - timedelta(hours=4), status="needs_info")
    closed = make.case(submitted_at=now - timedelta(hours=5), status="withdrawn")
    later = make.case(submitted_at=now + timedelta(minutes=5))
    db.session.flush()

    order = [row.case.id for row in queue.queue_page(reviewer, queue.QueueFilters(), now).rows]
    assert standing.read(mine.user_id, mine.reference).ahead == order.index(mine.id) == 3
    assert standing.read(twin_before.user_id, twin_before.reference).ahead == order.index(twin_before.id) == 4
    assert standing.read(later.user_id, later.reference).ahead == order.index(later.id) == 5
    assert waiting_on_seller.id not in order and closed.id not in order


def test_a_decided_case_ahead_moves_the_case_up(make, db, now):
    reviewer = make.user("reviewer")
    ahead = make.case(submitted_at=now - timedelta(hours=1))
    mine = make.case(submitted_at=now)
    assert standing.read(mine.user_id, mine.reference).ahead == 1
    _decided(make, reviewer, submitted=now, claimed=now, decided=now)  # another, behind: no change
    ahead.status, ahead.decided_at = "approved", now
    db.session.flush()
    assert standing.read(mine.user_id, mine.reference).ahead == 0


def test_read_finds_only_the_users_own_case(make):
    mine = make.case()
    other = make.user(enrolled=False)
    assert standing.read(other.id, mine.reference) is None
    assert standing.read(mine.user_id, "RC-NONE-XXXX") is None


# --- the inputs and the model ---------------------------------------------------------


def test_inputs_count_todays_arrivals_recent_handling_and_reviewers_on_duty(make, db, now):
    busy, deciding, away, idle_holder = (make.user("reviewer") for _ in range(4))
    for hours in (1, 5, 23):
        make.case(submitted_at=now - timedelta(hours=hours))
    make.case(submitted_at=now - timedelta(hours=25))  # yesterday's: not today's rate
    # Handling times 20, 40 and 90 minutes (median 40); one decided 20 days ago is too old.
    for minutes, decided_ago in ((20, timedelta(minutes=30)), (40, timedelta(hours=3)), (90, timedelta(days=2))):
        decided = now - decided_ago
        _decided(
            make,
            deciding if decided_ago < timedelta(hours=1) else away,
            submitted=decided - timedelta(hours=2),
            claimed=decided - timedelta(minutes=minutes),
            decided=decided,
        )
    _decided(
        make,
        away,
        submitted=now - timedelta(days=21),
        claimed=now - timedelta(days=20, hours=5),
        decided=now - timedelta(days=20),
    )
    held = make.case(submitted_at=now - timedelta(hours=2))
    claims.claim(held.reference, busy, now=now - timedelta(minutes=10))
    stale = make.case(submitted_at=now - timedelta(hours=3))
    claims.claim(stale.reference, idle_holder, now=now - timedelta(hours=2))  # untouched for two hours
    db.session.flush()

    inputs = standing.estimate_inputs(now)
    # Opened in the last 24 hours: the three above and the four decided ones submitted within it.
    opened = (
        db.session.execute(select(Case).where(Case.submitted_at > now - timedelta(hours=24), Case.submitted_at <= now))
        .scalars()
        .all()
    )
    assert inputs.arrivals_per_hour == pytest.approx(len(opened) / 24)
    assert inputs.handling_seconds == pytest.approx(40 * 60)
    assert inputs.on_duty == 2  # the one holding a case touched 10 minutes ago, the one who decided 30 minutes ago


def test_inputs_take_three_statements_and_are_kept_for_a_minute(make, now):
    make.case(submitted_at=now)
    assert count_statements(lambda: standing.cached_inputs(now)) == 3
    assert count_statements(lambda: standing.cached_inputs(now + timedelta(seconds=59))) == 0
    assert count_statements(lambda: standing.cached_inputs(now + timedelta(seconds=60))) == 3


def test_wait_with_every_reviewer_busy_is_one_interval_per_case_beyond_them():
    # 3 reviewers, 30 minutes each case: one is free every 10 minutes.
    assert standing.expected_wait(3, 3, 1800, 2.0) == timedelta(minutes=10)
    assert standing.expected_wait(7, 3, 1800, 2.0) == timedelta(minutes=50)


def test_wait_with_fewer_cases_ahead_than_reviewers_is_the_erlang_c_share_of_one_interval():
    # 4 cases an hour, 30 minutes each: a load of 2 Erlangs on 3 reviewers.
    assert standing.expected_wait(0, 3, 1800, 4.0) == timedelta(seconds=erlang_c(3, 2.0) * 600)
    assert standing.expected_wait(2, 3, 1800, 4.0) < standing.expected_wait(3, 3, 1800, 4.0)
    # Arrivals beyond what the reviewers can handle: every case waits.
    assert standing.expected_wait(0, 1, 3600, 5.0) == timedelta(hours=1)


def _inputs(now, *, handling=1800.0, on_duty=2, arrivals=1.0):
    return standing.Inputs(arrivals, handling, on_duty, now)


def test_expected_decision_is_the_wait_and_one_handling_time_rounded_up(make, now):
    case = make.case(submitted_at=now)
    for _ in range(5):
        make.case(submitted_at=now - timedelta(hours=1))
    found = standing.read(case.user_id, case.reference)
    assert found.ahead == 5
    # 2 reviewers, 30 minutes each: (5 - 2 + 1) × 15 minutes waiting, then 30 minutes of review.
    assert standing.expected_decision(found, _inputs(now), now) == now + timedelta(minutes=90)
    assert standing.expected_decision(found, _inputs(now, on_duty=0), now) is None
    assert standing.expected_decision(found, _inputs(now, handling=None), now) is None


# --- what the seller reads ---------------------------------------------------------------


def _describe(case, now, inputs, locale="en"):
    with_place = standing.read(case.user_id, case.reference)
    return standing.describe(with_place, inputs, now, time_zone="Asia/Tokyo", locale=locale)


def test_on_track_states_the_promise_beside_the_estimate(app, make, now):
    case = make.case(submitted_at=now)
    make.case(submitted_at=now - timedelta(hours=1))
    with app.test_request_context(headers={"Accept-Language": "en"}):
        told = _describe(case, now, _inputs(now))
    assert told["state"] == "on_track" and told["ahead"] == 1
    assert told["place"] == "1 case is ahead of yours."
    assert told["estimate"].startswith("Expected decision: around 2 March 2026, 18:35 JST (UTC+9)")
    assert "2 reviewers on duty (who worked on a case in the last hour)" in told["basis"]
    assert told["promise"].startswith("Our promise: a decision within 12 hours")
    assert "2 March 2026, 21:00" not in told["promise"]  # due 21:00 UTC is 6:00 AM the next day in Tokyo
    assert "3 March 2026, 06:00 JST" in told["promise"]


def test_at_risk_late_and_breached_cases_are_told_honestly_instead_of_promised(app, make, now):
    at_risk = make.case(submitted_at=now - timedelta(hours=10))
    breached = make.case(submitted_at=now - timedelta(hours=13))
    crowded = make.case(submitted_at=now - timedelta(hours=1))
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert _describe(at_risk, now, _inputs(now))["state"] == "at_risk"
        risky = _describe(at_risk, now, _inputs(now))["promise"]
        late = _describe(crowded, now, _inputs(now, handling=12 * 3600.0, on_duty=1))
        overdue = _describe(breached, now, _inputs(now))
    assert "close to our 12-hour limit" in risky and "we cannot promise" in risky
    assert late["state"] == "late" and "may come after our 12-hour promise" in late["promise"]
    assert overdue["state"] == "breached" and "We have not kept our promise" in overdue["promise"]
    for told in (risky, late["promise"], overdue["promise"]):
        assert "Our promise" not in told


def test_without_reviewers_on_duty_there_is_no_estimate_and_the_page_says_why(app, make, now):
    case = make.case(submitted_at=now)
    with app.test_request_context(headers={"Accept-Language": "ja"}):
        told = _describe(case, now, _inputs(now, on_duty=0), locale="ja")
    assert told["estimate"] is None
    assert told["place"] == "あなたの申請より前の申請はありません。次に審査されます。"
    assert "過去1時間に申請を担当した審査担当者がいない" in told["basis"]
    assert "12時間以内" in told["promise"]


# --- the update the page asks for ---------------------------------------------------------


def test_owner_reads_the_update_in_their_language(client, make, auth):
    seller = make.user(enrolled=False, locale="ja")
    mine = make.case(seller, submitted_at=utcnow())
    make.case(submitted_at=utcnow() - timedelta(hours=1))
    make.case(submitted_at=utcnow() - timedelta(hours=2))
    auth.fast_password_step(client, seller)
    response = client.get(_url(mine))
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    data = response.get_json()
    assert data["ahead"] == 2 and data["place"] == "あなたの申請より前に2件の申請があります。"
    assert data["status"] == "submitted" and data["reload"] is False
    client.get("/language/en")
    assert client.get(_url(mine)).get_json()["place"] == "2 cases are ahead of yours."


def test_no_one_but_the_owner_reads_the_update(app, client, make, auth):
    seller = make.user(enrolled=False)
    mine = make.case(seller, submitted_at=utcnow())
    assert client.get(_url(mine)).status_code == 404  # nobody signed in
    stranger = make.user(enrolled=False)
    auth.fast_password_step(client, stranger)
    assert client.get(_url(mine)).status_code == 404
    assert auth.client_for(make.user("reviewer")).get(_url(mine)).status_code == 404
    assert auth.client_for(make.user("manager")).get(_url(mine)).status_code == 404
    auth.fast_password_step(client, seller)
    assert client.get(_url(mine)).status_code == 200
    assert client.get("/recovery/case/RC-ZZZZ-ZZZZ/standing").status_code == 404


def test_a_signed_in_owner_reads_it_and_asking_does_not_keep_the_session_alive(app, make, auth, db):
    seller = make.user(locale="en")
    mine = make.case(seller, submitted_at=utcnow())
    client = auth.client_for(seller)
    row = db.session.execute(select(UserSession).where(UserSession.user_id == seller.id)).scalar_one()
    seen = utcnow() - timedelta(minutes=5)
    row.last_seen_at = seen
    db.session.commit()
    assert client.get(_url(mine)).get_json()["place"] == "No case is ahead of yours: yours is next."
    db.session.refresh(row)
    assert row.last_seen_at == seen
    client.get("/recovery/case")  # the seller looking at the page is activity
    db.session.refresh(row)
    assert row.last_seen_at > seen


def test_the_page_says_when_a_reviewer_starts_and_sends_nothing(client, make, auth, db):
    seller = make.user(enrolled=False, locale="en")
    mine = make.case(seller, submitted_at=utcnow())
    auth.fast_password_step(client, seller)
    client.get("/language/en")
    before = client.get(_url(mine)).get_json()
    assert before["reviewer"] is None and before["place"]
    messages = len(db.session.execute(select(OutboxMessage)).scalars().all())
    claims.claim(mine.reference, make.user("reviewer"), now=utcnow())
    db.session.commit()
    after = client.get(_url(mine)).get_json()
    assert after["status"] == "in_review" and after["place"] is None
    assert after["reviewer"].startswith("A reviewer started on your case at ")
    assert len(db.session.execute(select(OutboxMessage)).scalars().all()) == messages


def test_a_decided_case_tells_the_page_to_reload(client, make, auth, db):
    seller = make.user(enrolled=False)
    mine = make.case(seller, submitted_at=utcnow())
    auth.fast_password_step(client, seller)
    mine.status = "rejected"
    db.session.commit()
    data = client.get(_url(mine)).get_json()
    assert data["reload"] is True and data["place"] is None and data["promise"] is None


def test_each_update_is_one_statement_on_the_cases_whatever_their_number(client, make, auth):
    seller = make.user(enrolled=False)
    mine = make.case(seller, submitted_at=utcnow())
    auth.fast_password_step(client, seller)
    url = _url(mine)
    client.get(url)  # the estimate's inputs are now kept for a minute

    def update() -> list[str]:
        return statements_of(lambda: client.get(url).status_code == 200 or pytest.fail("update failed"))

    few = update()
    other = make.user(enrolled=False)
    for n in range(60):
        make.case(other, submitted_at=utcnow() - timedelta(minutes=n + 1))
    many = update()
    assert len(many) == len(few)
    on_cases = [s for s in many if " cases" in s or "\ncases" in s]
    assert len(on_cases) == 1, "\n---\n".join(on_cases)  # the case and its place; the others check the password step
    assert client.get(url).get_json()["ahead"] == 60


def test_the_case_page_shows_where_the_case_stands_without_inline_script(client, make, auth):
    seller = make.user(enrolled=False)
    mine = make.case(seller, submitted_at=utcnow())
    make.case(submitted_at=utcnow() - timedelta(hours=1))
    auth.fast_password_step(client, seller)
    client.get("/language/en")
    page = client.get("/recovery/case").get_data(as_text=True)
    assert 'id="standing"' in page and f'data-url="{_url(mine)}"' in page
    assert "1 case is ahead of yours." in page and "Our promise" in page
    assert "/static/js/standing.js" in page and "<script>" not in page


@pytest.mark.parametrize(
    "language, words",
    [
        (
            "en",
            (
                "Where does my recovery case stand?",
                "how many cases are ahead of yours",
                "when they worked on a case in the last hour",
                "within 12 hours",
                "We do not send a message",
            ),
        ),
        (
            "ja",
            (
                "本人確認の申請は今どうなっていますか？",
                "何件の申請があるか",
                "過去1時間に申請を担当した審査担当者",
                "12時間以内",
                "メッセージはお送りしません",
            ),
        ),
    ],
)
def test_help_explains_the_place_the_estimate_and_who_is_on_duty(app, language, words):
    page = app.test_client().get("/help", headers={"Accept-Language": language}).get_data(as_text=True)
    assert 'id="case-standing"' in page and 'href="#case-standing"' in page
    for word in words:
        assert word in page, word
