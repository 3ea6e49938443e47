"""The embedded default under a crowd: people signing in (and enrolling),
opening pages and signing out against a served app, with the in-process
scheduler running every job every 2 s, at 8 and at 32 at once.

    .venv/bin/python bench/concurrency.py [--seconds 60] [--database-url postgresql://…]

Each run uses a fresh database (a temporary SQLite file, or the PostgreSQL
database given, whose schema is dropped and rebuilt). Prints, per crowd size:
responses, server errors (5xx), completed sign-ins per second and the p50 and
p95 of one sign-in (password, then the code or the whole enrollment; the wait
for a fresh authenticator step is left out). A code works once per 30-second
step, so each person signs in at most about once per step: the sign-ins per
second are bounded by that, not by the server. argon2 runs with the
development parameters.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the project's packages (recovery_app, tests) when run as a script

from recovery_app import create_app  # noqa: E402
from recovery_app.extensions import db  # noqa: E402
from tests.helpers import base_config, reset_schema, sqlalchemy_url  # noqa: E402
from tests.served import Person, crowd, sellers, served  # noqa: E402


class TimedPerson(Person):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sign_in_seconds: list[float] = []

    def sign_in(self) -> bool:
        started, waited = time.perf_counter(), self.waited
        done = super().sign_in()
        if done:  # the server's part: time spent waiting for a fresh authenticator step is left out
            self.sign_in_seconds.append(time.perf_counter() - started - (self.waited - waited))
        return done


def run(database_url: str, people: int, seconds: float, tmp: Path) -> dict:
    reset_schema(database_url, tmp)
    config = {
        **base_config(database_url, tmp),
        "RECOVERY_ENV": "development",
        "TESTING": False,
        "RECOVERY_SCHEDULER": False,
    }  # the served helper runs the scheduler itself, every job every 2 s
    app = create_app(config)
    accounts = sellers(app, people)
    with served(app) as base:
        crowd_people = [TimedPerson(base, email, seed) for email, seed in accounts]
        started = time.perf_counter()
        crowd(crowd_people, seconds)
        elapsed = time.perf_counter() - started
    with app.app_context():
        db.engine.dispose()
    statuses = [status for person in crowd_people for status in person.outcome.statuses]
    timings = sorted(t for person in crowd_people for t in person.sign_in_seconds)
    return {
        "responses": len(statuses),
        "server_errors": sum(status >= 500 for status in statuses),
        "errors": [e for person in crowd_people for e in person.outcome.errors],
        "sign_ins": len(timings),
        "per_second": len(timings) / elapsed,
        "p50": statistics.median(timings) if timings else float("nan"),
        "p95": timings[int(0.95 * (len(timings) - 1))] if timings else float("nan"),
    }


def main() -> int:
    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # "skipped: already running" is expected at 2 s
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns the figures
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--sizes", default="8,32", help="crowd sizes, comma-separated")
    parser.add_argument("--database-url", default="", help="also run on this PostgreSQL database (its schema is reset)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        targets = [("SQLite", None)]  # a new file per run
        if args.database_url:
            targets.append(("PostgreSQL", sqlalchemy_url(args.database_url)))
        print(
            f"{'database':<11} {'people':>6} {'responses':>9} {'5xx':>4} {'sign-ins':>8} {'per s':>6} "
            f"{'p50 s':>6} {'p95 s':>6}"
        )
        failed = False
        for name, url in targets:
            for size in sizes:
                folder = tmp / f"{name}-{size}"
                folder.mkdir()
                result = run(url or f"sqlite:///{folder / 'bench.db'}", size, args.seconds, folder)
                failed |= bool(result["server_errors"] or result["errors"])
                print(
                    f"{name:<11} {size:>6} {result['responses']:>9} {result['server_errors']:>4} "
                    f"{result['sign_ins']:>8} {result['per_second']:>6.2f} {result['p50']:>6.2f} "
                    f"{result['p95']:>6.2f}"
                )
                for error in result["errors"][:3]:
                    print(f"  error: {error}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
