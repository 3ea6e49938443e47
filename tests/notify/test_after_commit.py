"""Sent right after the commit, recorded always, never twice: with real
commits on SQLite and PostgreSQL, threads racing, and a sender that dies."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from recovery_app import notify
from recovery_app.database import unit
from recovery_app.extensions import db
from recovery_app.models import OutboxMessage
from recovery_app.models.base import utcnow
from recovery_app.scheduler import jobs
from tests.factories import Factory
from tests.helpers import queued_code, queued_notice
from tests.signin import SignIn

from .conftest import ACCOUNT_SID, AUTH_TOKEN, mail_settings, twilio_settings
from .servers import MailServer, TwilioStandIn

PHONE = "+819012345678"


def wait_for(predicate, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("waited in vain")


def rows(app) -> list[OutboxMessage]:
    with app.app_context():
        found = list(db.session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars())
        db.session.expunge_all()
        return found


def queued_notices(app, count: int, now) -> list[int]:
    """``count`` case-expired e-mails queued and committed; their ids."""
    with app.app_context(), unit():
        return [queued_notice(f"q{n}@example.test", now).id for n in range(count)]


@pytest.fixture
def sending_app(live_app):
    live_app.config.update(RECOVERY_SEND_AFTER_COMMIT=True, RECOVERY_OUTBOX_RETRY_AFTER_SECONDS=60)
    return live_app


@pytest.fixture
def twilio(sending_app):
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN) as standin:
        sending_app.config.update(twilio_settings(standin))
        yield standin


def _seller_with_phone(app) -> object:
    with app.app_context():
        make = Factory(app)
        user = make.user(locale="ja", enrolled=False)
        make.add_phone(user, PHONE)
        email = user.email
        db.session.commit()
        return SimpleNamespace(email=email)


def test_a_code_leaves_right_after_the_commit_without_the_job(sending_app, twilio):
    user = _seller_with_phone(sending_app)
    client = sending_app.test_client()
    assert SignIn(sending_app).password(client, user).status_code == 302
    [request] = wait_for(lambda: twilio.requests)
    [row] = wait_for(lambda: [r for r in rows(sending_app) if r.status == "sent"])
    assert row.provider_id == request["sid"] and row.tries == 1 and "••••••" in row.body
    with sending_app.app_context():
        # The retry job has nothing to do: it only retries.
        assert notify.deliver_due(utcnow() + timedelta(minutes=5)) == {"sent": 0, "retried": 0, "failed": 0}
    assert len(twilio.requests) == 1


def test_a_unit_that_rolls_back_sends_nothing(sending_app):
    with MailServer() as server:
        sending_app.config.update(mail_settings(server))
        with sending_app.app_context():
            with pytest.raises(RuntimeError), unit():
                notify.queue_email(
                    "x@example.test",
                    "scheduler/email/case_expired",
                    "en",
                    utcnow(),
                    name="X",
                    reference="RC-AAAA-BBBB",
                    days=7,
                    base_url="http://x",
                )
                db.session.flush()
                raise RuntimeError("the request failed")
            with unit():
                notify.queue_email(
                    "y@example.test",
                    "scheduler/email/case_expired",
                    "en",
                    utcnow(),
                    name="Y",
                    reference="RC-CCCC-DDDD",
                    days=7,
                    base_url="http://x",
                )
        [row] = wait_for(lambda: [r for r in rows(sending_app) if r.status == "sent"])
        assert row.to == "y@example.test" and len(rows(sending_app)) == 1
        assert [mail["To"] for mail in server.messages] == ["y@example.test"]


def test_a_provider_outage_never_fails_the_request_and_leaves_the_row_to_the_retry_job(sending_app, twilio):
    twilio.failure = (503, {"code": 20503, "message": "Service unavailable", "status": 503})
    user = _seller_with_phone(sending_app)
    client = sending_app.test_client()
    assert SignIn(sending_app).password(client, user).status_code == 302
    [row] = wait_for(lambda: [r for r in rows(sending_app) if r.last_error])
    assert row.status == "pending" and row.tries == 1 and row.next_try_at == row.claimed_at + timedelta(minutes=1)
    assert client.get("/sign-in/code").status_code == 200
    twilio.failure = None
    with sending_app.app_context():
        assert notify.deliver_due(row.next_try_at)["sent"] == 1
    [row] = rows(sending_app)
    assert row.status == "sent" and row.tries == 2


_sent: list[int] = []
_sent_lock = threading.Lock()


class CountingSender:
    """Records every send; slow enough that the racers overlap."""

    def send(self, message) -> str:
        time.sleep(0.005)
        with _sent_lock:
            _sent.append(message.id)
        return f"count-{message.id}"


def test_an_immediate_send_the_retry_job_and_run_once_never_send_one_message_twice(live_app):
    live_app.config.update(RECOVERY_SENDER=f"{__name__}:CountingSender", RECOVERY_SEND_AFTER_COMMIT=False)
    _sent.clear()
    now = utcnow()
    ids = queued_notices(live_app, 40, now)
    outbox_job = next(job for job in jobs.JOBS if job.name == "outbox")
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def racer(work):
        with live_app.app_context():
            try:
                start.wait()
                work()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    def immediate():
        for message_id in ids:
            notify.send_now([message_id], now)

    def retry_job():
        while notify.deliver_due(now, limit=3)["sent"]:
            pass

    def run_once():  # what `flask scheduler run-once` does for the outbox, beside a live runner
        for _ in range(15):
            jobs.run_job(outbox_job, now, holder="run-once")

    threads = [threading.Thread(target=racer, args=(work,)) for work in (immediate, retry_job, run_once)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(_sent) == ids  # every message once, none twice
    assert {(row.status, row.tries) for row in rows(live_app)} == {("sent", 1)}


def test_a_claim_whose_sender_died_is_sent_again_after_the_timeout(app, db, now):
    app.config["RECOVERY_OUTBOX_CLAIM_TIMEOUT_SECONDS"] = 300
    row = queued_code(PHONE, "123456", now, locale="ja")
    [dead] = notify.services.claim_due(now)  # claimed, then the process died mid-send
    db.session.flush()
    assert notify.deliver_due(now + timedelta(minutes=1)) == {"sent": 0, "retried": 0, "failed": 0}
    later = now + timedelta(minutes=5, seconds=1)
    assert notify.deliver_due(later) == {"sent": 1, "retried": 0, "failed": 0, "released": 1}
    # Had the first sender come back after all, its outcome is no longer its to write.
    assert notify.services.record_sent(dead, later, provider_id="late", keeps_text=True) is False
    db.session.refresh(row)
    assert row.status == "sent" and row.tries == 2 and row.provider_id is None


class _DatabaseAway:
    """The database dropping the sender's connection when it records a sent
    message, the way a restart or a failover does, ``times`` times in a row."""

    def __init__(self, engine, times: int):
        self.engine, self.left, self.refused = engine, times, 0
        self.error = engine.dialect.loaded_dbapi.OperationalError

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._drop)
        return self

    def __exit__(self, *_exc):
        event.remove(self.engine, "before_cursor_execute", self._drop)

    def _drop(self, _connection, _cursor, statement, *_args):
        if self.left and statement.startswith("UPDATE outbox") and "sent_at" in statement:
            self.left -= 1
            self.refused += 1
            raise self.error("server closed the connection unexpectedly")


def test_a_sent_message_is_recorded_once_the_database_is_back_and_never_sent_twice(live_app, caplog):
    live_app.config.update(RECOVERY_SENDER=f"{__name__}:CountingSender", RECOVERY_SEND_AFTER_COMMIT=False)
    _sent.clear()
    now = utcnow()
    [message_id] = queued_notices(live_app, 1, now)
    with live_app.app_context():
        with _DatabaseAway(db.engine, times=2) as away:
            assert notify.send_now([message_id], now)["sent"] == 1
        assert away.refused == 2
        db.session.remove()
    assert _sent == [message_id]
    [row] = rows(live_app)
    assert (row.status, row.tries, row.claim_token, row.provider_id) == ("sent", 1, None, f"count-{message_id}")
    assert "the database did not take the record" in caplog.text
    # Nothing is left for the retry job, however late it runs.
    with live_app.app_context():
        assert notify.deliver_due(now + timedelta(hours=1)) == {"sent": 0, "retried": 0, "failed": 0}
    assert _sent == [message_id]


def test_a_database_away_for_longer_stops_the_batch_and_says_what_may_go_twice(live_app, caplog):
    live_app.config.update(
        RECOVERY_SENDER=f"{__name__}:CountingSender", RECOVERY_SEND_AFTER_COMMIT=False, RECOVERY_OUTBOX_RECORD_SECONDS=1
    )
    _sent.clear()
    now = utcnow()
    first, second = queued_notices(live_app, 2, now)
    with live_app.app_context():
        with _DatabaseAway(db.engine, times=1000), pytest.raises(OperationalError):
            notify.deliver_due(now + timedelta(minutes=2))
        db.session.remove()
    assert _sent == [first]  # the second is not sent while nothing can be recorded
    assert {row.id: row.status for row in rows(live_app)} == {first: "sending", second: "sending"}
    assert f"message {first} was sent but could not be recorded" in caplog.text
