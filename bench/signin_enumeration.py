"""Sign-in answer times for a known address with a wrong password, an unknown
address, and a disabled user, with production argon2 settings (ASVS 6.3.8).

    python bench/signin_enumeration.py [SAMPLES]

Prints the median and p90 of each and the ratios to the known address; the
ratios should stay near 1.00. Figures, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.account_enumeration import build_app, measure, report  # noqa: E402
from recovery_app.extensions import db  # noqa: E402

WRONG = "not the password at all 1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("samples", nargs="?", type=int, default=200, help="answers timed per kind of address")
    samples = parser.parse_args().samples
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(Path(tmp))
        app.config.update(
            RECOVERY_LIMIT_SIGN_IN="1000000 per minute",
            RECOVERY_PASSWORD_FREE_TRIES=10**9,
            RECOVERY_HARD_LOCK_AFTER=10**9,
        )
        with app.app_context():
            from recovery_app.auth.users import create_user, get_or_create_account
            from recovery_app.models.base import utcnow

            account = get_or_create_account("Bench shop", utcnow())
            create_user(
                email="known@bench.test",
                password="p" * 16,
                role="seller_owner",
                now=utcnow(),
                account=account,
                check_password=False,
            )
            gone = create_user(
                email="gone@bench.test",
                password="p" * 16,
                role="seller_user",
                now=utcnow(),
                account=account,
                check_password=False,
            )
            gone.disabled_at = utcnow()
            db.session.commit()
        client = app.test_client()
        known, unknown = measure(
            lambda: client.post("/sign-in", data={"email": "known@bench.test", "password": WRONG}),
            lambda: client.post("/sign-in", data={"email": "nobody@bench.test", "password": WRONG}),
            samples,
        )
        report(f"sign-in ({samples} each)", "known, wrong password", known, "unknown address", unknown)
        known, disabled = measure(
            lambda: client.post("/sign-in", data={"email": "known@bench.test", "password": WRONG}),
            lambda: client.post("/sign-in", data={"email": "gone@bench.test", "password": "p" * 16}),
            samples,
        )
        report(f"sign-in ({samples} each)", "known, wrong password", known, "disabled user", disabled)
        with app.app_context():
            db.engine.dispose()


if __name__ == "__main__":
    main()
