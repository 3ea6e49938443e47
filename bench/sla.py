#!/usr/bin/env python3
"""Benchmark (not a test): the SLA sweep over many open cases, and the
managers' dashboard over many decided cases, on SQLite and PostgreSQL.

    .venv/bin/python bench/sla.py [--open 100000] [--changes 1000] [--decided 10000,1000000]
                                  [--postgres postgresql://user@host/db]

Rows are generated with set-based INSERT … SELECT (a recursive CTE on SQLite,
generate_series on PostgreSQL). The PostgreSQL database given is wiped.

Sweep: open cases are submitted uniformly over the last 12.5 hours, with the
at-risk and breached flags the previous sweeps would have set, so the measured
sweep does one minute's work (cases that crossed 75% or 100% of the SLA in the
last minute). Statements are counted at the database driver. A second sweep
(nothing to do) shows the fixed cost, which must not depend on the number of
open cases: it is measured at a tenth of the cases too. Then a sweep that has
``--changes`` cases to change at once (1,000: the minute's work plus cases whose
flags are cleared, as if the scheduler had been stopped for a while) shows that
its statements do not grow with the cases it changes.

Dashboard: the full page (HTTP, signed-in manager, default 14-day range) over
N decided cases spread over those 14 days; the median of 3 requests. The rows
are inserted directly, as older data would be, so the scheduler's rollup job
(``flask reports rebuild``) runs once before the page is measured: the page
reads the daily rollups up to two minutes before now, and counts the rest
from the cases. ``--open 0``
skips the sweep.
"""

from __future__ import annotations

import argparse
import base64
import secrets
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the project's packages (recovery_app, tests) when run as a script

from sqlalchemy import create_engine, event, text  # noqa: E402

from recovery_app import create_app  # noqa: E402
from recovery_app.extensions import db  # noqa: E402

SEQ = {
    "sqlite": "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < :count) ",
    "postgresql": "WITH seq(n) AS (SELECT CAST(generate_series(1, :count) AS bigint)) ",
}


def minutes_before(dialect: str, column_minutes: str) -> str:
    """SQL for ':now minus <expr> minutes' in each dialect."""
    if dialect == "sqlite":
        return f"strftime('%Y-%m-%d %H:%M:%f', :now, (-({column_minutes})) || ' minutes')"
    return f"(CAST(:now AS timestamptz) - ({column_minutes}) * interval '1 minute')"


def make_app(url: str, tmp: Path):
    import flask_migrate

    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    app = create_app(
        {
            "RECOVERY_ENV": "testing",
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench-" + "x" * 40,
            "RECOVERY_VAULT_KEY": base64.urlsafe_b64encode(b"b" * 32).decode(),
            "RECOVERY_INSTANCE_DIR": str(tmp / "instance"),
            "RECOVERY_UPLOAD_DIR": str(tmp / "uploads"),
            "WTF_CSRF_ENABLED": False,
        }
    )
    with app.app_context():
        flask_migrate.upgrade()
    return app


def people(now):
    from recovery_app.auth.users import get_or_create_account
    from recovery_app.models import User

    account = get_or_create_account("Bench Shop", now)
    made = {}
    for role, email in (
        ("seller_owner", "seller@bench.example"),
        ("manager", "manager@bench.example"),
        *(("reviewer", f"reviewer{i}@bench.example") for i in range(10)),
    ):
        user = User(
            email=email,
            password_hash="-",
            role=role,
            account=account if role == "seller_owner" else None,
            display_name=email.split("@")[0],
            romanised_name="",
            locale="en",
            time_zone="UTC",
            must_enroll_2sv=False,
            session_epoch=0,
            created_at=now,
        )
        db.session.add(user)
        made.setdefault(role, []).append(user)
    db.session.commit()
    return made


def fill_open(dialect: str, count: int, now, seller_id: int) -> None:
    """Open cases submitted uniformly over the last 750 minutes, flagged as earlier sweeps left them."""
    age = "(n % 750)"
    submitted = minutes_before(dialect, age)
    due = minutes_before(dialect, f"{age} - 720")
    flagged_risk = minutes_before(dialect, f"{age} - 540")
    flagged_breach = minutes_before(dialect, f"{age} - 720")
    sql = (
        SEQ[dialect]
        + f"""
        INSERT INTO cases (reference, user_id, document_type, status, high_risk, risk_reasons, created_at,
                           submitted_at, clock_started_at, paused_seconds, due_at, at_risk_at, breached_at,
                           escalated_at)
        SELECT 'O' || n, :seller, 'passport', CASE WHEN n % 3 = 0 THEN 'in_review' ELSE 'submitted' END, false, '[]',
               {submitted}, {submitted}, {submitted}, 0, {due},
               CASE WHEN {age} > 541 THEN {flagged_risk} END,
               CASE WHEN {age} > 721 THEN {flagged_breach} END,
               CASE WHEN {age} > 721 THEN {flagged_breach} END
        FROM seq"""
    )
    db.session.execute(
        text(sql),
        {
            "count": count,
            "now": now.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else now,
            "seller": seller_id,
        },
    )
    db.session.commit()


def fill_decided(dialect: str, count: int, now, seller_id: int, reviewer_ids: list[int]) -> None:
    """Decided cases over the last 14 days: clock time 10 min to 16 h, a quarter rejected."""
    start = "((n * 7919) % 20160)"  # minutes before now the case was submitted
    wall = "(10 + (n * 104729) % 950)"  # minutes to decision
    submitted = minutes_before(dialect, start)
    claimed = minutes_before(dialect, f"{start} - ({wall}) / 3")
    decided = minutes_before(dialect, f"{start} - {wall}")
    due = minutes_before(dialect, f"{start} - 720")
    reviewers = len(reviewer_ids)
    sql = (
        SEQ[dialect]
        + f"""
        INSERT INTO cases (reference, user_id, document_type, status, high_risk, risk_reasons, created_at,
                           submitted_at, clock_started_at, paused_seconds, due_at, first_claimed_at, decided_at,
                           decided_by_id, decision, reason_code, closed_at)
        SELECT 'D' || n, :seller, 'passport', CASE WHEN n % 4 = 0 THEN 'rejected' ELSE 'approved' END, false, '[]',
               {submitted}, {submitted}, {submitted}, 0, {due}, {claimed}, {decided},
               {min(reviewer_ids)} + (n % {reviewers}), CASE WHEN n % 4 = 0 THEN 'rejected' ELSE 'approved' END,
               CASE WHEN n % 4 = 0 THEN 'unreadable' END, {decided}
        FROM seq WHERE {start} >= {wall}"""
    )
    db.session.execute(
        text(sql),
        {
            "count": count,
            "now": now.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else now,
            "seller": seller_id,
        },
    )
    db.session.commit()


class Counter:
    def __init__(self):
        self.count = 0

    def __call__(self, *args):
        self.count += 1


def counted(callable_):
    counter = Counter()
    event.listen(db.engine, "before_cursor_execute", counter)
    started = time.perf_counter()
    try:
        result = callable_()
    finally:
        elapsed = time.perf_counter() - started
        event.remove(db.engine, "before_cursor_execute", counter)
    return result, elapsed, counter.count


def bench_sweep(app, dialect: str, open_count: int, changes: int) -> None:
    from recovery_app.models.base import utcnow
    from recovery_app.scheduler import jobs

    with app.app_context():
        now = utcnow().replace(microsecond=0)
        made = people(now)
        for count in (open_count // 10, open_count):
            db.session.execute(text("DELETE FROM cases"))
            db.session.commit()
            started = time.perf_counter()
            fill_open(dialect, count, now - timedelta(seconds=1), made["seller_owner"][0].id)
            filled = time.perf_counter() - started
            result, elapsed, statements = counted(lambda: (jobs.sla_sweep(now), db.session.commit())[0])
            _, idle_elapsed, idle_statements = counted(lambda: (jobs.sla_sweep(now), db.session.commit())[0])
            print(
                f"  sweep, {count:>9,} open cases (filled in {filled:5.1f} s): one minute's work "
                f"{elapsed * 1000:8.1f} ms, {statements:5d} statements ({result['at_risk']} at risk, "
                f"{result['breached']} breached); nothing to do: "
                f"{idle_elapsed * 1000:7.1f} ms, {idle_statements} statements"
            )
        if changes:
            db.session.execute(text("DELETE FROM cases"))
            db.session.execute(text("DELETE FROM outbox"))
            db.session.commit()
            fill_open(dialect, open_count, now - timedelta(seconds=1), made["seller_owner"][0].id)
            behind(dialect, now, changes)
            result, elapsed, statements = counted(lambda: (jobs.sla_sweep(now), db.session.commit())[0])
            notices = db.session.execute(text("SELECT count(*) FROM outbox")).scalar()
            db.session.commit()
            print(
                f"  sweep, {open_count:>9,} open cases, {result['at_risk'] + result['breached']:,} changes at once "
                f"({result['at_risk']} at risk, {result['breached']} breached): {elapsed * 1000:8.1f} ms, "
                f"{statements} statements, {notices} notices"
            )
            from recovery_app import audit

            checked = audit.verify()
            db.session.commit()
            print(
                f"  audit chain after the sweeps: {'holds' if checked.ok else 'BROKEN'} ({checked.checked:,} entries)"
            )
        db.session.execute(text("DELETE FROM cases"))
        db.session.commit()


def behind(dialect: str, now, changes: int) -> None:
    """Clear the flags of breached cases until the next sweep has ``changes`` cases to change."""
    from recovery_app import lifecycle

    when = now.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else now
    margin = now + lifecycle.at_risk_margin()
    pending = db.session.execute(
        text(
            "SELECT count(*) FROM cases WHERE status IN ('submitted', 'in_review') AND "
            "((breached_at IS NULL AND due_at <= :now) OR (at_risk_at IS NULL AND due_at <= :margin))"
        ),
        {"now": when, "margin": margin.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else margin},
    ).scalar()
    db.session.execute(
        text(
            "UPDATE cases SET at_risk_at = NULL, breached_at = NULL, escalated_at = NULL WHERE id IN "
            "(SELECT id FROM cases WHERE breached_at IS NOT NULL ORDER BY id LIMIT :more)"
        ),
        {"more": max(changes - pending, 0)},
    )
    db.session.commit()


def signed_in_client(app, manager_id: int, now):
    from recovery_app.auth.sessions import SID_KEY, token_hash
    from recovery_app.models import User, UserSession

    with app.app_context():
        token = secrets.token_urlsafe(32)
        manager = db.session.get(User, manager_id)
        db.session.add(
            UserSession(
                user_id=manager.id,
                token_hash=token_hash(token),
                created_at=now,
                last_seen_at=now,
                address="127.0.0.1",
                browser="bench",
            )
        )
        db.session.commit()
        user_key = manager.get_id()
    client = app.test_client()
    with client.session_transaction() as sess:
        sess[SID_KEY] = token
        sess["_user_id"] = user_key
        sess["_fresh"] = True
    return client


def bench_dashboard(app, dialect: str, sizes: list[int]) -> None:
    from recovery_app.models.base import utcnow

    with app.app_context():
        now = utcnow().replace(microsecond=0)
        seller = db.session.execute(text("SELECT id FROM users WHERE role = 'seller_owner'")).scalar()
        manager = db.session.execute(text("SELECT id FROM users WHERE role = 'manager'")).scalar()
        reviewers = list(db.session.execute(text("SELECT id FROM users WHERE role = 'reviewer'")).scalars())
    client = signed_in_client(app, manager, now)
    client.get("/reports/")  # warm up: the session row is touched on its first request
    timings = {}
    for size in sizes:
        with app.app_context():
            db.session.execute(text("DELETE FROM cases"))
            db.session.commit()
            started = time.perf_counter()
            fill_decided(dialect, size, now, seller, reviewers)
            if dialect == "postgresql":
                db.session.execute(text("ANALYZE cases"))
            else:
                db.session.execute(text("ANALYZE"))
            db.session.commit()
            filled = time.perf_counter() - started
            decided = db.session.execute(text("SELECT count(*) FROM cases")).scalar()
            from recovery_app.reports import rollups

            started = time.perf_counter()
            rollups.rebuild(now)
            db.session.commit()
            rolled = time.perf_counter() - started
            today = db.session.execute(
                text("SELECT count(*) FROM cases WHERE decided_at >= :midnight"),
                {
                    "midnight": now.replace(hour=0, minute=0, second=0).strftime("%Y-%m-%d %H:%M:%S")
                    if dialect == "sqlite"
                    else now.replace(hour=0, minute=0, second=0)
                },
            ).scalar()
        runs = []
        statements = 0
        for _ in range(3):
            counter = Counter()
            with app.app_context():
                event.listen(db.engine, "before_cursor_execute", counter)
            started = time.perf_counter()
            response = client.get("/reports/", headers={"Accept-Language": "en"})
            runs.append(time.perf_counter() - started)
            with app.app_context():
                event.remove(db.engine, "before_cursor_execute", counter)
            statements = counter.count
            assert response.status_code == 200, response.status_code
        timings[size] = statistics.median(runs)
        print(
            f"  dashboard, {decided:>9,} decided cases (filled in {filled:5.1f} s, rolled up in {rolled:5.1f} s, "
            f"{today:,} decided today): "
            f"{timings[size] * 1000:8.1f} ms per page (median of 3), {statements} statements"
        )
    if len(sizes) == 2:
        small, large = sizes
        print(
            f"  dashboard ratio {large:,} / {small:,} decided: {timings[large] / timings[small]:.1f}x "
            f"for {large / small:.0f}x the cases"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=1000, help="cases one sweep changes at once")
    parser.add_argument("--decided", default="10000,1000000")
    parser.add_argument("--postgres", default="", help="a PostgreSQL URL to use (its schema is wiped)")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    sizes = [int(size) for size in args.decided.split(",") if size]
    backends = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-sla-"))
    if args.only != "postgresql":
        backends.append(("sqlite", f"sqlite:///{tmp / 'bench.db'}"))
    if args.postgres and args.only != "sqlite":
        url = args.postgres.replace("postgresql://", "postgresql+psycopg://", 1)
        backends.append(("postgresql", url))
    for dialect, url in backends:
        print(f"{dialect}:")
        app = make_app(url, tmp)
        if args.open:
            bench_sweep(app, dialect, args.open, args.changes)
        else:
            with app.app_context():
                from recovery_app.models.base import utcnow

                people(utcnow().replace(microsecond=0))
        bench_dashboard(app, dialect, sizes)
        with app.app_context():
            db.engine.dispose()


if __name__ == "__main__":
    main()
