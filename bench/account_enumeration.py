"""Forgot-password and invitation answer times for addresses with and without a login.

    python bench/account_enumeration.py [SAMPLES]

Runs the real app through the Flask test client on a throwaway SQLite database
with production argon2 settings, alternating the two kinds of address, and
prints the median and p90 of each and their ratio (ASVS 6.3.8: the ratio
should stay near 1.00). Figures, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recovery_app import create_app  # noqa: E402
from recovery_app.extensions import db  # noqa: E402


def build_app(tmp: Path):
    import flask_migrate

    app = create_app(
        {
            "RECOVERY_ENV": "testing",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'bench.db'}",
            "SECRET_KEY": "bench-" + "x" * 40,
            "RECOVERY_VAULT_KEY": base64.urlsafe_b64encode(b"b" * 32).decode(),
            "RECOVERY_INSTANCE_DIR": str(tmp),
            "RECOVERY_UPLOAD_DIR": str(tmp / "uploads"),
            "WTF_CSRF_ENABLED": False,
            # Production hashing cost, so a hash done for one kind of address only would show.
            "RECOVERY_ARGON2_TIME_COST": 3,
            "RECOVERY_ARGON2_MEMORY_KIB": 65536,
            "RECOVERY_ARGON2_PARALLELISM": 4,
            "RECOVERY_RESET_LIMIT_PER_ADDRESS": "1000000 per hour",
            "RECOVERY_RESET_LIMIT_PER_CLIENT": "1000000 per hour",
            "RECOVERY_INVITE_LIMIT_PER_ADDRESS": "1000000 per day",
            "RECOVERY_INVITE_LIMIT_PER_ACCOUNT": "1000000 per day",
        }
    )
    with app.app_context():
        flask_migrate.upgrade()
    return app


def sign_in(app, client, user) -> None:
    import secrets

    from recovery_app.auth.sessions import SID_KEY, token_hash
    from recovery_app.models import UserSession
    from recovery_app.models.base import utcnow

    token = secrets.token_urlsafe(32)
    with app.app_context():
        db.session.add(
            UserSession(
                user_id=user,
                token_hash=token_hash(token),
                created_at=utcnow(),
                last_seen_at=utcnow(),
                address="127.0.0.1",
                browser="bench",
            )
        )
        db.session.commit()
    with client.session_transaction() as sess:
        sess[SID_KEY] = token
        sess["_user_id"] = f"{user}:0"


def measure(send_a, send_b, samples: int) -> tuple[list[float], list[float]]:
    a, b = [], []
    for n in range(samples + 5):
        for send, bucket in ((send_a, a), (send_b, b)) if n % 2 else ((send_b, b), (send_a, a)):
            started = time.perf_counter()
            status = send().status_code
            elapsed = time.perf_counter() - started
            if status not in (200, 302):
                raise SystemExit(f"unexpected status {status}")
            if n >= 5:
                bucket.append(elapsed)
    return a, b


def report(name: str, label_a: str, a: list[float], label_b: str, b: list[float]) -> None:
    def p90(values):
        return statistics.quantiles(values, n=10)[-1]

    ma, mb = statistics.median(a), statistics.median(b)
    print(
        f"{name}: {label_a} median {ma * 1000:.2f} ms (p90 {p90(a) * 1000:.2f}), "
        f"{label_b} median {mb * 1000:.2f} ms (p90 {p90(b) * 1000:.2f}), ratio {mb / ma:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("samples", nargs="?", type=int, default=200, help="answers timed per kind of address")
    samples = parser.parse_args().samples
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(Path(tmp))
        with app.app_context():
            from recovery_app.auth.users import create_user, get_or_create_account
            from recovery_app.models.base import utcnow

            account = get_or_create_account("Bench shop", utcnow())
            owner = create_user(
                email="owner@bench.test",
                password="p" * 16,
                role="seller_owner",
                now=utcnow(),
                account=account,
                check_password=False,
            )
            owner.must_enroll_2sv = False
            other = create_user(
                email="elsewhere@bench.test",
                password="p" * 16,
                role="seller_user",
                now=utcnow(),
                account=get_or_create_account("Other shop", utcnow()),
                check_password=False,
            )
            db.session.commit()
            owner_id, other_email = owner.id, other.email
        client = app.test_client()
        known, unknown = measure(
            lambda: client.post("/account/password/forgot", data={"email": other_email}),
            lambda: client.post("/account/password/forgot", data={"email": "nobody@bench.test"}),
            samples,
        )
        report(f"forgot password ({samples} each)", "known", known, "unknown", unknown)
        sign_in(app, client, owner_id)
        known, unknown = measure(
            lambda: client.post("/account/users/invite", data={"email": other_email, "locale": "ja"}),
            lambda: client.post("/account/users/invite", data={"email": "nobody@bench.test", "locale": "ja"}),
            samples,
        )
        report(f"invitation ({samples} each)", "has a login", known, "no login", unknown)
        with app.app_context():
            db.engine.dispose()


if __name__ == "__main__":
    main()
