"""Sign-in throughput through the WSGI app, beside a bare endpoint, and the
argon2id cost per hash with the production parameters.

    /work/venv/bin/python bench/signin.py [--users 40] [--seconds 10]

A round trip is what a browser does: GET the sign-in page (CSRF token), POST
e-mail and password, GET the code page, POST the authenticator code. Every user has their own
authenticator, because a code is accepted once per 30-second step. The bare
endpoint is a route added to the same app that returns a short string, hit by
the same Flask test client: the ratio is the cost of the sign-in work over the
framework's own per-request cost. Rate limits are lifted for the measurement;
argon2 runs with the production parameters, as in a real sign-in.
"""

from __future__ import annotations

import argparse
import base64
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyotp  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402

from recovery_app import create_app  # noqa: E402

PASSWORD = "bench horse battery staple 42"
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def build_app(tmp: Path):
    config = {
        "RECOVERY_ENV": "development",
        "SECRET_KEY": "bench-" + "x" * 40,
        "RECOVERY_VAULT_KEY": base64.urlsafe_b64encode(b"b" * 32).decode(),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'bench.db'}",
        "RECOVERY_INSTANCE_DIR": str(tmp),
        "RECOVERY_UPLOAD_DIR": str(tmp / "uploads"),
        "RECOVERY_SCHEDULER": False,
        "RATELIMIT_STORAGE_URI": "memory://",
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
    with app.app_context():
        flask_migrate.upgrade()
        now = utcnow()
        account = get_or_create_account("Tanaka Trading", now)
        for n in range(count):
            user = create_user(email=f"bench{n}@example.test", password=PASSWORD, role="seller_owner",
                               account=account, now=now)
            method, seed = twofactor.new_totp_method(user, now, primary=True)
            method.confirmed_at = now
            user.must_enroll_2sv = False
            users.append((user.email, seed))
        db.session.commit()
    return users


def sign_in_round_trip(app, email: str, seed: str) -> None:
    client = app.test_client()
    page = client.get("/sign-in").get_data(as_text=True)
    token = TOKEN.search(page).group(1)
    step = client.post("/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert step.status_code == 302 and step.headers["Location"].endswith("/sign-in/code"), step.status_code
    token = TOKEN.search(client.get("/sign-in/code").get_data(as_text=True)).group(1)  # a new session, a new token
    done = client.post("/sign-in/code", data={"code": pyotp.TOTP(seed).now(), "csrf_token": token})
    assert done.status_code == 302 and done.headers["Location"] == "/", done.get_data(as_text=True)[:300]


def measure_sign_in(app, users, seconds: float) -> tuple[int, float]:
    done, start = 0, time.perf_counter()
    step = int(time.time()) // 30
    fresh = list(users)
    while time.perf_counter() - start < seconds:
        if not fresh:  # every user has used this step's code: wait for the next step
            while int(time.time()) // 30 == step:
                time.sleep(0.05)
            step, fresh = int(time.time()) // 30, list(users)
        email, seed = fresh.pop()
        sign_in_round_trip(app, email, seed)
        done += 1
    return done, time.perf_counter() - start


def measure_bare(app, seconds: float) -> tuple[int, float]:
    client = app.test_client()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        assert client.get("/bench-bare").status_code == 200
        done += 1
    return done, time.perf_counter() - start


def argon2_time(app, samples: int = 7) -> tuple[float, dict]:
    config = app.config
    params = {"time_cost": config["RECOVERY_ARGON2_TIME_COST"], "memory_cost": config["RECOVERY_ARGON2_MEMORY_KIB"],
              "parallelism": config["RECOVERY_ARGON2_PARALLELISM"]}
    hasher = PasswordHasher(**params)
    timings = []
    for _ in range(samples):
        start = time.perf_counter()
        hasher.hash(PASSWORD)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings), params


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=40, help="users, each with their own authenticator")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rd-bench-") as tmp:
        app = build_app(Path(tmp))
        users = make_users(app, args.users)
        hash_seconds, params = argon2_time(app)
        sign_ins, sign_in_time = measure_sign_in(app, users, args.seconds)
        bare, bare_time = measure_bare(app, args.seconds)
    sign_in_rate = sign_ins / sign_in_time
    bare_rate = bare / bare_time
    print(f"argon2id {params}: {hash_seconds * 1000:.1f} ms per hash (median of 7)")
    print(f"sign-in round trips (GET form, POST password, GET code page, POST code): {sign_in_rate:.2f}/s "
          f"({sign_ins} in {sign_in_time:.1f} s, {1000 / sign_in_rate:.0f} ms each)")
    print(f"bare endpoint, same app and client: {bare_rate:.0f}/s ({bare} in {bare_time:.1f} s)")
    print(f"ratio bare / sign-in: {bare_rate / sign_in_rate:.0f}x")
    print(f"argon2 share of a sign-in: {hash_seconds * sign_in_rate * 100:.0f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
