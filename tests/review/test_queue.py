"""The queue: most urgent first, filters, keyset pages, constant cost, staff only."""

from datetime import timedelta

import pytest

from recovery_app.extensions import db
from recovery_app.prechecks.jobs import run_pending
from recovery_app.review import claims, queue
from tests.helpers import count_statements
from tests.prechecks import images


def _refs(html: str, cases) -> list[str]:
    """The references of ``cases`` in the order the page shows them."""
    return sorted((c.reference for c in cases if c.reference in html), key=html.index)


def test_queue_orders_open_cases_by_due_time_earliest_first(make, review, auth, now):
    reviewer = make.user("reviewer")
    late = make.case(submitted_at=now - timedelta(hours=1))
    early = make.case(submitted_at=now - timedelta(hours=5))
    middle = make.case(submitted_at=now - timedelta(hours=3))
    closed = make.case(submitted_at=now - timedelta(hours=9), status="withdrawn")
    html = auth.client_for(reviewer).get("/review/").get_data(as_text=True)
    assert _refs(html, [late, early, middle]) == [early.reference, middle.reference, late.reference]
    assert closed.reference not in html


def test_queue_shows_time_left_at_risk_and_breached(app, make, auth):
    from recovery_app.models.base import utcnow

    current = utcnow()
    reviewer = make.user("reviewer", locale="en")
    make.case(submitted_at=current - timedelta(hours=1, minutes=30))  # 10:30 left
    make.case(submitted_at=current - timedelta(hours=10))  # 2:00 left: at risk
    make.case(submitted_at=current - timedelta(hours=14, minutes=5))  # 2:05 overdue
    html = auth.client_for(reviewer).get("/review/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "10:29 left" in html or "10:30 left" in html
    assert "At risk" in html and ("1:59 left" in html or "2:00 left" in html)
    assert "Breached" in html and ("2:05 overdue" in html or "2:04 overdue" in html)


def test_queue_is_in_japanese_for_a_japanese_reviewer(make, auth, now):
    reviewer = make.user("reviewer", locale="ja")
    make.case(submitted_at=now)
    html = auth.client_for(reviewer).get("/review/").get_data(as_text=True)
    assert "審査キュー" in html and "次の案件を担当" in html


def test_filters_mine_at_risk_and_breached(make, auth, now):
    from recovery_app.models.base import utcnow

    current = utcnow()
    reviewer = make.user("reviewer")
    fresh = make.case(submitted_at=current)
    at_risk = make.case(submitted_at=current - timedelta(hours=10))
    breached = make.case(submitted_at=current - timedelta(hours=13))
    mine = make.case(submitted_at=current - timedelta(hours=2))
    claims.claim(mine.reference, reviewer, now=current)
    client = auth.client_for(reviewer)
    everything = [fresh, at_risk, breached, mine]
    assert _refs(client.get("/review/?mine=1").get_data(as_text=True), everything) == [mine.reference]
    assert _refs(client.get("/review/?at_risk=1").get_data(as_text=True), everything) == [at_risk.reference]
    assert _refs(client.get("/review/?breached=1").get_data(as_text=True), everything) == [breached.reference]
    assert _refs(client.get("/review/?status=in_review").get_data(as_text=True), everything) == [mine.reference]


def test_pages_hold_fifty_and_follow_on_without_gaps_or_repeats(make, auth, now):
    reviewer = make.user("reviewer")
    seller = make.user(enrolled=False)
    cases = [make.case(seller, submitted_at=now + timedelta(minutes=n // 2)) for n in range(57)]  # ties on due_at
    client = auth.client_for(reviewer)
    first = client.get("/review/").get_data(as_text=True)
    assert len(_refs(first, cases)) == 50
    cursor = queue.encode_cursor(*sorted((c.due_at, c.id) for c in cases)[49])
    assert f"after={cursor}" in first.replace("&amp;", "&")
    second = client.get(f"/review/?after={cursor}").get_data(as_text=True)
    ordered = [c.reference for c in sorted(cases, key=lambda c: (c.due_at, c.id))]
    assert _refs(first, cases) + _refs(second, cases) == ordered


def test_queue_page_runs_the_same_number_of_statements_whatever_the_number_of_cases(app, make, auth, now):
    reviewer = make.user("reviewer")
    client = auth.client_for(reviewer)
    seller = make.user(enrolled=False)

    def statements() -> int:
        return count_statements(lambda: client.get("/review/").status_code == 200 or pytest.fail("queue failed"))

    for n in range(3):
        make.case(seller, submitted_at=now + timedelta(minutes=n))
    statements()  # the first request loads the signed-in user into the session
    few = statements()
    for n in range(70):
        case = make.case(seller, submitted_at=now + timedelta(minutes=10 + n))
        if n % 3 == 0:
            claims.claim(case.reference, reviewer, now=now)
    assert statements() == few


def test_precheck_filter_and_badges_add_no_statement_whatever_the_results(app, make, review, auth, now):
    client = auth.client_for(make.user("reviewer"))

    def statements(path: str) -> int:
        return count_statements(lambda: client.get(path).status_code == 200 or pytest.fail(f"{path} failed"))

    for n in range(3):
        make.case(submitted_at=now + timedelta(minutes=n))
    statements("/review/")  # the first request loads the signed-in user into the session
    plain, flagged = statements("/review/"), statements("/review/?flagged=1")
    assert flagged == plain
    pictures = [
        images.photo_of(images.card(50), seed=50),
        images.with_glare(images.photo_of(images.card(51), seed=51)),
        images.with_glare(images.photo_of(images.card(52), seed=52), seed=2),
    ]
    for n, picture in enumerate(pictures):
        case = review.case(documents=(), document_type="drivers_licence", submitted_at=now + timedelta(minutes=5 + n))
        review.document(case, "front", "image/jpeg", content=images.jpeg(picture))
        db.session.commit()
    run_pending(now)
    db.session.commit()
    html = client.get("/review/").get_data(as_text=True)
    assert html.count("precheck-failed") == 2  # the two glared documents, one badge per failed case
    assert statements("/review/") == plain
    assert statements("/review/?flagged=1") == plain


def test_bad_filter_and_bad_cursor_get_a_message_and_the_plain_queue(make, auth, now):
    reviewer = make.user("reviewer", locale="en")
    case = make.case(submitted_at=now)
    client = auth.client_for(reviewer)
    bad_status = client.get("/review/?status=approved%27--")
    assert bad_status.status_code == 200
    assert "That filter is not valid" in bad_status.get_data(as_text=True)
    assert case.reference in bad_status.get_data(as_text=True)
    bad_cursor = client.get("/review/?after=not-a-cursor")
    assert "That page link is not valid" in bad_cursor.get_data(as_text=True)
    assert case.reference in bad_cursor.get_data(as_text=True)


@pytest.mark.parametrize(
    "case_number", ["99999999999999999999999", str(2**63), str(2**31), "١٢", "0", "-3", "+5", " 5"]
)
def test_a_cursor_whose_case_number_no_case_can_have_gets_the_message(make, auth, now, case_number):
    reviewer = make.user("reviewer", locale="en")
    case = make.case(submitted_at=now)
    page = auth.client_for(reviewer).get("/review/", query_string={"after": f"20260302T090000.000000Z.{case_number}"})
    assert page.status_code == 200
    assert "That page link is not valid" in page.get_data(as_text=True)
    assert case.reference in page.get_data(as_text=True)


def test_seller_gets_404_on_every_review_page(make, review, auth, now):
    seller = review.seller()
    case = review.case(seller)
    client = auth.client_for(seller)
    document = case.documents[0]
    for path in (
        "/review/",
        f"/review/case/{case.reference}",
        f"/review/case/{case.reference}/documents/{document.id}",
    ):
        assert client.get(path).status_code == 404, path
    for path in (
        "/review/claim-next",
        f"/review/case/{case.reference}/claim",
        f"/review/case/{case.reference}/approve",
        f"/review/case/{case.reference}/notes",
    ):
        assert client.post(path).status_code == 404, path
    db.session.refresh(case)
    assert case.status == "submitted" and case.claimed_by_id is None


def test_visitor_is_sent_to_sign_in(app, client):
    from flask import url_for

    response = client.get("/review/")
    assert response.status_code == 302
    with app.test_request_context():
        assert response.headers["Location"].startswith(url_for("auth.sign_in"))


def test_queue_page_has_no_inline_script_or_style(make, auth, now):
    # The CSP allows scripts and styles from files only.
    make.case(submitted_at=now)
    html = auth.client_for(make.user("reviewer")).get("/review/").get_data(as_text=True)
    assert '<script src="/static/js/review.js" defer></script>' in html
    assert "<script>" not in html and "style=" not in html and "onclick" not in html
