"""Your sessions (ASVS 7.5.2, 7.4.3). A manager ending anyone's is in tests/staff/test_user_search.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from recovery_app.auth import services
from recovery_app.extensions import db
from recovery_app.models import SecurityEvent, User, UserSession
from recovery_app.models.base import utcnow
from tests.account.conftest import SIGN_IN_PATH
from tests.helpers import units_at_once
from tests.served import sellers

PHONE_UA = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36"


@pytest.fixture
def me(client, auth, make):
    user = make.user(locale="en")
    auth.fast_sign_in(client, user)
    auth.fresh_code(client)
    return user


def _other_browser(app, auth, user, *, browser=PHONE_UA, address="198.51.100.23", at=None):
    other = app.test_client()
    row = auth.fast_sign_in(other, user, at=at)
    row.browser, row.address = browser, address
    return other, row


def _alive(browser) -> bool:
    return not browser.get("/account/password").headers.get("Location", "").startswith(SIGN_IN_PATH)


def test_sessions_page_lists_each_open_session_and_marks_this_one(app, db, client, auth, me):
    _other_browser(app, auth, me)
    ended = auth.fast_sign_in(app.test_client(), me)
    ended.ended_at = utcnow()
    stale = auth.fast_sign_in(app.test_client(), me, at=utcnow() - timedelta(hours=2))  # idle past 30 minutes
    db.session.flush()
    page = client.get("/account/sessions", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Chrome / Android" in page and "198.51.100.23" in page
    assert page.count("This session") == 1
    assert page.count('name="session_id"') == 1  # one other session; this one and dead ones have no button
    assert f'value="{ended.id}"' not in page and f'value="{stale.id}"' not in page


def test_ending_one_session_signs_that_browser_out_only(app, db, client, auth, me):
    other, row = _other_browser(app, auth, me)
    third, _ = _other_browser(app, auth, me)
    response = client.post("/account/sessions/end", data={"session_id": row.id})
    assert response.status_code == 302
    db.session.refresh(row)
    assert row.ended_at is not None and row.end_reason == "ended_by_user"
    assert not _alive(other) and _alive(third)
    assert db.session.execute(select(SecurityEvent).where(SecurityEvent.kind == "sessions_ended")).scalar_one()


def test_ending_all_others_keeps_this_session(app, db, client, auth, me):
    # ASVS 7.5.2: end all others; half-way sign-ins die too (the epoch moves on)
    other, row = _other_browser(app, auth, me)
    half_way = app.test_client()
    auth.fast_password_step(half_way, me)
    epoch = me.session_epoch
    response = client.post("/account/sessions/end", data={"scope": "others"}, headers={"Accept-Language": "en"})
    assert response.status_code == 302
    db.session.refresh(me)
    db.session.refresh(row)
    assert me.session_epoch == epoch + 1 and row.ended_at is not None
    assert _alive(client) and not _alive(other)
    from recovery_app.auth.sessions import pending_user

    with app.test_request_context():
        from flask import session

        with half_way.session_transaction() as sess:
            session.update(sess)
        assert pending_user() is None


def test_this_session_cannot_be_ended_from_the_list(db, client, auth, me):
    with client.session_transaction() as sess:
        sid = sess["sid"]
    from recovery_app.auth.sessions import token_hash

    row = db.session.execute(select(UserSession).where(UserSession.token_hash == token_hash(sid))).scalar_one()
    response = client.post("/account/sessions/end", data={"session_id": row.id})
    assert response.status_code == 302
    db.session.refresh(row)
    assert row.ended_at is None


def test_ending_someone_elses_session_is_404(app, db, client, auth, make, me):
    stranger = make.user()
    _, row = _other_browser(app, auth, stranger)
    assert client.post("/account/sessions/end", data={"session_id": row.id}).status_code == 404
    assert client.post("/account/sessions/end", data={"session_id": 10**8}).status_code == 404
    db.session.refresh(row)
    assert row.ended_at is None


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"session_id": "abc"},
        {"scope": "everything"},
        {"session_id": "1" * 400},
        {"session_id": "   "},  # blank: the optional field lets it through as "not given"
        {"session_id": "\t"},
        {"session_id": "²"},
    ],
)
def test_ending_sessions_with_bad_input_is_a_clear_400(app, db, client, auth, me, data):
    other, row = _other_browser(app, auth, me)
    assert client.post("/account/sessions/end", data=data).status_code == 400
    db.session.refresh(row)
    assert row.ended_at is None


def test_ending_sessions_without_csrf_token_changes_nothing(app, db, client, auth, me):
    _, row = _other_browser(app, auth, me)
    assert client.post("/account/sessions/end", data={"scope": "others"}, csrf=False).status_code == 400
    db.session.refresh(row)
    assert row.ended_at is None


def test_after_a_change_the_page_offers_one_button_to_end_the_others(app, client, auth, me):
    # ASVS 7.4.3
    _other_browser(app, auth, me)
    for after, heading in (
        ("password", "Your password was changed."),
        ("method", "2-step verification was changed"),
        ("email", "Your e-mail address was changed."),
    ):
        page = client.get(f"/account/sessions?after={after}", headers={"Accept-Language": "en"}).get_data(as_text=True)
        assert heading in page and "Other sessions still signed in: 1." in page
    plain = client.get("/account/sessions?after=<script>", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Other sessions still signed in" not in plain and "<script>" not in plain


def test_no_offer_when_there_is_no_other_session(client, me):
    page = client.get("/account/sessions?after=password", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Other sessions still signed in" not in page and "You are signed in only here" in page


def test_two_ends_of_every_session_at_once_both_move_the_epoch(live_app, backend):
    """Two browsers press "sign out everywhere" at the same moment. Each must
    move the epoch on: if the second only wrote the number the first had
    written, a session stamped with it by one would outlive the other."""
    ((email, _seed),) = sellers(live_app, 1)
    with live_app.app_context():
        before = db.session.execute(select(User.session_epoch).where(User.email == email)).scalar_one()
        db.session.remove()

    def read():
        return (db.session.execute(select(User).where(User.email == email)).scalar_one(),)

    def end_everything(user):
        return services.sign_out_everywhere(user, utcnow(), address="192.0.2.7", browser="test")

    outcomes = units_at_once(live_app, backend, [(read, end_everything), (read, end_everything)])
    assert not any(isinstance(outcome, Exception) for outcome in outcomes), outcomes
    with live_app.app_context():
        after = db.session.execute(select(User.session_epoch).where(User.email == email)).scalar_one()
        db.session.remove()
    assert after == before + 2
