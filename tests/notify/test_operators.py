"""What operators and managers see: `flask outbox list --status`, `outbox
retry ID`, the pending and failed counts on /healthz (managers only) and on
the reports dashboard."""

from __future__ import annotations

from recovery_app import notify
from recovery_app.models import OutboxMessage
from tests.helpers import queued_code, queued_notice

PHONE = "+819012345678"


class ProviderDown:
    def send(self, message):
        raise notify.senders.SendError("provider unavailable")


def _failed_and_pending(app, db, now):
    app.config["RECOVERY_SENDER"] = f"{__name__}:ProviderDown"
    lost = queued_notice("lost@example.test", now)
    moment = now
    while lost.status != "failed":
        notify.deliver_due(moment)
        db.session.refresh(lost)
        moment = lost.next_try_at
    waiting = queued_code(PHONE, "123456", moment)
    app.config["RECOVERY_SENDER"] = None
    return lost, waiting


def test_outbox_list_shows_only_the_status_asked_for(app, db, now, runner):
    lost, waiting = _failed_and_pending(app, db, now)
    db.session.commit()
    failed = runner.invoke(args=["outbox", "list", "--status", "failed"])
    assert failed.exit_code == 0
    assert f"#{lost.id} " in failed.output and "[failed, tries 6]" in failed.output
    assert "last error: provider unavailable" in failed.output and f"#{waiting.id} " not in failed.output
    everything = runner.invoke(args=["outbox", "list"]).output
    assert f"#{waiting.id} " in everything and "123456" in everything  # development: codes readable


def test_outbox_retry_sends_a_failed_message_again(app, db, now, runner):
    lost, _ = _failed_and_pending(app, db, now)
    db.session.commit()
    result = runner.invoke(args=["outbox", "retry", str(lost.id)])
    assert result.exit_code == 0 and f"message #{lost.id} sent" in result.output
    row = db.session.get(OutboxMessage, lost.id, populate_existing=True)
    assert row.status == "sent" and row.tries == 1
    again = runner.invoke(args=["outbox", "retry", str(lost.id)])
    assert again.exit_code == 1 and "has not failed" in again.output


def test_managers_see_the_outbox_counts_on_healthz_and_nobody_else(app, db, now, client, make, auth):
    _failed_and_pending(app, db, now)
    db.session.commit()
    internal = client.get("/healthz").get_json()  # loopback may read the parts, not the outbox
    assert "database" in internal and "outbox" not in internal
    outsider = app.test_client().get("/healthz", environ_base={"REMOTE_ADDR": "203.0.113.9"}).get_json()
    assert set(outsider) == {"status"}
    reviewer = app.test_client()
    auth.fast_sign_in(reviewer, make.user("reviewer"))
    assert "outbox" not in reviewer.get("/healthz").get_json()
    auth.fast_sign_in(client, make.user("manager"))
    assert client.get("/healthz").get_json()["outbox"] == {"pending": 1, "failed": 1}


def test_the_dashboard_counts_waiting_and_failed_messages(app, db, now, client, make, auth):
    _failed_and_pending(app, db, now)
    auth.fast_sign_in(client, make.user("manager", locale="en"))
    html = client.get("/reports/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Messages that could not be sent: 1" in html and "Messages waiting to be sent or retried: 1" in html


def test_outbox_retry_of_a_number_no_message_can_have_says_so(runner):
    for number in ("99999999999999999999", "0", "-4", "seven"):
        result = runner.invoke(args=["outbox", "retry", "--", number])
        assert result.exit_code == 2 and "Invalid value for 'MESSAGE_ID'" in result.output, (number, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit)
