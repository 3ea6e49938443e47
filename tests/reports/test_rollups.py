"""The reports' daily rollups: they equal a recomputation from the cases, a
decision moves today's and a past day's figures as it happens, and the
scheduler's job and the rebuild command change nothing when run again."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from recovery_app.extensions import db
from recovery_app.models import ReportRollup, ReportRollupMark
from recovery_app.reports import measures, rollups, services
from recovery_app.review import claims, decisions
from recovery_app.scheduler import jobs

H = 3600


def stored(zone: str) -> dict:
    rows = db.session.execute(select(ReportRollup).where(ReportRollup.zone == zone)).scalars()
    return {(r.day, r.measure, r.reviewer_id, r.key): r.n for r in rows if r.n}


def recomputed(zone: str) -> dict:
    """The rows the rollup must hold: every event in the zone's marked span, from the cases."""
    mark = rollups.marks()[zone]
    start, end = mark.rolled_from, mark.rolled_until
    at = start.astimezone(ZoneInfo(zone)).date()
    return {
        (day, measure, reviewer, key): n
        for day, measure, reviewer, key, n in rollups.live(zone, at, [(start, end)])
        if n
    }


# In Tokyo two of the ten decisions (15:07 and 20:09 UTC) fall on 03-02.
@pytest.mark.parametrize("zone,decided_0301", [("UTC", 10), ("Asia/Tokyo", 8)])
def test_the_rollup_equals_a_recomputation_from_the_cases(fixed_data, now, zone, decided_0301):
    result = rollups.roll_up(now)
    assert result["seconds_rolled_up"][zone] > 0
    mark = rollups.marks()[zone]
    assert mark.rolled_until == now - rollups.SETTLE
    assert mark.rolled_from == datetime.combine(date(2026, 2, 20), time(), ZoneInfo(zone)).astimezone(UTC)
    rolled = stored(zone)
    assert rolled == recomputed(zone)
    assert (
        sum(n for (day, measure, _, _), n in rolled.items() if measure == "decided" and day == "2026-03-01")
        == decided_0301
    )


def test_a_decision_updates_todays_and_a_past_days_figures(fixed_data, now, make):
    reviewer = fixed_data["reviewers"][0]
    late = make.case(submitted_at=datetime(2026, 3, 1, 22, tzinfo=UTC))  # yesterday, not yet claimed
    rollups.roll_up(now)
    rng = services.DateRange(date(2026, 3, 1), date(2026, 3, 2), "UTC")
    before = services.build_report(rng, now)
    assert before.rolled_days == 1 and before.live_days == 1 and before.first_claim["n"] == 10

    # The first claim counts on the day the case was submitted, which the rollup
    # already holds: the claim adds it there.
    claims.claim(late.reference, reviewer, now=now)
    assert stored("UTC")[("2026-03-01", "first_claim_max", 0, "")] == 11 * H
    decided_at = now + timedelta(hours=1)
    decisions.reject(late.reference, reviewer, "unreadable", "Please send a sharper photo.", now=decided_at)

    after = services.build_report(rng, decided_at)
    assert after.first_claim["n"] == 11
    today = {row[0]: row for row in after.tables["daily"].rows}["2026-03-02"]
    assert today[2] == 1 and today[6] == 1  # decided today, counted from the cases until the job runs
    assert dict(after.tables["reasons"].rows)["unreadable"] == 2
    assert ("2026-03-02", "decided", 0, "rejected") not in stored("UTC")

    # The job rolls the decision up; the page shows the same figures, and the rollup equals the cases.
    rollups.roll_up(decided_at + timedelta(minutes=5))
    rows = stored("UTC")
    assert rows[("2026-03-02", "decided", 0, "rejected")] == 1
    assert rows[("2026-03-02", "by_reviewer", reviewer.id, "rejected")] == 1
    assert rows == recomputed("UTC")
    later = services.build_report(rng, decided_at + timedelta(minutes=5))
    assert later.tables["daily"].rows == after.tables["daily"].rows
    assert later.decision_times == after.decision_times


def test_a_decision_behind_the_mark_is_added_to_the_rollup(fixed_data, now, make):
    reviewer = fixed_data["reviewers"][1]
    case = make.case(submitted_at=now - timedelta(hours=3))
    rollups.roll_up(now + timedelta(hours=2))
    # A decision whose time the rollups already cover (a clock behind the job's).
    claims.claim(case.reference, reviewer, now=now - timedelta(hours=2))
    decisions.reject(case.reference, reviewer, "name_mismatch", "The names differ.", now=now - timedelta(hours=1))
    rows = stored("UTC")
    assert rows[("2026-03-02", "decided", 0, "rejected")] == 1
    assert rows[("2026-03-02", "reason", 0, "name_mismatch")] == 1
    assert rows[("2026-03-02", "handling", reviewer.id, str(measures.bucket_of(H)))] == 1
    assert rows == recomputed("UTC")


def test_the_rollup_job_is_idempotent(fixed_data, now):
    first = jobs.roll_up_reports(now)
    rows = stored("UTC"), stored("Asia/Tokyo")
    again = jobs.roll_up_reports(now)
    assert all(first["seconds_rolled_up"].values())
    assert again == {"seconds_rolled_up": {"Asia/Tokyo": 0, "UTC": 0}}
    assert (stored("UTC"), stored("Asia/Tokyo")) == rows
    rollups.rebuild(now)
    assert (stored("UTC"), stored("Asia/Tokyo")) == rows


def test_rebuild_command_rolls_up_from_the_first_case(fixed_data, runner):
    result = runner.invoke(args=["reports", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "UTC: rolled up" in result.output
    mark = db.session.execute(select(ReportRollupMark).where(ReportRollupMark.zone == "UTC")).scalar_one()
    assert mark.rolled_from == datetime(2026, 2, 20, tzinfo=UTC)
    assert stored("UTC") == recomputed("UTC")


def test_a_viewer_in_a_zone_without_rollups_gets_figures_from_the_cases(fixed_data, now):
    rollups.roll_up(now)
    rng = services.DateRange(date(2026, 2, 28), date(2026, 3, 2), "America/New_York")
    report = services.build_report(rng, now)
    assert report.rolled_days == 0 and report.live_days == 3
    assert report.decision_times["n"] == 10


@pytest.mark.parametrize("seconds", [0, 59, 60, 3599, 3600, 5 * H, 6 * H - 1, 13 * H, 47 * H, 49 * H, 40 * 24 * H])
def test_buckets_hold_their_value_and_state_their_error(seconds):
    low, high = measures.bucket_bounds(measures.bucket_of(seconds))
    assert low <= seconds and (high is None or seconds < high)
    if high is not None:
        assert measures.bucket_error(seconds) == (high - low) / 2
        assert measures.bucket_error(seconds) <= max(30, 0.042 * seconds)


def test_sql_buckets_match_python_buckets(app, now, make):
    from sqlalchemy import literal

    for seconds in (0, 59, 60, 3599, 3600, 18000, 21599, 21600, 172799, 172800, 2592000, 3000000):
        got = db.session.execute(select(measures.bucket(literal(float(seconds))))).scalar()
        assert got == measures.bucket_of(seconds), seconds
