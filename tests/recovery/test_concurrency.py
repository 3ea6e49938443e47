"""Two submissions of the same seller at the same moment (two tabs, a double
tap) end with one case, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from recovery_app.auth.sessions import PENDING_KEY, token_hash
from recovery_app.auth.users import create_user, get_or_create_account
from recovery_app.extensions import db
from recovery_app.models import Case, Document, PasswordStep
from recovery_app.models.base import utcnow

from .conftest import full_form, send, stored_files


def test_simultaneous_submissions_open_a_single_case(live_app, documents):
    with live_app.app_context():
        account = get_or_create_account("Double tap shop", utcnow())
        user = create_user(
            email="double@example.test",
            password="x" * 20,
            role="seller_owner",
            account=account,
            now=utcnow(),
            check_password=False,
        )
        token = "two-tabs-of-one-browser"
        db.session.add(PasswordStep(user_id=user.id, token_hash=token_hash(token), created_at=utcnow()))
        db.session.commit()
        pending = {"uid": user.id, "epoch": user.session_epoch, "at": utcnow().isoformat(), "token": token}
    clients = [live_app.test_client(), live_app.test_client()]
    for client in clients:
        with client.session_transaction() as session:
            session[PENDING_KEY] = pending
    start = threading.Barrier(len(clients))
    statuses: list[int] = []

    def submit(client):
        form = full_form(documents)
        start.wait()
        statuses.append(send(client, "/recovery/", form).status_code)

    threads = [threading.Thread(target=submit, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [302, 302]  # the second one is shown the case the first opened
    with live_app.app_context():
        assert db.session.execute(select(func.count()).select_from(Case)).scalar_one() == 1
        assert db.session.execute(select(func.count()).select_from(Document)).scalar_one() == 3
        assert len(stored_files(live_app)) == 3
