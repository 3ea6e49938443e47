#!/usr/bin/env python3
"""Benchmark (not a test): what one update of "where your case stands" costs
with 100,000 open cases, on SQLite and PostgreSQL.

    /work/main/.venv/bin/python bench/standing.py [--open 100000] [--repeats 50]
                                                  [--postgres postgresql://user@host/db]

The open cases (two thirds waiting, one third in review, submitted over the
last 12.5 hours) and 10,000 cases decided over the last 14 days are made with
bench/sla.py's set-based inserts; then the statistics are refreshed (ANALYZE;
VACUUM ANALYZE on PostgreSQL, as autovacuum would after such a load). The
PostgreSQL database given is wiped.

Measured for a case at the front of the queue, in the middle and at the back
(the count reads one index entry per case ahead):

* the update's statement alone (``standing.read``), median of ``--repeats``;
* the whole update through the WSGI app, as the page asks for it (a
  signed-in seller, the estimate's inputs already kept), median of
  ``--repeats``, with its statements counted at the driver;
* the estimate's inputs (``standing.estimate_inputs``, once a minute per
  process), median of 5;

and the plan each database chose for the update's statement.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the project's packages (recovery_app, tests) when run as a script

from sqlalchemy import event, select, text  # noqa: E402
from sqlalchemy.dialects import postgresql, sqlite  # noqa: E402

from recovery_app.extensions import db  # noqa: E402


def _sla_bench():
    """bench/sla.py, for its app factory, its people and its bulk inserts."""
    spec = importlib.util.spec_from_file_location("bench_sla", ROOT / "bench" / "sla.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sla = _sla_bench()


def timed(call, repeats: int) -> tuple[float, int]:
    """(median seconds, statements of one call) over ``repeats`` calls."""
    counter = sla.Counter()
    runs = []
    for index in range(repeats):
        if index == 0:
            event.listen(db.engine, "before_cursor_execute", counter)
        started = time.perf_counter()
        call()
        runs.append(time.perf_counter() - started)
        if index == 0:
            event.remove(db.engine, "before_cursor_execute", counter)
    return statistics.median(runs), counter.count


def refresh_statistics(dialect: str) -> None:
    db.session.commit()
    if dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE cases"))
    else:
        db.session.execute(text("ANALYZE"))
        db.session.commit()


def plan(dialect: str, statement) -> str:
    if dialect == "postgresql":
        compiled = statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        rows = db.session.execute(text(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {compiled}"))
        return "\n".join(f"      {row[0]}" for row in rows)
    compiled = statement.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
    rows = db.session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
    return "\n".join(f"      {row[-1]}" for row in rows)


def positions() -> dict[str, str]:
    """References of waiting cases at the front, the middle and the back of the queue."""
    order = select(text("reference")).select_from(text("cases")).where(text("status = 'submitted'"))
    waiting = db.session.execute(text("SELECT count(*) FROM cases WHERE status = 'submitted'")).scalar()
    picked = {}
    for name, offset in (("front", 0), ("middle", waiting // 2), ("back", waiting - 1)):
        picked[name] = db.session.execute(order.order_by(text("due_at, id")).limit(1).offset(offset)).scalar()
    return picked


def bench(dialect: str, url: str, open_count: int, repeats: int, tmp: Path) -> None:
    from recovery_app.models import Case, User
    from recovery_app.models.base import utcnow
    from recovery_app.recovery import standing

    app = sla.make_app(url, tmp)
    with app.app_context():
        now = utcnow().replace(microsecond=0)
        made = sla.people(now)
        seller_id = made["seller_owner"][0].id
        reviewer_ids = [user.id for user in made["reviewer"]]
        started = time.perf_counter()
        sla.fill_open(dialect, open_count, now, seller_id)
        sla.fill_decided(dialect, 10_000, now, seller_id, reviewer_ids)
        refresh_statistics(dialect)
        filled = time.perf_counter() - started
        open_cases = db.session.execute(
            text("SELECT count(*) FROM cases WHERE status IN ('submitted', 'in_review')")
        ).scalar()
        picked = positions()
        seller = db.session.get(User, seller_id)
        print(f"{dialect}: {open_cases:,} open cases, 10,000 decided (made in {filled:.1f} s)")

        inputs_time, inputs_statements = timed(lambda: standing.estimate_inputs(utcnow()), 5)
        inputs = standing.estimate_inputs(utcnow())
        print(
            f"  estimate's inputs: {inputs_time * 1000:.1f} ms, {inputs_statements} statements (once a minute "
            f"per process): {inputs.arrivals_per_hour:.1f} cases an hour, median handling "
            f"{(inputs.handling_seconds or 0) / 60:.1f} min, {inputs.on_duty} reviewers on duty"
        )
        for name, reference in picked.items():
            found = standing.read(seller_id, reference)
            alone, statements = timed(lambda reference=reference: standing.read(seller_id, reference), repeats)
            print(
                f"  {name:>6} of the queue ({found.ahead:>6,} cases ahead): the update's statement "
                f"{alone * 1000:7.2f} ms ({statements} statement)"
            )
        statement = select(Case.reference, standing._ahead().label("ahead")).where(
            Case.reference == picked["back"], Case.user_id == seller_id
        )
        print("    plan of the update's statement (case at the back):")
        print(plan(dialect, statement))
        db.session.remove()

    client = sla.signed_in_client(app, seller.id, now)
    for name, reference in picked.items():
        path = f"/recovery/case/{reference}/standing"
        assert client.get(path).status_code == 200  # the first update keeps the inputs for a minute

        def ask(path=path):
            response = client.get(path, headers={"Accept-Language": "en"})
            assert response.status_code == 200, response.status_code

        with app.app_context():
            whole, statements = timed(ask, repeats)
        print(
            f"  {name:>6}: whole update through the app {whole * 1000:7.2f} ms, {statements} statements "
            f"(the session check and the update's one)"
        )
    with app.app_context():
        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--postgres", default="", help="a PostgreSQL URL to use (its schema is wiped)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-standing-"))
    bench("sqlite", f"sqlite:///{tmp / 'bench.db'}", args.open, args.repeats, tmp)
    if args.postgres:
        bench(
            "postgresql",
            args.postgres.replace("postgresql://", "postgresql+psycopg://", 1),
            args.open,
            args.repeats,
            tmp,
        )


if __name__ == "__main__":
    main()
