"""Many people at once against a served app (a real HTTP server, threads, real
commits), on SQLite and PostgreSQL, with the scheduler running every job every
two seconds: no server error, and every counter and single-use thing holds
(ASVS 6.3.1, NIST 800-63B 5.2.2)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from sqlalchemy import func, select, update

from recovery_app import audit
from recovery_app.auth import twofactor
from recovery_app.database import unit
from recovery_app.extensions import db
from recovery_app.models import ActionToken, AuditEvent, SecurityEvent, SentCode, User
from recovery_app.models.base import utcnow
from tests.factories import Factory
from tests.helpers import TEST_PASSWORD, later
from tests.served import Person, at_once, crowd, sellers, served

SECONDS = 20  # bench/concurrency.py runs the same for 60 s


@pytest.mark.parametrize("count", [8, 32])
def test_a_crowd_signs_in_enrolls_and_browses_with_no_server_error(live_app, database_url, count, tmp_path):
    people = sellers(live_app, count)
    with served(live_app) as base:
        crowd_people = [Person(base, email, seed) for email, seed in people]
        cli = at_once([lambda: crowd(crowd_people, SECONDS), lambda: _cli_create_user(database_url, tmp_path)])
    statuses = [status for person in crowd_people for status in person.outcome.statuses]
    errors = [error for person in crowd_people for error in person.outcome.errors]
    assert not errors, errors[:5]
    assert [s for s in statuses if s >= 500] == []
    assert all(person.outcome.sign_ins >= 1 for person in crowd_people), [p.outcome.sign_ins for p in crowd_people]
    assert cli[1] == 0, "the CLI command beside the served app failed"
    with live_app.app_context():
        assert db.session.execute(select(User).where(User.email == "beside@example.test")).scalar_one()
        assert audit.verify().ok
        db.session.remove()


def _cli_create_user(database_url: str, tmp_path) -> int:
    """``flask users create`` in its own process, beside the served app."""
    env = {
        **os.environ,
        "RECOVERY_DATABASE_URL": database_url,
        "RECOVERY_INSTANCE_DIR": str(tmp_path / "cli"),
        "RECOVERY_SCHEDULER": "off",
        "RECOVERY_ENV": "development",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "wsgi",
            "users",
            "create",
            "--role",
            "reviewer",
            "--email",
            "beside@example.test",
            "--password",
            "quiet lantern orchard 9107",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode:
        print(done.stdout, done.stderr)
    return done.returncode


def _password_step(base: str, email: str) -> Person:
    person = Person(base, email)
    person.get("/sign-in")
    assert person.post("/sign-in", {"email": email, "password": TEST_PASSWORD}).url.endswith("/sign-in/code")
    return person


def test_the_code_page_opens_while_another_request_writes(live_app):
    # The page reads the challenge the password step started: it takes no write
    # lock, so it does not queue behind a writer (on SQLite a writer holds the
    # whole database until it commits).
    ((email, _seed),) = sellers(live_app, 1)
    inside, release = threading.Event(), threading.Event()

    def writer():
        with live_app.app_context():
            try:
                with unit():
                    db.session.execute(update(User).where(User.email == email).values(display_name="Held"))
                    inside.set()
                    release.wait(60)
            finally:
                db.session.remove()

    with served(live_app, scheduler=False) as base:
        person = _password_step(base, email)
        holder = threading.Thread(target=writer)
        holder.start()
        try:
            assert inside.wait(10)
            opened: list = []
            reader = threading.Thread(target=lambda: opened.append(person.get("/sign-in/code")))
            reader.start()
            reader.join(10)
            answered_while_held = not reader.is_alive()
        finally:
            release.set()
            holder.join(30)
            reader.join(60)
    assert answered_while_held
    assert opened[0].status_code == 200 and 'name="code"' in opened[0].text


def test_parallel_wrong_codes_never_get_past_the_lock(live_app):
    # ASVS 6.3.1: 48 wrong codes at once from 8 password-step sessions; at most 10 are compared per lock window
    ((email, seed),) = sellers(live_app, 1)
    limit = live_app.config["RECOVERY_CODE_LOCK_AFTER"]
    with served(live_app, scheduler=False) as base:
        sessions = [_password_step(base, email) for _ in range(8)]
        wrong = "000000" if pyotp_now(seed) != "000000" else "111111"
        results = at_once(
            [lambda s=s: s.post("/sign-in/code", {"code": wrong}).status_code for s in sessions for _ in range(6)]
        )
        assert all(status < 500 for status in results), results
        right = sessions[0].post("/sign-in/code", {"code": pyotp_now(seed)})
    assert right.url.endswith("/sign-in/code")  # the right code is refused while the codes are paused
    with live_app.app_context():
        user = db.session.execute(select(User).where(User.email == email)).scalar_one()
        compared = db.session.execute(
            select(func.count())
            .select_from(SecurityEvent)
            .where(SecurityEvent.user_id == user.id, SecurityEvent.kind == "code_failed")
        ).scalar_one()
        assert compared == limit
        assert user.code_locked_until is not None and user.code_locked_until > utcnow()
        assert user.consecutive_failures == limit
        db.session.remove()


def pyotp_now(seed: str) -> str:
    import pyotp

    return pyotp.TOTP(seed).now()


def test_parallel_guesses_at_one_sent_code_get_its_five_tries_and_no_more(live_app):
    ((email, _seed),) = sellers(live_app, 1)
    with live_app.app_context():
        user = db.session.execute(select(User).where(User.email == email)).scalar_one()
        Factory(live_app).add_phone(user, "+819012345678")
        db.session.commit()
        db.session.remove()
    with served(live_app, scheduler=False) as base:
        person = _password_step(base, email)  # the code page sends the SMS
        person.get("/sign-in/code")
        with live_app.app_context():
            sent = db.session.execute(select(SentCode).join(User).where(User.email == email)).scalar_one()
            wrong = (
                "000000"
                if not twofactor.hmac.compare_digest(sent.code_hash, twofactor._code_hash(sent.challenge_id, "000000"))
                else "111111"
            )
            db.session.remove()
        results = at_once([lambda: person.post("/sign-in/code", {"code": wrong}).status_code for _ in range(24)])
    assert all(status < 500 for status in results), results
    with live_app.app_context():
        tries = db.session.execute(select(SentCode.tries).join(User).where(User.email == email)).scalar_one()
        assert tries == live_app.config["RECOVERY_CODE_MAX_TRIES"]
        db.session.remove()


def test_parallel_wrong_passwords_are_each_counted_once(live_app):
    # The counter moves in SQL: every wrong password that was evaluated is in it, none lost.
    ((email, _seed),) = sellers(live_app, 1)
    with served(live_app, scheduler=False) as base:
        people = [Person(base, email) for _ in range(20)]
        for person in people:
            person.get("/sign-in")
        results = at_once(
            [
                lambda p=p: [
                    p.post("/sign-in", {"email": email, "password": "wrong password here"}).status_code
                    for _ in range(5)
                ]
                for p in people
            ]
        )
    assert all(status < 500 for statuses in results for status in statuses), results
    with live_app.app_context():
        user = db.session.execute(select(User).where(User.email == email)).scalar_one()
        evaluated = db.session.execute(
            select(func.count())
            .select_from(SecurityEvent)
            .where(SecurityEvent.user_id == user.id, SecurityEvent.kind == "password_failed")
        ).scalar_one()
        assert user.failed_password_count == evaluated >= 5
        assert user.hard_locked_at is None  # wrong passwords alone never lock the owner out
        assert user.password_delay_until is not None and user.password_delay_until > later(utcnow(), seconds=-1)
        db.session.remove()


def _signed_in_by(response, base: str) -> bool:
    """Whether this answer's own reply sent the browser home, signed in. (Where
    the redirect then landed depends on which racing reply's cookie the shared
    jar kept last, so it is not the measure.)"""
    first = response.history[0] if response.history else response
    return first.status_code == 302 and first.headers.get("Location") in ("/", base + "/")


def _passkey_person(live_app, base: str, email: str, device):
    """A browser at the passkey challenge with the options it was given."""
    person = _password_step(base, email)
    page = person.get("/sign-in/code")
    assert 'data-passkey="get"' in page.text
    options = person.http.post(
        base + "/sign-in/passkey/options", headers={"X-CSRFToken": person._token}, timeout=60
    ).json()
    return person, options


def _with_passkey(live_app):
    ((email, _seed),) = sellers(live_app, 1)
    with live_app.app_context():
        user = db.session.execute(select(User).where(User.email == email)).scalar_one()
        device = Factory(live_app).add_passkey(user)
        db.session.commit()
        db.session.remove()
    return email, device


def test_one_passkey_answer_sent_many_times_at_once_signs_in_once(live_app):
    # ASVS 6.5.1, 6.7.2: the challenge is consumed by one DELETE … RETURNING
    email, device = _with_passkey(live_app)
    with served(live_app, scheduler=False) as base:
        person, options = _passkey_person(live_app, base, email, device)
        answer = device.get(options)
        results = at_once([lambda: person.post("/sign-in/code", {"credential": answer}) for _ in range(12)])
    assert all(not isinstance(r, Exception) and r.status_code < 500 for r in results), results
    assert sum(_signed_in_by(r, base) for r in results) == 1
    with live_app.app_context():
        user = db.session.execute(select(User).where(User.email == email)).scalar_one()
        signed_in = db.session.execute(
            select(func.count())
            .select_from(SecurityEvent)
            .where(SecurityEvent.user_id == user.id, SecurityEvent.kind == "signed_in")
        ).scalar_one()
        assert signed_in == 1
        db.session.remove()


def test_two_uses_of_one_counter_value_at_once_let_one_in(live_app):
    # A cloned key used at the same moment as the original: the counter moves in one conditional UPDATE
    email, device = _with_passkey(live_app)
    with served(live_app, scheduler=False) as base:
        people = [_passkey_person(live_app, base, email, device) for _ in range(6)]
        answers = [device.get(options, counter=7) for _person, options in people]
        results = at_once(
            [
                lambda p=p, a=a: p.post("/sign-in/code", {"credential": a})
                for (p, _options), a in zip(people, answers, strict=True)
            ]
        )
    assert all(not isinstance(r, Exception) and r.status_code < 500 for r in results), results
    assert sum(_signed_in_by(r, base) for r in results) == 1
    with live_app.app_context():
        user = db.session.execute(select(User).where(User.email == email)).scalar_one()
        refused = db.session.execute(
            select(func.count())
            .select_from(SecurityEvent)
            .where(SecurityEvent.user_id == user.id, SecurityEvent.kind == "passkey_counter_backwards")
        ).scalar_one()
        assert refused == 5
        db.session.remove()


def test_a_user_removed_by_several_clicks_at_once_is_removed_once(live_app):
    # An owner's double (or sextuple) click on "Remove": one removal, one event, one audit entry.
    (owner_email, seed), (member_email, _seed) = sellers(live_app, 2)
    with live_app.app_context():
        member = db.session.execute(select(User).where(User.email == member_email)).scalar_one()
        member_id, epoch = member.id, member.session_epoch
        db.session.remove()
    path = f"/account/users/{member_id}/remove"
    with served(live_app, scheduler=False) as base:
        owner = Person(base, owner_email, seed)
        assert owner.sign_in()
        assert owner.get(path).status_code == 200
        results = at_once([lambda: owner.post(path).status_code for _ in range(6)])
    assert all(isinstance(status, int) and status < 500 for status in results), results
    with live_app.app_context():
        member = db.session.get(User, member_id)
        events = db.session.execute(
            select(func.count())
            .select_from(SecurityEvent)
            .where(SecurityEvent.user_id == member_id, SecurityEvent.kind == "user_removed")
        ).scalar_one()
        audited = db.session.execute(
            audit.entries_about("user", member_id).where(AuditEvent.action == "account.user_removed")
        ).all()
        assert (events, len(audited)) == (1, 1)
        assert member.disabled_at is not None and member.session_epoch == epoch + 1
        db.session.remove()


def test_reset_links_asked_for_from_several_browsers_at_once_leave_one_live(live_app):
    # Each new link replaces the older ones to the address; asked for at once, one must still be the last.
    live_app.config["RECOVERY_RESET_LIMIT_PER_ADDRESS"] = "100 per hour"
    [(email, _seed)] = sellers(live_app, 1)
    with served(live_app, scheduler=False) as base:
        browsers = [Person(base, email) for _ in range(6)]
        for browser in browsers:
            assert browser.get("/account/password/forgot").status_code == 200
        results = at_once(
            [lambda b=browser: b.post("/account/password/forgot", {"email": email}).status_code for browser in browsers]
        )
    assert results == [200] * 6, results
    with live_app.app_context():
        live = select(func.count()).where(ActionToken.email == email, ActionToken.used_at.is_(None))
        assert db.session.execute(live).scalar_one() == 1
        db.session.remove()


def test_a_user_unlocked_by_several_clicks_at_once_is_unlocked_once(live_app):
    with live_app.app_context():
        make = Factory(live_app)
        manager = make.user("manager", locale="en")
        locked = make.user(locale="en")
        locked.hard_locked_at, locked.consecutive_failures = utcnow(), 100
        db.session.commit()
        manager_email, seed, locked_id = manager.email, manager._test_totp_seed, locked.id
        db.session.remove()
    path = f"/staff/users/{locked_id}/unlock"
    with served(live_app, scheduler=False) as base:
        boss = Person(base, manager_email, seed)
        assert boss.sign_in()
        assert boss.get("/staff/users").status_code == 200
        results = at_once([lambda: boss.post(path).status_code for _ in range(6)])
    assert results == [200] * 6, results  # each redirected back to the list, which says what happened
    with live_app.app_context():
        audited = select(func.count()).where(AuditEvent.action == "user.unlocked")
        events = select(func.count()).where(SecurityEvent.kind == "unlocked", SecurityEvent.user_id == locked_id)
        assert (db.session.execute(audited).scalar_one(), db.session.execute(events).scalar_one()) == (1, 1)
        assert db.session.get(User, locked_id).hard_locked_at is None
        db.session.remove()
