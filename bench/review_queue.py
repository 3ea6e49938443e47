"""Benchmark: the reviewers' queue page with 1,000 and with 100,000 open cases.

    python bench/review_queue.py                      # SQLite only
    python bench/review_queue.py --postgresql postgresql://postgres@127.0.0.1:5432/rd_bench
        # (uses the databases rd_bench_1000 and rd_bench_100000)

Each database is emptied and migrated, filled with open cases (mostly waiting,
some in review, some waiting on the seller), and the real page is requested
through the whole Flask stack as a signed-in reviewer. Printed per database
and size: the median and p90 time of the first page, of a later page (keyset
cursor) and of the "breached" filter, the ratio between the two sizes
(target: under 1.5), and the number of SQL statements per page, which must
not grow with the number of cases or rows shown.

Each size gets its own database and the requests to the sizes are interleaved,
so that other load on the machine falls on both sizes alike. On PostgreSQL the
databases <name>_<size> are DROPPED AND RECREATED: use a name kept for this.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the project's packages (recovery_app, tests) when run as a script

import argparse
import base64
import random
import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, event, insert, text  # noqa: E402

from recovery_app import create_app, lifecycle  # noqa: E402
from recovery_app.extensions import db  # noqa: E402

PAGES = {"first page": "/review/", "later page": None, "breached": "/review/?breached=1"}
QUERY_ONLY = "query only"  # services.queue_page alone: the database's share of the first page


def config(url: str, tmp: Path) -> dict:
    return {
        "RECOVERY_ENV": "testing",
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "bench-" + "x" * 40,
        "RECOVERY_VAULT_KEY": base64.urlsafe_b64encode(b"b" * 32).decode(),
        "RECOVERY_INSTANCE_DIR": str(tmp / "instance"),
        "RECOVERY_UPLOAD_DIR": str(tmp / "uploads"),
    }


def fresh_database(url: str, tmp: Path):
    """An app on an empty, migrated database at ``url`` (created, or dropped and recreated)."""
    import flask_migrate
    from sqlalchemy.engine import make_url

    target = make_url(url)
    if target.get_backend_name() == "postgresql":
        server = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}"'))
            connection.execute(text(f'CREATE DATABASE "{target.database}"'))
        server.dispose()
    app = create_app(config(url, tmp))
    with app.app_context():
        flask_migrate.upgrade()
    return app


def add_cases(count: int, seller_id: int, reviewer_ids: list[int], now: datetime, references: set[str]) -> None:
    """Open cases spread over the last 20 hours: 85% waiting, 10% in review, 5% waiting on the seller."""
    rng = random.Random(count)
    sla = timedelta(hours=12)
    rows = []
    for _ in range(count):
        reference = lifecycle.new_reference()
        while reference in references:
            reference = lifecycle.new_reference()
        references.add(reference)
        submitted = now - timedelta(seconds=rng.randrange(0, 20 * 3600))
        roll = rng.random()
        status = "submitted" if roll < 0.85 else "in_review" if roll < 0.95 else "needs_info"
        rows.append(
            {
                "reference": reference,
                "user_id": seller_id,
                "document_type": "passport",
                "status": status,
                "high_risk": False,
                "risk_reasons": [],
                "created_at": submitted,
                "submitted_at": submitted,
                "clock_started_at": submitted,
                "paused_seconds": 0,
                "due_at": submitted + sla,
                "claimed_by_id": rng.choice(reviewer_ids) if status == "in_review" else None,
                "claimed_at": now if status == "in_review" else None,
                "paused_since": now - timedelta(hours=1) if status == "needs_info" else None,
            }
        )
        if len(rows) == 5000:
            db.session.execute(insert(lifecycle.Case), rows)
            rows = []
    if rows:
        db.session.execute(insert(lifecycle.Case), rows)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE cases"))
    else:
        db.session.execute(text("ANALYZE"))
        db.session.commit()


def signed_in_client(app, reviewer):
    from recovery_app.auth.sessions import SID_KEY, token_hash
    from recovery_app.models import UserSession
    from recovery_app.models.base import utcnow

    token = secrets.token_urlsafe(32)
    db.session.add(
        UserSession(
            user_id=reviewer.id,
            token_hash=token_hash(token),
            created_at=utcnow(),
            last_seen_at=utcnow(),
            address="127.0.0.1",
            browser="bench",
        )
    )
    db.session.commit()
    client = app.test_client()
    with client.session_transaction() as session:
        session[SID_KEY] = token
        session["_user_id"] = reviewer.get_id()
    return client


def timed_request(app, client, path: str) -> tuple[float, int, int]:
    """(milliseconds, SQL statements, queue rows shown) for one request of ``path``."""
    statements = 0

    def count(*_args):
        nonlocal statements
        statements += 1

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            started = time.perf_counter()
            response = client.get(path)
            elapsed = (time.perf_counter() - started) * 1000
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
    assert response.status_code == 200, (path, response.status_code)
    return elapsed, statements, response.get_data(as_text=True).count('class="queue-row')


def timed_query(app) -> tuple[float, int, int]:
    """The first page's query alone, without the web stack: (milliseconds, statements, rows)."""
    from recovery_app.models import User
    from recovery_app.review import services

    with app.test_request_context():
        reviewer = db.session.get(User, 2)
        statements = 0

        def count(*_args):
            nonlocal statements
            statements += 1

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            started = time.perf_counter()
            page = services.queue_page(reviewer, services.QueueFilters(), datetime.now(UTC))
            elapsed = (time.perf_counter() - started) * 1000
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        db.session.remove()
    return elapsed, statements, len(page.rows)


def later_page(client) -> str:
    html = client.get("/review/").get_data(as_text=True)
    start = html.index("after=")
    return "/review/?" + html[start : html.index('"', start)].replace("&amp;", "&")


def prepare(url: str, size: int, tmp: Path):
    """An app whose database holds ``size`` open cases, and a reviewer's signed-in client."""
    from recovery_app.auth.users import create_user, get_or_create_account

    app = fresh_database(url, tmp)
    with app.app_context():
        now = datetime.now(UTC)
        account = get_or_create_account("Bench Shop", now)
        seller = create_user(
            email="seller@bench.example",
            password="x",
            role="seller_owner",
            account=account,
            now=now,
            check_password=False,
        )
        reviewers = [
            create_user(
                email=f"r{n}@bench.example", password="x", role="reviewer", now=now, check_password=False, locale="en"
            )
            for n in range(10)
        ]
        for reviewer in reviewers:
            reviewer.must_enroll_2sv = False
        db.session.commit()
        started = time.perf_counter()
        add_cases(size, seller.id, [r.id for r in reviewers], now, set())
        print(f"  {size:>7,} open cases written in {time.perf_counter() - started:.1f} s", flush=True)
        client = signed_in_client(app, reviewers[0])
        paths = dict(PAGES, **{"later page": later_page(client)})
    return app, client, paths


def run(name: str, urls: dict[int, str], repeats: int) -> dict:
    """Requests to every size interleaved, so that load on the machine hits each size alike."""
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        setups = {size: prepare(url, size, Path(tmp) / str(size)) for size, url in urls.items()}
        samples = {(size, label): [] for size in urls for label in (*PAGES, QUERY_ONLY)}
        statements: dict = {}
        rows: dict = {}
        for round_ in range(repeats + 3):
            for size, (app, client, paths) in setups.items():
                for label, path in paths.items():
                    elapsed, count, shown = timed_request(app, client, path)
                    if round_ >= 3:  # three warm-up rounds
                        samples[size, label].append(elapsed)
                    statements[size, label], rows[size, label] = count, shown
                elapsed, count, shown = timed_query(app)
                if round_ >= 3:
                    samples[size, QUERY_ONLY].append(elapsed)
                statements[size, QUERY_ONLY], rows[size, QUERY_ONLY] = count, shown
        for (size, label), times in samples.items():
            times.sort()
            results.setdefault(size, {})[label] = (
                statistics.median(times),
                times[max(0, int(len(times) * 0.9) - 1)],
                statements[size, label],
                rows[size, label],
            )
        for app, _, _ in setups.values():
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    return results


def report(name: str, results: dict, sizes: list[int]) -> None:
    small, large = sizes[0], sizes[-1]
    print(f"\n{name}")
    print(f"  {'page':<12} {'cases':>8} {'median ms':>10} {'p90 ms':>8} {'SQL/page':>9} {'rows':>5}")
    for label in (*PAGES, QUERY_ONLY):
        for size in sizes:
            median, p90, statements, rows = results[size][label]
            print(f"  {label:<12} {size:>8,} {median:>10.2f} {p90:>8.2f} {statements:>9} {rows:>5}")
        ratio = results[large][label][0] / results[small][label][0]
        print(f"  {label:<12} ratio {large:,} / {small:,}: {ratio:.2f} (target < 1.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--postgresql",
        metavar="URL",
        help="PostgreSQL server and database name prefix: databases <name>_<size> are DROPPED and recreated (optional)",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--repeats", type=int, default=30, help="timed requests per page and size")
    args = parser.parse_args()
    sizes = sorted(args.sizes)
    if len(sizes) < 2 or sizes[0] < 60:
        parser.error("give at least two sizes of 60 cases or more")
    targets = [("SQLite", None)]
    if args.postgresql:
        url = args.postgresql
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        targets.append(("PostgreSQL", url))
    print(f"Queue page benchmark: sizes {', '.join(f'{s:,}' for s in sizes)}, {args.repeats} timed requests each")
    for name, url in targets:
        print(name, flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            if url is None:
                urls = {size: f"sqlite:///{tmp}/bench-{size}.db" for size in sizes}
            else:
                urls = {size: f"{url}_{size}" for size in sizes}
            results = run(name, urls, args.repeats)
        report(name, results, sizes)


if __name__ == "__main__":
    main()
