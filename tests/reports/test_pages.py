"""The managers' reports: who reaches them, what bad input gets, CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest

from recovery_app.scheduler import jobs
from tests.helpers import count_statements, queued_notice

RANGE = {"start": "2026-02-28", "end": "2026-03-02"}


def use_language(client, code):
    """Switch the language; the test's app context outlives requests, so
    Flask-Babel's per-context cache is cleared too."""
    from flask_babel import refresh

    client.get(f"/language/{code}")
    refresh()


@pytest.fixture
def manager_client(client, make, auth):
    manager = make.user("manager", locale="en", display_name="Manager M")
    auth.fast_sign_in(client, manager)
    client.manager = manager
    return client


@pytest.mark.parametrize("role", ["seller_owner", "seller_user", "reviewer"])
def test_only_managers_find_the_reports(client, make, auth, role):  # ASVS 4.1.1 (access control at the server)
    auth.fast_sign_in(client, make.user(role))
    for path in ("/reports/", "/reports/daily.csv"):
        assert client.get(path).status_code == 404


def test_dashboard_shows_the_figures_in_english_and_japanese(manager_client, fixed_data):
    page = manager_client.get("/reports/", query_string=RANGE, headers={"Accept-Language": "en"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "SLA dashboard" in html and "80.0%" in html and "of 10 decisions were made within 12 hours" in html
    assert "Erlang C" in html and html.count("<svg") == 3 and "<title" in html and "<desc" in html
    assert fixed_data["open"][2].reference in html  # escalated: past due and still open
    use_language(manager_client, "ja")
    html = manager_client.get("/reports/", query_string=RANGE).get_data(as_text=True)
    assert "SLAダッシュボード" in html and "80.0%" in html


def test_dashboard_has_no_inline_script_or_style(manager_client, fixed_data):  # CSP: no inline script/style
    html = manager_client.get("/reports/", query_string=RANGE).get_data(as_text=True)
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", html, re.S)
    assert scripts and all(body == "" for body in scripts)  # static files only (errors.js on every page)
    assert all(" src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    assert " style=" not in html and "onclick" not in html.lower()


@pytest.mark.parametrize(
    "query,message",
    [
        ({"start": "2026-03-10", "end": "2026-03-01"}, "The end date is before the start date."),
        ({"start": "2025-01-01", "end": "2026-03-01"}, "A report can cover at most 366 days."),
        ({"start": "2026-02-30"}, "Dates must be written as year-month-day"),
        ({"start": "<script>"}, "Dates must be written as year-month-day"),
        ({"start": "9999-12-30", "end": "9999-12-31"}, "Reports cover days from 2000-01-01 to 2099-12-31."),
        ({"end": "0001-01-01"}, "Reports cover days from 2000-01-01 to 2099-12-31."),
    ],
)
def test_bad_date_range_gets_a_clear_message(manager_client, query, message):
    page = manager_client.get("/reports/", query_string=query, headers={"Accept-Language": "en"})
    assert page.status_code == 400
    html = page.get_data(as_text=True)
    assert message in html and "<script>" not in html
    assert "Days follow your time zone (UTC)." in html  # the hint keeps its zone beside the error
    assert manager_client.get("/reports/daily.csv", query_string=query).status_code == 400


def test_bad_date_range_message_is_in_japanese(manager_client):
    use_language(manager_client, "ja")
    html = manager_client.get("/reports/", query_string={"start": "2026-03-10", "end": "2026-03-01"}).get_data(
        as_text=True
    )
    assert "終了日が開始日より前です" in html


def test_every_table_downloads_as_csv_with_a_byte_order_mark(manager_client, fixed_data):
    for name in ("now", "daily", "decision_times", "reasons", "backlog", "reviewers", "staffing"):
        response = manager_client.get(f"/reports/{name}.csv", query_string=RANGE, headers={"Accept-Language": "en"})
        assert response.status_code == 200, name
        assert response.mimetype == "text/csv"
        assert (
            response.headers["Content-Disposition"]
            == f'attachment; filename="recovery-desk-{name}-2026-02-28-2026-03-02.csv"'
        )
        assert response.data.startswith("\ufeff".encode())
    text = manager_client.get("/reports/daily.csv", query_string=RANGE, headers={"Accept-Language": "en"}).get_data(
        as_text=True
    )
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:5] == ["Day", "Opened", "Decided", "Decided within SLA", "SLA attainment (%)"]
    assert rows[2][:5] == ["2026-03-01", "12", "10", "8", "80.0"]
    reviewers = manager_client.get(
        "/reports/reviewers.csv", query_string=RANGE, headers={"Accept-Language": "en"}
    ).get_data(as_text=True)
    # 9 h falls in the 15-minute bucket 9:00–9:15: its middle, as the page states.
    assert "Reviewer B,5,60.0,9.12,2" in reviewers


def test_csv_headers_are_japanese_for_a_japanese_manager(manager_client, fixed_data):
    use_language(manager_client, "ja")
    text = manager_client.get("/reports/reasons.csv", query_string=RANGE).data.decode("utf-8-sig")
    assert text.splitlines()[0] == "理由,件数"
    assert "書類が読み取れない,1" in text


def test_unknown_csv_table_is_not_found(manager_client):
    assert manager_client.get("/reports/passwords.csv").status_code == 404


def test_failed_messages_are_shown_to_managers(manager_client, app, now, db):
    app.config["RECOVERY_SENDER"] = "tests.scheduler.conftest:ProviderDown"
    message = queued_notice("lost@example.test", now)
    moment = now
    while message.status != "failed":
        jobs.deliver_outbox(moment)
        moment += timedelta(hours=1)
    html = manager_client.get("/reports/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Messages that could not be sent: 1" in html and "lost@example.test" in html
    assert "provider unavailable" in html


def test_dashboard_statement_count_does_not_grow_with_cases(manager_client, make, now, db):
    def statements() -> int:
        return count_statements(
            lambda: manager_client.get("/reports/").status_code == 200 or pytest.fail("dashboard failed")
        )

    make.case(submitted_at=now - timedelta(hours=2))
    manager_client.get("/reports/")  # the first request of a session also records it
    few = statements()
    for hours in range(1, 40):
        make.case(submitted_at=now - timedelta(hours=hours % 20))
    assert statements() == few


@pytest.mark.parametrize("most", [0, 1, 3, 6, 10, 45])
def test_the_daily_chart_counts_cases_in_whole_numbers(app, most):
    from recovery_app.reports.charts import stacked

    with app.test_request_context():
        svg = str(stacked("c", "Cases", "Cases per day", ["1", "2"], [("decided", [most, 0])]))
    ticks = [float(tick) for tick in re.findall(r'<text class="tick"[^>]*text-anchor="end"[^>]*>([^<]+)</text>', svg)]
    assert len(ticks) == 5 and ticks[-1] >= most
    assert all(tick == int(tick) for tick in ticks), ticks
