"""The work of a sign-in beside its password hash, counted in CPU instructions:
a figure that moves neither with the machine's speed nor with its load, unlike
the milliseconds of ``bench/signin.py``, so that a change can be judged on a
busy machine.

    .venv/bin/python bench/signin_instructions.py [--trips 20]

Needs valgrind (Debian: ``apt-get install valgrind``). The app of
``bench/signin.py`` (SQLite, rate limits counted in memory) runs the same four
requests (GET form, POST password, GET code page, POST code), with argon2id at
its cheapest so that the hash is out of the count, under cachegrind: with the
set-up and three warm-up round trips only, and with ``--trips`` more (the
set-up is the same: every user is made in both), each ``--repeat`` times. The
difference of the medians over ``--trips`` is what one round trip executes;
timers (the in-memory rate-limit store's, say) make single runs differ by a
few per cent. What a sign-in queues is left unsent. Instructions are not time:
a request right after a hash runs slower than warm (the thread waited, and
the caches hold the hash's memory), which only ``bench/signin.py`` and
``bench/signin_pause.py`` see. Flask-Security-Too is left out: its code step
derives its TOTP secrets' key with PBKDF2 at every check (about 9 ms of its
warm round trip), which would be most of its count.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # bench/signin.py: the app, its users and its round trip

CHEAP_ARGON2 = {
    "RECOVERY_ARGON2_TIME_COST": "1",
    "RECOVERY_ARGON2_MEMORY_KIB": "64",
    "RECOVERY_ARGON2_PARALLELISM": "1",
}
WARM_UP = 3


def run_trips(users: int, trips: int) -> None:
    """Make ``users`` users, then run WARM_UP + ``trips`` round trips (inside valgrind)."""
    import signin

    with tempfile.TemporaryDirectory(prefix="rd-bench-") as tmp:
        app = signin.build_app(Path(tmp), None)
        made = signin.make_users(app, users)
        with app.app_context():
            from recovery_app.extensions import db

            counter = signin.StatementCounter(db.engine)
        for email, seed in made[: WARM_UP + trips]:
            signin.recovery_round_trip(app, counter, email, seed)


def instructions(users: int, trips: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            f"--cachegrind-out-file={Path(tmp) / 'out'}",
            sys.executable,
            __file__,
            "--inner-users",
            str(users),
            "--trips",
            str(trips),
        ]
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **CHEAP_ARGON2})
    if done.returncode != 0:
        raise SystemExit(f"the round trips under valgrind failed:\n{done.stderr[-2000:]}")
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trips", type=int, default=20, help="round trips counted, after 3 warm-up ones")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind, whose medians are taken")
    parser.add_argument("--inner-users", type=int, help=argparse.SUPPRESS)  # the run inside valgrind
    args = parser.parse_args()
    if args.inner_users is not None:
        run_trips(args.inner_users, args.trips)
        return 0
    if args.trips < 1 or args.repeat < 1:
        parser.error("--trips and --repeat must be at least 1")
    try:
        subprocess.run(["valgrind", "--version"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    users = WARM_UP + args.trips
    runs = [0] * args.repeat + [args.trips] * args.repeat
    with ThreadPoolExecutor(max_workers=2) as pool:  # valgrind runs one core per process
        counts = list(pool.map(lambda trips: instructions(users, trips), runs))
    base, total = statistics.median(counts[: args.repeat]), statistics.median(counts[args.repeat :])
    spread = (max(counts[args.repeat :]) - min(counts[args.repeat :])) / args.trips
    print(f"set-up and {WARM_UP} warm-up round trips: {base / 1e6:.1f} M instructions")
    print(
        f"Recovery Desk: {(total - base) / args.trips / 1e6:.2f} M instructions per round trip "
        f"(medians of {args.repeat} runs with and without {args.trips} round trips; "
        f"the runs with them spread over {spread / 1e6:.2f} M per round trip)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
