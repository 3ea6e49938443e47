"""Why the work beside the hash costs more in ``bench/signin.py`` than warm:
the same round trips, with argon2id at its cheapest so that the trip's own hash
is out of the figures, each after one of four pauses.

    .venv/bin/python bench/signin_pause.py [--rounds 150]

The pauses, taken in turn so that load on the machine hits them alike:

* ``none``: the round trip right after the one before it (warm);
* ``hash``: one argon2id hash with the production parameters, as
  ``bench/signin.py`` takes before each round (and as the POST password
  takes inside its request);
* ``sleep``: the process sleeps for as long as that hash took, using no CPU and
  no memory;
* ``touch``: one thread writes 64 MiB, the hash's memory, for the same CPU
  caches emptied without the hash's threads or its wait.

It prints the median of each request and of the whole trip after each pause,
and each pause's trip over the warm one. If the hash's memory traffic were
what slows the requests after it, ``touch`` would cost what ``hash`` costs and
``sleep`` nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # bench/signin.py: the app, its users and its round trip

PAUSES = ("none", "hash", "sleep", "touch")
CHEAP_ARGON2 = {"RECOVERY_ARGON2_TIME_COST": 1, "RECOVERY_ARGON2_MEMORY_KIB": 64, "RECOVERY_ARGON2_PARALLELISM": 1}
MIB_64 = 64 << 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=150, help="round trips after each pause (default 150)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    import signin
    from argon2 import PasswordHasher

    with tempfile.TemporaryDirectory(prefix="rd-bench-") as tmp:
        app = signin.build_app(Path(tmp), None)
        production = signin.hash_params(app)
        hasher = PasswordHasher(**production)
        app.config.update(CHEAP_ARGON2)  # the users' own hashes: the trip's verify costs next to nothing
        users = signin.make_users(app, args.rounds * len(PAUSES) + 3)
        with app.app_context():
            from recovery_app.extensions import db

            counter = signin.StatementCounter(db.engine)
        for user in users[-3:]:  # warm up: templates, statements, the first connection
            signin.recovery_round_trip(app, counter, *user)
            signin.send_queued(app)

        memory = bytearray(MIB_64)
        zeros = bytes(MIB_64)
        last_hash = signin.one_hash(hasher)
        trips: dict[str, list[list[float]]] = {pause: [] for pause in PAUSES}
        hashes = []
        for n in range(args.rounds * len(PAUSES)):
            pause = PAUSES[n % len(PAUSES)]
            if pause == "hash":
                last_hash = signin.one_hash(hasher)
                hashes.append(last_hash)
            elif pause == "sleep":
                time.sleep(last_hash)
            elif pause == "touch":
                memory[:] = zeros
            trips[pause].append(signin.recovery_round_trip(app, counter, *users[n]))
            signin.send_queued(app)  # as in bench/signin.py: the notice goes out between rounds

    print(
        f"argon2id {production}: {signin.ms(statistics.median(hashes))} per hash (median of {len(hashes)}); "
        f"the users' own hashes at the cheapest setting"
    )
    warm = statistics.median(sum(trip) for trip in trips["none"])
    print(f"{'after':8s}" + "".join(f"{step:>16s}" for step in signin.STEPS) + f"{'round trip':>14s}{'÷ warm':>9s}")
    for pause in PAUSES:
        steps = [statistics.median(trip[i] for trip in trips[pause]) for i in range(len(signin.STEPS))]
        total = statistics.median(sum(trip) for trip in trips[pause])
        print(
            f"{pause:8s}"
            + "".join(f"{signin.ms(step):>16s}" for step in steps)
            + f"{signin.ms(total):>14s}{total / warm:>9.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
