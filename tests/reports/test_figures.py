"""Report figures against the hand-computed values of the fixed data set
(see conftest.py), on SQLite and PostgreSQL alike: once computed from the
cases (no day rolled up yet) and once with the finished days read from the
daily rollups. Percentiles come from fixed buckets, so they are compared
within the bucket error the dashboard states (``measures.bucket_error``)."""

from __future__ import annotations

from datetime import date

import pytest

from recovery_app.reports import rollups, services
from recovery_app.reports.measures import bucket_error

H = 3600


def within_bucket(seconds):
    return pytest.approx(seconds, abs=bucket_error(seconds))


@pytest.fixture(params=["from cases", "from rollups"])
def report(request, fixed_data, now):
    if request.param == "from rollups":
        rollups.roll_up(now)
    rng = services.DateRange(date(2026, 2, 28), date(2026, 3, 2), "UTC")
    built = services.build_report(rng, now)
    assert built.rolled_days == (2 if request.param == "from rollups" else 0)
    return built


def test_time_to_decision_percentiles_are_nearest_rank_on_the_clock(report):
    times = report.decision_times
    assert times["n"] == 10
    assert times[50] == within_bucket(5 * H)
    assert times[90] == within_bucket(13 * H)
    assert times[99] == within_bucket(20 * H)
    assert times[100] == pytest.approx(20 * H, abs=1)


def test_sla_attainment_excludes_the_pause_while_waiting_on_the_seller(report):
    assert report.decision_times["within"] == 8
    by_day = {row[0]: row for row in report.tables["daily"].rows}
    day = by_day["2026-03-01"]
    # day, opened, decided, within, share, approved, rejected, asked, expired, reviewers
    assert day[1:4] == [12, 10, 8]  # the ten decided, and two still open from the evening
    assert day[4] == pytest.approx(0.8)
    assert day[5:] == [8, 2, 1, 1, 2]
    assert by_day["2026-02-28"][2] == 0 and by_day["2026-02-28"][4] is None
    assert by_day["2026-03-02"][1] == 1  # opened an hour before now


def test_time_to_first_claim(report):
    assert report.first_claim["n"] == 10
    assert report.first_claim[50] == within_bucket(1 * H)
    assert report.first_claim[90] == within_bucket(3 * H)
    assert report.first_claim[100] == pytest.approx(6 * H, abs=1)


def test_per_reviewer_figures(report):
    rows = {row[0]: row[1:] for row in report.tables["reviewers"].rows}
    assert rows["Reviewer A"][0:2] == [5, 1.0] and rows["Reviewer A"][2] == within_bucket(2.5 * H)
    assert rows["Reviewer A"][3] == 0
    assert rows["Reviewer B"][0:2] == [5, 0.6] and rows["Reviewer B"][2] == within_bucket(9 * H)
    assert rows["Reviewer B"][3] == 2


def test_rejections_by_reason(report):
    assert sorted(report.tables["reasons"].rows) == [["name_mismatch", 1], ["unreadable", 1]]


def test_now_snapshot_and_backlog_by_age(report):
    snap = report.snapshot
    assert (snap["open"], snap["unclaimed"], snap["at_risk"], snap["breached"]) == (3, 3, 1, 1)
    assert snap["second_approval"] == 0 and snap["needs_info"] == 0
    assert snap["oldest_seconds"] == pytest.approx(13 * H, abs=1)
    assert report.tables["backlog"].rows == [
        ["0–3", 1],
        ["3–6", 0],
        ["6–9", 0],
        ["9–12", 1],
        ["12–24", 1],
        ["24–48", 0],
        ["48+", 0],
    ]


def test_staffing_uses_erlang_c_on_the_range_arrival_rate(report):
    staffing = report.staffing
    # 13 cases opened in 72 hours; overall median handling 4 h.
    assert staffing["arrivals_per_hour"] == pytest.approx(13 / 72)
    assert staffing["handling_seconds"] == within_bucket(4 * H)
    assert staffing["load"] == pytest.approx(13 / 72 * staffing["handling_seconds"] / H)
    # By hand: c=1 meets the 8 h wait budget for 58.5 % of cases, c=2 for 98.5 %.
    assert staffing["needed"] == 2
    assert staffing["actual_average"] == 2


def test_erlang_c_matches_the_textbook_value():
    # 2 Erlangs offered to 3 servers: P(wait) = 4/9.
    assert services.erlang_c(3, 2.0) == pytest.approx(4 / 9)
    assert services.erlang_c(2, 2.0) == 1.0


def test_no_staffing_figure_when_handling_alone_exceeds_the_sla():
    assert services.reviewers_needed(1.0, 13.0, 12.0) is None
    assert services.reviewers_needed(0.0, 1.0, 12.0) is None
    assert services.reviewers_needed(10.0, 1.0, 12.0) >= 11


def test_days_follow_the_viewer_time_zone(fixed_data, now):
    # In Tokyo (UTC+9) the first cases were decided on 03-01 too, but the
    # 20 h case (decided 20:09 UTC) falls on 03-02 local time.
    rng = services.DateRange(date(2026, 3, 1), date(2026, 3, 2), "Asia/Tokyo")
    rows = {row[0]: row for row in services.build_report(rng, now).tables["daily"].rows}
    assert rows["2026-03-01"][2] + rows["2026-03-02"][2] == 10
    assert rows["2026-03-02"][2] >= 1


@pytest.mark.parametrize(
    "start,end,message",
    [
        ("2026-03-10", "2026-03-01", "The end date is before the start date."),
        ("2025-01-01", "2026-03-01", "A report can cover at most 366 days."),
        ("2026-02-30", "", "Dates must be written as year-month-day"),
        ("yesterday", "", "Dates must be written as year-month-day"),
        ("0001-01-01", "0001-01-02", "Reports cover days from 2000-01-01 to 2099-12-31."),
        ("9999-12-30", "9999-12-31", "Reports cover days from 2000-01-01 to 2099-12-31."),
        ("", "0001-01-01", "Reports cover days from 2000-01-01 to 2099-12-31."),
    ],
)
def test_bad_date_ranges_are_refused_with_a_clear_message(app, start, end, message):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        with pytest.raises(services.ReportError) as raised:
            services.parse_range(start, end, today=date(2026, 3, 2), tz="UTC")
        assert message in str(raised.value)


def test_default_range_is_the_last_fourteen_days(app):
    rng = services.parse_range("", "", today=date(2026, 3, 2), tz="Asia/Tokyo")
    assert (rng.start, rng.end) == (date(2026, 2, 17), date(2026, 3, 2))
    assert rng.start_utc.isoformat() == "2026-02-16T15:00:00+00:00"
