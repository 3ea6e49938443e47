"""What a sign-in costs beyond its password hash, beside Flask-Security-Too doing
the same work in the same run.

    .venv/bin/pip install -e '.[bench]'        # Flask-Security-Too, qrcode, pyinstrument
    .venv/bin/python bench/signin.py [--rounds 40] [--profile signin.html]

A round trip is what a browser does: GET the sign-in page (CSRF token), POST
e-mail and password, GET the code page, POST the authenticator code. The peer
is a Flask-Security-Too app (SQLite through Flask-SQLAlchemy, argon2id with the
same time cost, memory and lanes, two-factor by authenticator) driven through
the same four requests: GET /login, POST /login, GET /tf-validate, POST
/tf-validate. Both use Flask's test client, so no network is measured.

One round is one argon2id hash (argon2-cffi, the production parameters), one
Recovery Desk round trip and one peer round trip, so both see the same load;
the figures are medians over the rounds. Every user has their own
authenticator (a code is accepted once per 30-second step), so no round waits.
The ratio that matters is round trip / one hash: the password hash is the one
cost a sign-in is meant to have. Each round's trip over that round's hash is
also given as quartiles, to show how far the ratio moves within one run.

What a sign-in queues (the new-device notice) is sent after the response by
the outbox's sender threads; here it is sent between rounds instead, and timed
on its own, so that its work overlaps neither the hash nor the peer's requests.
The SQL statements of each request are counted on the app's engine (on SQLite
the explicit BEGIN is one of them).

``--profile FILE`` writes a pyinstrument profile of the Recovery Desk round
trips (HTML, or text when FILE ends in .txt). ``--database-url`` runs
Recovery Desk on PostgreSQL (an empty database: the benchmark migrates it and
leaves its users there); the peer stays on SQLite unless ``--peer-database-url``
gives it a PostgreSQL database of its own (it creates its tables there).
"""

from __future__ import annotations

import argparse
import base64
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the project's packages (recovery_app, tests) when run as a script

import pyotp  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402
from sqlalchemy import event  # noqa: E402

from recovery_app import create_app  # noqa: E402

PASSWORD = "bench horse battery staple 42"
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
STEPS = ("GET form", "POST password", "GET code page", "POST code")


class StatementCounter:
    """Counts the statements an engine runs, per labelled stretch."""

    def __init__(self, engine):
        self.current: str | None = None
        self.counts: Counter = Counter()
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_args):
        if self.current is not None:
            self.counts[self.current] += 1

    def label(self, name: str | None) -> None:
        self.current = name


# --- Recovery Desk --------------------------------------------------------------------


def build_app(tmp: Path, database_url: str | None, limits_storage: str = "memory://"):
    config = {
        "RECOVERY_ENV": "development",
        "SECRET_KEY": "bench-" + "x" * 40,
        "RECOVERY_VAULT_KEY": base64.urlsafe_b64encode(b"b" * 32).decode(),
        "SQLALCHEMY_DATABASE_URI": database_url or f"sqlite:///{tmp / 'bench.db'}",
        "RECOVERY_INSTANCE_DIR": str(tmp),
        "RECOVERY_UPLOAD_DIR": str(tmp / "uploads"),
        "RECOVERY_SCHEDULER": False,
        "RECOVERY_SEND_AFTER_COMMIT": False,  # sent between rounds (send_queued), not beside the next measurement
        "RATELIMIT_STORAGE_URI": limits_storage,
        "RECOVERY_LIMIT_SIGN_IN": "1000000 per minute",
        "RECOVERY_LIMIT_CODE_CHECK": "1000000 per minute",
        "RECOVERY_LIMIT_CODE_SEND": "1000000 per minute",
    }
    app = create_app(config)
    app.add_url_rule("/bench-bare", "bench_bare", lambda: "ok")
    return app


def make_users(app, count: int) -> list[tuple[str, str]]:
    import flask_migrate

    from recovery_app.auth import twofactor
    from recovery_app.auth.users import create_user, get_or_create_account
    from recovery_app.extensions import db
    from recovery_app.models.base import utcnow

    users = []
    tag = int(time.time())  # a PostgreSQL database may keep users of an earlier run
    with app.app_context():
        flask_migrate.upgrade()
        now = utcnow()
        account = get_or_create_account("Tanaka Trading", now)
        for n in range(count):
            user = create_user(
                email=f"bench{tag}-{n}@example.test", password=PASSWORD, role="seller_owner", account=account, now=now
            )
            method, seed = twofactor.new_totp_method(user, now, primary=True)
            method.confirmed_at = now
            user.must_enroll_2sv = False
            user.last_sign_in_at = now  # a returning user: a new browser gets the new-device notice
            users.append((user.email, seed))
        db.session.commit()
    return users


def recovery_round_trip(app, counter: StatementCounter, email: str, seed: str) -> list[float]:
    client = app.test_client()
    times = []

    def timed(step, call):
        counter.label(step)
        start = time.perf_counter()
        response = call()
        times.append(time.perf_counter() - start)
        counter.label(None)
        return response

    page = timed(STEPS[0], lambda: client.get("/sign-in")).get_data(as_text=True)
    token = TOKEN.search(page).group(1)
    step = timed(
        STEPS[1], lambda: client.post("/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": token})
    )
    assert step.status_code == 302 and step.headers["Location"].endswith("/sign-in/code"), step.status_code
    token = TOKEN.search(timed(STEPS[2], lambda: client.get("/sign-in/code")).get_data(as_text=True)).group(1)
    code = pyotp.TOTP(seed).now()
    done = timed(STEPS[3], lambda: client.post("/sign-in/code", data={"code": code, "csrf_token": token}))
    assert done.status_code == 302 and done.headers["Location"] == "/", done.get_data(as_text=True)[:300]
    return times


def send_queued(app) -> tuple[float, int]:
    """Send what the round trip queued, as the sender threads would after the
    response; returns the time it took and how many messages went."""
    from recovery_app.extensions import db
    from recovery_app.models.base import utcnow
    from recovery_app.notify.delivery import deliver_due

    with app.app_context():
        start = time.perf_counter()
        result = deliver_due(utcnow())
        took = time.perf_counter() - start
        db.session.remove()
    return took, result["sent"]


# --- the peer: Flask-Security-Too ------------------------------------------------------


def build_peer(tmp: Path, params: dict, database_url: str | None = None):
    from flask import Flask
    from flask_security import Security, SQLAlchemyUserDatastore, auth_required
    from flask_security.models import fsqla_v3 as fsqla
    from flask_sqlalchemy import SQLAlchemy

    app = Flask("peer")
    app.config.update(
        SECRET_KEY="peer-" + "x" * 40,
        SQLALCHEMY_DATABASE_URI=database_url or f"sqlite:///{tmp / 'peer.db'}",
        SECURITY_PASSWORD_SALT="peer-salt-" + "y" * 20,
        SECURITY_PASSWORD_HASH="argon2",
        SECURITY_PASSWORD_HASH_PASSLIB_OPTIONS={
            "argon2__type": "ID",
            "argon2__rounds": params["time_cost"],
            "argon2__memory_cost": params["memory_cost"],
            "argon2__parallelism": params["parallelism"],
        },
        SECURITY_TWO_FACTOR=True,
        SECURITY_TWO_FACTOR_ENABLED_METHODS=["authenticator"],
        SECURITY_TOTP_SECRETS={"1": "peer-totp-" + "z" * 30},
        SECURITY_TOTP_ISSUER="Peer",
        SECURITY_EMAIL_VALIDATOR_ARGS={"check_deliverability": False, "test_environment": True},
    )
    db = SQLAlchemy(app)
    fsqla.FsModels.set_db_info(db)

    class Role(db.Model, fsqla.FsRoleMixin):
        pass

    class User(db.Model, fsqla.FsUserMixin):
        pass

    class WebAuthn(db.Model, fsqla.FsWebAuthnMixin):
        pass

    security = Security(app, SQLAlchemyUserDatastore(db, User, Role, WebAuthn))

    @app.route("/")
    @auth_required()
    def home():
        return "signed in"

    return app, db, security


def make_peer_users(peer, count: int) -> list[tuple[str, str]]:
    from flask_security import hash_password

    app, db, security = peer
    users = []
    with app.app_context():
        db.create_all()
        password_hash = hash_password(PASSWORD)  # one hash for all: the same password
        tag = int(time.time())  # a PostgreSQL database may keep users of an earlier run
        totp = app.extensions["security"]._totp_factory
        for n in range(count):
            secret = totp.generate_totp_secret()
            user = security.datastore.create_user(
                email=f"peer{tag}-{n}@example.test",
                password=password_hash,
                active=True,
                tf_primary_method="authenticator",
                tf_totp_secret=secret,
            )
            users.append((user.email, secret))
        db.session.commit()
    return users


def peer_round_trip(peer, counter: StatementCounter, email: str, secret: str) -> list[float]:
    app = peer[0]
    client = app.test_client()
    times = []

    def timed(step, call):
        counter.label(step)
        start = time.perf_counter()
        response = call()
        times.append(time.perf_counter() - start)
        counter.label(None)
        return response

    token = TOKEN.search(timed(STEPS[0], lambda: client.get("/login")).get_data(as_text=True)).group(1)
    step = timed(
        STEPS[1], lambda: client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    )
    assert step.status_code == 302 and "/tf-validate" in step.headers["Location"], step.get_data(as_text=True)[:300]
    token = TOKEN.search(timed(STEPS[2], lambda: client.get("/tf-validate")).get_data(as_text=True)).group(1)
    with app.app_context():
        code = app.extensions["security"]._totp_factory.generate_totp_password(secret)
    done = timed(STEPS[3], lambda: client.post("/tf-validate", data={"code": code, "csrf_token": token}))
    assert done.status_code == 302 and done.headers["Location"] == "/", done.get_data(as_text=True)[:300]
    return times


# --- measuring ---------------------------------------------------------------------------


def hash_params(app) -> dict:
    config = app.config
    return {
        "time_cost": config["RECOVERY_ARGON2_TIME_COST"],
        "memory_cost": config["RECOVERY_ARGON2_MEMORY_KIB"],
        "parallelism": config["RECOVERY_ARGON2_PARALLELISM"],
    }


def one_hash(hasher: PasswordHasher) -> float:
    start = time.perf_counter()
    hasher.hash(PASSWORD)
    return time.perf_counter() - start


def measure_bare(app, seconds: float = 3.0) -> float:
    client = app.test_client()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        assert client.get("/bench-bare").status_code == 200
        done += 1
    return (time.perf_counter() - start) / done


def spread(trips: list[list[float]], hashes: list[float]) -> str:
    """Each round's round trip over the hash measured just before it, as
    quartiles: how far the ratio moves with the machine within one run."""
    ratios = [sum(trip) / one for trip, one in zip(trips, hashes, strict=True)]
    low, mid, high = statistics.quantiles(ratios, n=4)
    return f"{low:.2f} / {mid:.2f} / {high:.2f}"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="rounds of hash + sign-in + peer sign-in")
    parser.add_argument("--profile", metavar="FILE", help="write a pyinstrument profile of the sign-ins")
    parser.add_argument("--database-url", help="run Recovery Desk on this (PostgreSQL) database")
    parser.add_argument("--no-peer", action="store_true", help="leave Flask-Security-Too out")
    parser.add_argument("--peer-database-url", help="run Flask-Security-Too on this (PostgreSQL) database")
    parser.add_argument(
        "--rate-limit-storage",
        default="memory://",
        metavar="URI",
        help="where Recovery Desk counts rate limits (production: redis://…); default memory://",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rd-bench-") as tmp:
        app = build_app(Path(tmp), args.database_url, args.rate_limit_storage)
        params = hash_params(app)
        hasher = PasswordHasher(**params)
        users = make_users(app, args.rounds + 1)
        with app.app_context():
            from recovery_app.extensions import db

            ours = StatementCounter(db.engine)
        peer = None if args.no_peer else build_peer(Path(tmp), params, args.peer_database_url)
        if peer is not None:
            peer_users = make_peer_users(peer, args.rounds + 1)
            with peer[0].app_context():
                theirs = StatementCounter(peer[1].engine)
            peer_round_trip(peer, theirs, *peer_users.pop())  # warm up: templates, first connection
        recovery_round_trip(app, ours, *users.pop())
        send_queued(app)
        ours.counts.clear()
        if peer is not None:
            theirs.counts.clear()

        profiler = None
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
        hashes, trips, peer_trips, sends = [], [], [], []
        for n in range(args.rounds):
            hashes.append(one_hash(hasher))
            if profiler:
                profiler.start()
            trips.append(recovery_round_trip(app, ours, *users[n]))
            if profiler:
                profiler.stop()
            sends.append(send_queued(app))
            if peer is not None:
                peer_trips.append(peer_round_trip(peer, theirs, *peer_users[n]))
        bare = measure_bare(app)

    hash_time = statistics.median(hashes)
    total = statistics.median(sum(t) for t in trips)
    print(f"argon2id {params}: {ms(hash_time)} per hash (median of {len(hashes)})")
    print(
        f"Recovery Desk round trip (GET form, POST password, GET code page, POST code): {ms(total)} "
        f"(median of {len(trips)}); round trip / one hash = {total / hash_time:.2f}"
    )
    print(f"  round trip / the hash of its own round, quartiles: {spread(trips, hashes)}")
    for i, step in enumerate(STEPS):
        print(
            f"  {step:14s} {ms(statistics.median(t[i] for t in trips)):>10s}  "
            f"{ours.counts[step] / len(trips):.0f} SQL statements"
        )
    print(f"  SQL statements per sign-in: {sum(ours.counts.values()) / len(trips):.0f}")
    print(f"  not the hash: {ms(total - hash_time)} per sign-in; bare endpoint of the same app: {ms(bare)}")
    print(
        f"  after the response: {statistics.median(took for took, _ in sends) * 1000:.1f} ms to send "
        f"{statistics.median(sent for _, sent in sends):.0f} queued message(s) (the new-device notice)"
    )
    if peer_trips:
        peer_total = statistics.median(sum(t) for t in peer_trips)
        print(
            f"Flask-Security-Too round trip (GET /login, POST /login, GET /tf-validate, POST /tf-validate): "
            f"{ms(peer_total)} (median of {len(peer_trips)}); round trip / one hash = {peer_total / hash_time:.2f}"
        )
        print(f"  round trip / the hash of its own round, quartiles: {spread(peer_trips, hashes)}")
        for i, step in enumerate(STEPS):
            print(
                f"  {step:14s} {ms(statistics.median(t[i] for t in peer_trips)):>10s}  "
                f"{theirs.counts[step] / len(peer_trips):.0f} SQL statements"
            )
        print(f"  SQL statements per sign-in: {sum(theirs.counts.values()) / len(peer_trips):.0f}")
        print(f"ratio Recovery Desk / Flask-Security-Too, same run: {total / peer_total:.2f}")
    if profiler:
        if args.profile.endswith(".txt"):
            Path(args.profile).write_text(profiler.output_text(unicode=True, show_all=False))
        else:
            Path(args.profile).write_text(profiler.output_html())
        print(f"profile of the Recovery Desk round trips: {args.profile}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
