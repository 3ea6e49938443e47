"""A manager invites a reviewer or manager: single-use link, acceptance makes a
staff login that must enroll 2SV, every step audited (ASVS 6.4.1, 6.3.8, 16.2.1)."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from recovery_app import audit
from recovery_app.account import services as account_services
from recovery_app.auth.sessions import token_hash
from recovery_app.database import unit
from recovery_app.extensions import db as _db
from recovery_app.models import ActionToken, AuditEvent, SecurityEvent, User
from tests.account.conftest import SIGN_IN_PATH, link_in_last_email
from tests.auth.test_enroll import enroll_app
from tests.helpers import outbox_messages

NEW_PASSWORD = "quiet lantern orchard 9107"
INVITE_PATH = "/account/invitation/"
NEWCOMER = "new.reviewer@example.test"
EN = {"Accept-Language": "en"}


def _count(db, model, *where) -> int:
    return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def _invite(client, email=NEWCOMER, role="reviewer", locale="en", **extra):
    return client.post("/staff/invite", data={"email": email, "role": role, "locale": locale, **extra}, headers=EN)


def _invitation(db, email=NEWCOMER) -> ActionToken:
    return db.session.execute(
        select(ActionToken).where(
            ActionToken.purpose == "invite", ActionToken.email == email, ActionToken.used_at.is_(None)
        )
    ).scalar_one()


def _accept(client, path, name="Rin Newcomer", password=NEW_PASSWORD, **kwargs):
    return client.post(path, data={"display_name": name, "password": password, "confirm": password}, **kwargs)


def _actions(db) -> list[str]:
    return list(db.session.execute(select(AuditEvent.action).order_by(AuditEvent.seq)).scalars())


# --- the journey ----------------------------------------------------------------------


def test_invited_reviewer_accepts_enrolls_2sv_at_first_sign_in_and_reaches_the_queue(app, db, manager_client, auth):
    # ASVS 6.4.1, 6.3.3: a random single-use link; the new login must enroll its own 2SV
    manager = manager_client.manager
    response = _invite(manager_client)
    assert response.status_code == 302 and response.headers["Location"].endswith("/staff/")
    page = manager_client.get("/staff/", headers=EN).get_data(as_text=True)
    assert "An invitation was sent to new.reviewer@example.test" in page
    assert "Invitations waiting for an answer" in page and NEWCOMER in page

    message = outbox_messages("email", NEWCOMER)[-1]
    assert message.template == "staff/email/invitation" and message.locale == "en"
    assert "review team as a reviewer" in message.body and app.config["RECOVERY_BASE_URL"] + INVITE_PATH in message.body
    path = link_in_last_email(NEWCOMER, INVITE_PATH)
    token = path.rsplit("/", 1)[1]
    stored = _invitation(db)
    assert len(token) >= 43 and stored.token_hash == token_hash(token)
    assert (stored.account_id, stored.role, stored.created_by_id) == (None, "reviewer", manager.id)
    assert timedelta(hours=71) < stored.expires_at - stored.created_at <= timedelta(hours=72)

    visitor = app.test_client()
    form = visitor.get(path, headers=EN).get_data(as_text=True)
    assert "Join the review team" in form and "review team as a reviewer" in form and "seller account" not in form
    accepted = _accept(visitor, path)
    assert accepted.status_code == 302 and accepted.headers["Location"].endswith(SIGN_IN_PATH)
    with visitor.session_transaction() as sess:
        assert "_user_id" not in sess  # accepting signs nobody in: password and 2SV come next

    user = db.session.execute(select(User).where(User.email == NEWCOMER)).scalar_one()
    assert (user.role, user.account_id, user.display_name, user.locale) == ("reviewer", None, "Rin Newcomer", "en")
    assert user.must_enroll_2sv
    joined = outbox_messages("email", manager.email)[-1]
    assert joined.template == "staff/email/joined" and NEWCOMER in joined.body and "as a reviewer" in joined.body
    assert "/staff/invitations/" not in manager_client.get("/staff/", headers=EN).get_data(as_text=True)

    # First sign-in: the password, then 2SV enrollment before anything else.
    signed = auth.password(visitor, user, password=NEW_PASSWORD)
    assert signed.headers["Location"].endswith("/sign-in/setup")
    assert visitor.get("/review/").status_code == 302
    enroll_app(visitor)
    visitor.post("/sign-in/setup/skip-backup")
    visitor.post("/sign-in/setup/recovery-codes")
    finished = visitor.post("/sign-in/setup/finish", follow_redirects=True)
    assert finished.status_code == 200 and finished.request.path == "/review/"
    db.session.refresh(user)
    assert not user.must_enroll_2sv
    assert visitor.get("/staff/").status_code == 404  # a reviewer, not a manager

    assert {"staff.invited", "staff.joined"} <= set(_actions(db))
    assert audit.verify().ok


def test_an_invited_manager_becomes_a_manager(app, db, manager_client):
    _invite(manager_client, role="manager", locale="ja")
    message = outbox_messages("email", NEWCOMER)[-1]
    assert message.locale == "ja" and "マネージャー" in message.body and "審査チーム" in message.body
    path = link_in_last_email(NEWCOMER, INVITE_PATH)
    visitor = app.test_client()
    page = visitor.get(path, headers={"Accept-Language": "ja"}).get_data(as_text=True)
    assert "審査チームに参加する" in page and "マネージャーとして" in page
    assert _accept(visitor, path).status_code == 302
    user = db.session.execute(select(User).where(User.email == NEWCOMER)).scalar_one()
    assert (user.role, user.locale, user.must_enroll_2sv) == ("manager", "ja", True)


# --- the audit trail and security events ----------------------------------------------------------


def test_invitation_cancel_and_acceptance_are_audited_with_who_what_and_where(app, db, manager_client):
    # ASVS 16.2.1: who, what, when, where; no secret in the log
    manager = manager_client.manager
    manager_client.post(
        "/staff/invite",
        data={"email": "first@example.test", "role": "manager", "locale": "en"},
        environ_base={"REMOTE_ADDR": "192.0.2.7"},
    )
    first = _invitation(db, "first@example.test")
    assert manager_client.post(f"/staff/invitations/{first.id}/cancel").status_code == 302
    _invite(manager_client)
    path = link_in_last_email(NEWCOMER, INVITE_PATH)
    _accept(app.test_client(), path, environ_base={"REMOTE_ADDR": "198.51.100.4"})
    user = db.session.execute(select(User).where(User.email == NEWCOMER)).scalar_one()

    rows = {
        row.action: row for row in db.session.execute(select(AuditEvent)).scalars() if row.action.startswith("staff.")
    }
    assert set(rows) == {"staff.invited", "staff.invitation_cancelled", "staff.joined"}
    invited = (
        db.session.execute(select(AuditEvent).where(AuditEvent.action == "staff.invited").order_by(AuditEvent.seq))
        .scalars()
        .first()
    )
    assert (invited.actor_id, invited.subject_type, invited.subject_id, invited.address) == (
        manager.id,
        "invitation",
        str(first.id),
        "192.0.2.7",
    )
    assert invited.details == {"email": "first@example.test", "role": "manager", "locale": "en"}
    assert rows["staff.invitation_cancelled"].actor_id == manager.id
    joined = rows["staff.joined"]
    assert (joined.actor_id, joined.subject_id, joined.address) == (user.id, str(user.id), "198.51.100.4")
    assert joined.details["role"] == "reviewer" and joined.details["invited_by"] == manager.id
    token = path.rsplit("/", 1)[1]
    assert not any(token in str(row.details) for row in rows.values())
    assert audit.verify().ok

    events = db.session.execute(select(SecurityEvent).where(SecurityEvent.kind == "invited")).scalars().all()
    by_inviter = [e for e in events if e.user_id == manager.id]
    assert [e.details for e in by_inviter] == [
        {"invited": "first@example.test", "role": "manager"},
        {"invited": NEWCOMER, "role": "reviewer"},
    ]
    assert [e.details for e in events if e.user_id == user.id] == [{"accepted": True, "invited_by": manager.id}]


# --- who can reach the staff pages ------------------------------------------------------------------


def _staff_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/staff")]


@pytest.mark.parametrize("role", ["reviewer", "seller_owner", "seller_user"])
def test_nobody_but_a_manager_reaches_any_staff_page(app, db, auth, make, role):
    # ASVS 8.2.1: checked at the server, and the pages cannot even be found
    target = make.user("reviewer")
    inviter = app.test_client()
    auth.fast_sign_in(inviter, make.user("manager"))
    _invite(inviter, email="waiting@example.test")
    pending = _invitation(db, "waiting@example.test")
    rules = _staff_rules(app)
    assert {"/staff/", "/staff/users", "/staff/invite"} <= {rule.rule for rule in rules}
    client = app.test_client()
    auth.fast_sign_in(client, make.user(role, locale="en"))
    auth.fresh_code(client)
    before = (target.role, target.session_epoch, _count(db, ActionToken), _count(db, AuditEvent))
    for rule in rules:
        path = re.sub(r"<int:\w+>", str(target.id if "user" in rule.rule else pending.id), rule.rule)
        for method in sorted(rule.methods & {"GET", "POST"}):
            response = (
                client.get(path)
                if method == "GET"
                else client.post(path, data={"email": "someone@example.test", "role": "manager", "locale": "en"})
            )
            assert response.status_code == 404, (method, path)
    db.session.refresh(target)
    db.session.refresh(pending)
    assert (target.role, target.session_epoch, _count(db, ActionToken), _count(db, AuditEvent)) == before
    assert pending.used_at is None
    assert 'href="/staff/"' not in client.get("/help").get_data(as_text=True)


def test_visitors_are_sent_to_sign_in_and_managers_find_staff_in_the_navigation(app, db, auth, make):
    visitor = app.test_client()
    for rule in _staff_rules(app):
        path = re.sub(r"<int:\w+>", "1", rule.rule)
        response = visitor.get(path) if "GET" in rule.methods else visitor.post(path, data={"email": "a@example.test"})
        assert response.status_code == 302 and response.headers["Location"].startswith(SIGN_IN_PATH), path
    assert _count(db, ActionToken) == 0 and outbox_messages("email") == []
    manager = app.test_client()
    auth.fast_sign_in(manager, make.user("manager"))
    assert 'href="/staff/"' in manager.get("/help").get_data(as_text=True)


# --- links that must not work ----------------------------------------------------------------------


def test_a_used_link_is_refused_and_changes_nothing(app, db, manager_client):
    _invite(manager_client)
    path = link_in_last_email(NEWCOMER, INVITE_PATH)
    visitor = app.test_client()
    _accept(visitor, path)
    user = db.session.execute(select(User).where(User.email == NEWCOMER)).scalar_one()
    before = user.password_hash
    again = _accept(app.test_client(), path, password="another fine password 77", headers=EN)
    assert again.status_code == 404 and "This link cannot be used" in again.get_data(as_text=True)
    db.session.refresh(user)
    assert user.password_hash == before and _count(db, User, User.email == NEWCOMER) == 1


def test_an_expired_link_is_refused(app, db, manager_client):
    _invite(manager_client)
    path = link_in_last_email(NEWCOMER, INVITE_PATH)
    stored = _invitation(db)
    stored.expires_at = stored.created_at - timedelta(seconds=1)
    db.session.flush()
    response = _accept(app.test_client(), path, headers=EN)
    assert response.status_code == 404 and "This link cannot be used" in response.get_data(as_text=True)
    assert _count(db, User, User.email == NEWCOMER) == 0
    assert "/staff/invitations/" not in manager_client.get("/staff/").get_data(as_text=True)  # no longer waiting


@pytest.mark.parametrize("forged", ["x", "A" * 43, "A" * 5000, "..%2F..%2Fetc"])
def test_a_forged_link_is_refused(app, db, manager_client, forged):
    _invite(manager_client)
    users = _count(db, User)
    assert app.test_client().get(INVITE_PATH + forged).status_code == 404
    assert _accept(app.test_client(), INVITE_PATH + forged).status_code == 404
    assert _count(db, User) == users


def test_a_cancelled_link_or_an_older_one_stops_working(app, db, manager_client):
    _invite(manager_client)
    first = link_in_last_email(NEWCOMER, INVITE_PATH)
    _invite(manager_client, role="manager")
    second = link_in_last_email(NEWCOMER, INVITE_PATH)
    visitor = app.test_client()
    assert visitor.get(first).status_code == 404 and visitor.get(second).status_code == 200
    response = manager_client.post(f"/staff/invitations/{_invitation(db).id}/cancel", headers=EN, follow_redirects=True)
    assert "its link no longer works" in response.get_data(as_text=True)
    assert visitor.get(second).status_code == 404
    assert _accept(visitor, second).status_code == 404 and _count(db, User, User.email == NEWCOMER) == 0


def test_the_link_of_a_manager_who_is_no_longer_a_manager_grants_nothing(app, db, auth, make, manager_client):
    inviter = make.user("manager", locale="en")
    browser = app.test_client()
    auth.fast_sign_in(browser, inviter)
    _invite(browser, role="manager")
    path = link_in_last_email(NEWCOMER, INVITE_PATH)
    manager_client.post(f"/staff/{inviter.id}/role", data={"role": "reviewer"})
    assert NEWCOMER not in manager_client.get("/staff/").get_data(as_text=True)  # no longer listed as waiting
    assert app.test_client().get(path).status_code == 404
    assert _accept(app.test_client(), path).status_code == 404
    assert _count(db, User, User.email == NEWCOMER) == 0


def test_cancelling_is_for_staff_invitations_only(app, db, auth, make, manager_client):
    owner = make.user("seller_owner", locale="en")
    owner_browser = app.test_client()
    auth.fast_sign_in(owner_browser, owner)
    owner_browser.post("/account/users/invite", data={"email": "seller.person@example.test", "locale": "en"})
    seller_invitation = _invitation(db, "seller.person@example.test")
    assert manager_client.post(f"/staff/invitations/{seller_invitation.id}/cancel").status_code == 404
    assert manager_client.post("/staff/invitations/999999/cancel").status_code == 404
    _invite(manager_client)
    staff_invitation = _invitation(db)
    assert owner_browser.post(f"/account/users/invitations/{staff_invitation.id}/cancel").status_code == 404
    assert manager_client.post(f"/staff/invitations/{staff_invitation.id}/cancel", csrf=False).status_code == 400
    db.session.refresh(seller_invitation)
    db.session.refresh(staff_invitation)
    assert seller_invitation.used_at is None and staff_invitation.used_at is None
    assert NEWCOMER not in owner_browser.get("/account/users").get_data(as_text=True)


# --- addresses, input and limits ---------------------------------------------------------------------


def test_an_address_with_a_seller_login_gets_the_same_answer_and_a_notice_without_link(app, db, make, manager_client):
    # ASVS 6.3.8: the answer does not say whether the address has a login
    seller = make.user("seller_owner", locale="ja")
    known = _invite(manager_client, email=seller.email.upper())
    unknown = _invite(manager_client, email="nobody.yet@example.test")
    assert known.status_code == unknown.status_code == 302
    page = manager_client.get("/staff/", headers=EN).get_data(as_text=True)
    assert seller.email in page and "nobody.yet@example.test" in page
    notice = outbox_messages("email", seller.email)[-1]
    assert notice.template == "staff/email/invitation_existing_login" and INVITE_PATH not in notice.body
    assert notice.locale == "ja" and "審査チーム" in notice.body
    db.session.refresh(seller)
    assert seller.role == "seller_owner"


def test_inviting_someone_already_on_the_staff_says_so(db, make, manager_client):
    reviewer = make.user("reviewer")
    response = _invite(manager_client, email=reviewer.email)
    assert response.status_code == 400 and "is already on the staff list" in response.get_data(as_text=True)
    assert _count(db, ActionToken) == 0 and outbox_messages("email") == []


@pytest.mark.parametrize(
    "data",
    [
        {"email": "not-an-address"},
        {"email": ""},
        {"email": "x" * 250 + "@example.test"},
        {"role": "seller_owner"},
        {"role": ""},
        {"locale": "xx"},
        {"email": "a\u202eb@example.test"},
    ],
)
def test_bad_input_gets_a_message_and_changes_nothing(db, manager_client, data):
    response = _invite(manager_client, **data)
    assert response.status_code == 400 and 'class="field-error"' in response.get_data(as_text=True)
    assert _count(db, ActionToken) == 0 and outbox_messages("email") == []


def test_inviting_without_csrf_token_is_refused(db, manager_client):
    response = manager_client.post(
        "/staff/invite", data={"email": NEWCOMER, "role": "reviewer", "locale": "en"}, csrf=False
    )
    assert response.status_code == 400 and _count(db, ActionToken) == 0


def test_staff_invitations_are_rate_limited_per_address(app, db, manager_client):
    # ASVS 2.4.1
    app.config["RECOVERY_INVITE_LIMIT_PER_ADDRESS"] = "2 per day"
    assert [_invite(manager_client).status_code for _ in range(3)] == [302, 302, 429]
    assert _invite(manager_client, email="other@example.test").status_code == 302
    assert len(outbox_messages("email")) == 3


def test_an_invitation_without_an_address_is_refused_and_not_counted(app, db, manager_client, caplog):
    app.config["RECOVERY_INVITE_LIMIT_PER_ADDRESS"] = "1 per day"
    assert [_invite(manager_client, email="").status_code for _ in range(3)] == [400, 400, 400]
    assert not [record for record in caplog.records if record.levelname == "ERROR"]
    assert [_invite(manager_client).status_code for _ in range(2)] == [302, 429]


def test_a_bad_password_on_acceptance_says_why_and_keeps_the_link(app, db, manager_client):
    _invite(manager_client)
    path = link_in_last_email(NEWCOMER, INVITE_PATH)
    visitor = app.test_client()
    response = _accept(visitor, path, password="short pw 1", headers=EN)
    assert response.status_code == 400 and "at least 12 characters" in response.get_data(as_text=True)
    assert "Join the review team" in response.get_data(as_text=True)
    assert _count(db, User, User.email == NEWCOMER) == 0 and visitor.get(path).status_code == 200


# --- two acceptances at once ------------------------------------------------------------------------


def test_two_acceptances_of_one_link_at_once_make_one_user(live_app):
    """The conditional UPDATE that claims the link, under real concurrency."""
    from recovery_app.auth.users import create_user
    from recovery_app.models.base import utcnow
    from recovery_app.staff import services

    with live_app.test_request_context():
        with unit():
            manager = create_user(
                email="boss@example.test", password="x", role="manager", now=utcnow(), check_password=False
            )
            _db.session.flush()
            services.invite(manager, NEWCOMER, "reviewer", "en", utcnow(), address=None, browser=None)
        body = outbox_messages("email", NEWCOMER)[-1].body
    token = re.search(re.escape(INVITE_PATH) + r"([A-Za-z0-9_\-]+)", body).group(1)
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def work(name):
        with live_app.test_request_context(headers=EN):
            start.wait()
            try:
                with unit():
                    account_services.accept_invitation(
                        token, name, NEW_PASSWORD, NEW_PASSWORD, utcnow(), address=None, browser=None
                    )
                outcomes.append("accepted")
            except account_services.LinkInvalid:
                outcomes.append("refused")
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                outcomes.append(repr(exc))

    threads = [threading.Thread(target=work, args=(name,)) for name in ("First", "Second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["accepted", "refused"], outcomes
    with live_app.app_context():
        assert (
            _db.session.execute(select(func.count()).select_from(User).where(User.email == NEWCOMER)).scalar_one() == 1
        )
        joined = _db.session.execute(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "staff.joined")
        ).scalar_one()
        assert joined == 1 and audit.verify().ok
