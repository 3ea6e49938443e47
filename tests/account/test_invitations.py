"""Several users per seller account: invitations, acceptance, removal (issue 2 item 6)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from recovery_app.auth.sessions import token_hash
from recovery_app.models import ActionToken, AuditEvent, SecurityEvent, User, UserSession
from tests.account.conftest import SIGN_IN_PATH, link_in_last_email
from tests.helpers import TEST_PASSWORD, outbox_messages

NEW_PASSWORD = "quiet lantern orchard 9107"
INVITE_PATH = "/account/invitation/"


def _count(db, model, *where) -> int:
    return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def _invite(client, email="new.person@example.test", locale="en", **extra):
    return client.post("/account/users/invite", data={"email": email, "locale": locale, **extra})


def test_owner_sees_the_users_of_their_account_only(client, make, signed_in_owner):
    colleague = make.user("seller_user", account=signed_in_owner.account)
    stranger = make.user("seller_user")
    page = client.get("/account/users", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert signed_in_owner.email in page and colleague.email in page
    assert stranger.email not in page


def test_invitation_journey_ends_with_own_login_that_must_enroll_2sv(app, db, client, make, signed_in_owner, now):
    # ASVS 6.4.1, 6.3.3: a random single-use link; the new login has no 2SV yet, so it must enroll
    response = _invite(client)
    assert response.status_code == 302 and response.headers["Location"].endswith("/account/users")
    path = link_in_last_email("new.person@example.test", INVITE_PATH)
    token = path.rsplit("/", 1)[1]
    assert len(token) >= 43  # 32 random bytes
    stored = db.session.execute(select(ActionToken).where(ActionToken.purpose == "invite")).scalar_one()
    assert stored.token_hash == token_hash(token) and token not in stored.token_hash
    assert timedelta(hours=71) < stored.expires_at - stored.created_at <= timedelta(hours=72)
    assert "new.person@example.test" in client.get("/account/users").get_data(as_text=True)

    visitor = app.test_client()
    form = visitor.get(path, headers={"Accept-Language": "en"})
    assert form.status_code == 200 and 'autocomplete="new-password"' in form.get_data(as_text=True)
    accepted = visitor.post(path, data={"display_name": "Hanako", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert accepted.status_code == 302 and accepted.headers["Location"].endswith(SIGN_IN_PATH)

    user = db.session.execute(select(User).where(User.email == "new.person@example.test")).scalar_one()
    assert user.account_id == signed_in_owner.account_id and user.role == "seller_user"
    assert user.must_enroll_2sv and user.locale == "en" and user.display_name == "Hanako"
    assert user.password_hash != NEW_PASSWORD
    with visitor.session_transaction() as sess:
        assert "_user_id" not in sess  # accepting does not sign in: password and 2SV come next
    assert outbox_messages("email", signed_in_owner.email)[-1].template == "account/email/invitation_accepted"
    assert _count(db, SecurityEvent, SecurityEvent.kind == "invited") == 2


def test_invitation_e_mail_never_carries_a_code_and_uses_the_configured_address(app, client, signed_in_owner):
    _invite(client, locale="ja")
    message = outbox_messages("email", "new.person@example.test")[-1]
    assert message.locale == "ja"
    assert app.config["RECOVERY_BASE_URL"] + INVITE_PATH in message.body


def test_reused_invitation_link_gets_the_clear_page_and_changes_nothing(app, db, client, signed_in_owner):
    # ASVS 6.4.1: single use
    _invite(client)
    path = link_in_last_email("new.person@example.test", INVITE_PATH)
    visitor = app.test_client()
    visitor.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    user = db.session.execute(select(User).where(User.email == "new.person@example.test")).scalar_one()
    before = user.password_hash
    again = visitor.post(
        path,
        data={"password": "another fine password 77", "confirm": "another fine password 77"},
        headers={"Accept-Language": "en"},
    )
    assert again.status_code == 404 and "This link cannot be used" in again.get_data(as_text=True)
    assert visitor.get(path).status_code == 404
    db.session.refresh(user)
    assert user.password_hash == before
    assert _count(db, User, User.email == "new.person@example.test") == 1


def test_expired_invitation_link_is_refused(app, db, client, signed_in_owner):
    _invite(client)
    path = link_in_last_email("new.person@example.test", INVITE_PATH)
    stored = db.session.execute(select(ActionToken).where(ActionToken.purpose == "invite")).scalar_one()
    stored.expires_at = stored.created_at - timedelta(seconds=1)
    db.session.flush()
    visitor = app.test_client()
    response = visitor.post(
        path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, headers={"Accept-Language": "en"}
    )
    assert response.status_code == 404 and "This link cannot be used" in response.get_data(as_text=True)
    assert _count(db, User, User.email == "new.person@example.test") == 0


@pytest.mark.parametrize("forged", ["x", "A" * 43, "A" * 5000, "%00", "..%2F..%2Fetc"])
def test_forged_invitation_token_is_refused(app, db, client, signed_in_owner, forged):
    _invite(client)
    users_before = _count(db, User)
    response = app.test_client().post(INVITE_PATH + forged, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == (400 if forged == "%00" else 404)  # a control character is refused outright
    assert _count(db, User) == users_before


def test_a_newer_invitation_replaces_the_older_link(app, db, client, signed_in_owner):
    _invite(client)
    first = link_in_last_email("new.person@example.test", INVITE_PATH)
    _invite(client)
    second = link_in_last_email("new.person@example.test", INVITE_PATH)
    assert first != second
    visitor = app.test_client()
    assert visitor.get(first).status_code == 404
    assert visitor.get(second).status_code == 200


@pytest.mark.parametrize(
    "password, message",
    [
        ("short pw 1", "at least 12 characters"),
        ("password1234", "leaked passwords"),
        ("new.person@example.test", "e-mail address"),
        ("x" * 300, "at most 256 characters"),
    ],
)
def test_accepting_with_a_bad_password_says_why_and_keeps_the_link(app, db, client, signed_in_owner, password, message):
    # ASVS 6.2.1, 6.2.4, 6.2.11
    _invite(client)
    path = link_in_last_email("new.person@example.test", INVITE_PATH)
    visitor = app.test_client()
    response = visitor.post(path, data={"password": password, "confirm": password}, headers={"Accept-Language": "en"})
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert _count(db, User, User.email == "new.person@example.test") == 0
    assert visitor.get(path).status_code == 200  # the link still works


def test_accepting_with_mismatched_passwords_or_an_over_long_name_changes_nothing(app, db, client, signed_in_owner):
    _invite(client)
    path = link_in_last_email("new.person@example.test", INVITE_PATH)
    visitor = app.test_client()
    mismatch = visitor.post(
        path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"}, headers={"Accept-Language": "en"}
    )
    assert mismatch.status_code == 400 and "not the same" in mismatch.get_data(as_text=True)
    long_name = visitor.post(
        path,
        data={"display_name": "n" * 201, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        headers={"Accept-Language": "en"},
    )
    assert long_name.status_code == 400 and "at most 200" in long_name.get_data(as_text=True)
    assert _count(db, User, User.email == "new.person@example.test") == 0


def test_accepting_without_csrf_token_is_refused(app, db, client, signed_in_owner):
    _invite(client)
    path = link_in_last_email("new.person@example.test", INVITE_PATH)
    response = app.test_client().post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, csrf=False)
    assert response.status_code == 400
    assert _count(db, User, User.email == "new.person@example.test") == 0


def test_inviting_someone_already_on_this_account_gets_a_clear_message(db, client, make, signed_in_owner):
    colleague = make.user("seller_user", account=signed_in_owner.account)
    response = _invite(client, email=colleague.email.upper())
    assert response.status_code == 400
    assert "already has a login on this account" in response.get_data(as_text=True)
    assert _count(db, ActionToken) == 0 and outbox_messages("email", colleague.email) == []


def test_inviting_an_address_with_a_login_elsewhere_looks_the_same_and_sends_no_link(
    app, db, client, make, signed_in_owner
):
    # ASVS 6.3.8: the owner cannot learn which addresses have logins on other accounts
    elsewhere = make.user("seller_user")
    known = _invite(client, email=elsewhere.email)
    unknown = _invite(client, email="nobody.yet@example.test")
    assert known.status_code == unknown.status_code == 302
    page = client.get("/account/users").get_data(as_text=True)
    assert elsewhere.email in page and "nobody.yet@example.test" in page  # both listed as waiting
    notice = outbox_messages("email", elsewhere.email)[-1]
    assert notice.template == "account/email/invitation_existing_login" and INVITE_PATH not in notice.body
    db.session.refresh(elsewhere)
    assert elsewhere.account_id != signed_in_owner.account_id


@pytest.mark.parametrize("email", ["not-an-address", "", "a@b", "x" * 250 + "@example.test", "a b@example.test"])
def test_inviting_a_bad_address_says_so_and_changes_nothing(db, client, signed_in_owner, email):
    response = _invite(client, email=email)
    assert response.status_code == 400 and 'class="field-error"' in response.get_data(as_text=True)
    assert _count(db, ActionToken) == 0 and outbox_messages("email") == []


def test_inviting_with_an_unknown_language_is_refused(db, client, signed_in_owner):
    response = _invite(client, locale="xx")
    assert response.status_code == 400 and _count(db, ActionToken) == 0


def test_inviting_without_csrf_token_is_refused(db, client, signed_in_owner):
    response = client.post("/account/users/invite", data={"email": "a@example.test", "locale": "en"}, csrf=False)
    assert response.status_code == 400 and _count(db, ActionToken) == 0


@pytest.mark.parametrize(
    "address", ["a,b@example.com", "<a>@example.com", "a@example.", "a@.com", "a;b@example.com", "a(b)@example.com"]
)
def test_an_address_mail_cannot_be_sent_to_as_written_is_refused(db, client, signed_in_owner, address):
    # A comma or angle brackets would change what the To: header says.
    response = _invite(client, email=address)
    assert response.status_code == 400 and "Enter an e-mail address like name@example.com." in response.get_data(
        as_text=True
    )
    assert _count(db, ActionToken) == 0


def test_an_empty_invitation_asks_for_the_other_persons_address(db, client, signed_in_owner):
    page = client.get("/account/users").get_data(as_text=True)
    assert re.search(
        r'<input[^>]*autocomplete="off"[^>]*name="email"|<input[^>]*name="email"[^>]*autocomplete="off"', page
    )
    response = _invite(client, email="")
    assert "Enter the e-mail address of the person to invite." in response.get_data(as_text=True)
    assert _count(db, ActionToken) == 0


def test_a_user_who_is_not_the_owner_cannot_invite_or_remove(db, client, auth, make, owner):
    member = make.user("seller_user", account=owner.account)
    auth.fast_sign_in(client, member)
    assert "/account/users" not in client.get("/settings/security").get_data(as_text=True)  # no link to a 404
    assert client.get("/account/users").status_code == 404
    assert _invite(client).status_code == 404
    assert client.post(f"/account/users/{owner.id}/remove").status_code == 404
    db.session.refresh(owner)
    assert owner.disabled_at is None and _count(db, ActionToken) == 0


def test_staff_and_visitors_cannot_reach_the_users_page(app, client, auth, make):
    assert app.test_client().get("/account/users").headers["Location"].startswith(SIGN_IN_PATH)
    auth.fast_sign_in(client, make.user("manager"))
    assert client.get("/account/users").status_code == 404


def test_owner_removes_a_user_who_is_disabled_and_signed_out_everywhere(app, db, client, auth, make, signed_in_owner):
    # ASVS 7.4.2: a disabled user's sessions end
    member = make.user("seller_user", account=signed_in_owner.account)
    member_browser = app.test_client()
    auth.fast_sign_in(member_browser, member)
    epoch = member.session_epoch
    assert client.get(f"/account/users/{member.id}/remove").status_code == 200
    response = client.post(f"/account/users/{member.id}/remove")
    assert response.status_code == 302
    db.session.refresh(member)
    assert member.disabled_at is not None and member.session_epoch == epoch + 1
    assert _count(db, UserSession, UserSession.user_id == member.id, UserSession.ended_at.is_(None)) == 0
    assert member_browser.get("/account/password").headers["Location"].startswith(SIGN_IN_PATH)
    audit = db.session.execute(select(AuditEvent).where(AuditEvent.action == "account.user_removed")).scalar_one()
    assert audit.actor_id == signed_in_owner.id and audit.subject_id == str(member.id)
    assert _count(db, SecurityEvent, SecurityEvent.kind == "user_removed", SecurityEvent.user_id == member.id) == 1


def test_owner_cannot_remove_themselves(db, client, signed_in_owner):
    response = client.post(f"/account/users/{signed_in_owner.id}/remove", headers={"Accept-Language": "en"})
    assert response.status_code == 400 and "cannot remove yourself" in response.get_data(as_text=True)
    db.session.refresh(signed_in_owner)
    assert signed_in_owner.disabled_at is None


def test_owner_removing_a_user_of_another_account_gets_404(db, client, make, signed_in_owner):
    stranger = make.user("seller_user")
    assert client.get(f"/account/users/{stranger.id}/remove").status_code == 404
    assert client.post(f"/account/users/{stranger.id}/remove").status_code == 404
    assert client.post("/account/users/999999/remove").status_code == 404
    db.session.refresh(stranger)
    assert stranger.disabled_at is None


def test_removing_without_csrf_token_changes_nothing(db, client, make, signed_in_owner):
    member = make.user("seller_user", account=signed_in_owner.account)
    assert client.post(f"/account/users/{member.id}/remove", csrf=False).status_code == 400
    db.session.refresh(member)
    assert member.disabled_at is None


def test_invitations_are_rate_limited_per_address_and_per_account(app, db, client, signed_in_owner):
    # ASVS 2.4.1
    app.config["RECOVERY_INVITE_LIMIT_PER_ADDRESS"] = "2 per day"
    app.config["RECOVERY_INVITE_LIMIT_PER_ACCOUNT"] = "4 per day"
    assert [_invite(client).status_code for _ in range(3)] == [302, 302, 429]
    assert [_invite(client, email=f"p{n}@example.test").status_code for n in range(3)] == [302, 302, 429]
    assert len(outbox_messages("email")) == 4


def test_a_removed_user_cannot_use_a_reset_link_sent_before(app, db, client, make, signed_in_owner):
    member = make.user("seller_user", account=signed_in_owner.account)
    app.test_client().post("/account/password/forgot", data={"email": member.email})
    path = link_in_last_email(member.email, "/account/password/reset/")
    client.post(f"/account/users/{member.id}/remove")
    response = app.test_client().post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 404
    db.session.refresh(member)
    from recovery_app.auth.passwords import verify_password

    assert verify_password(member.password_hash, TEST_PASSWORD)


def _invitation(db, email="new.person@example.test"):
    return db.session.execute(
        select(ActionToken).where(ActionToken.purpose == "invite", ActionToken.email == email)
    ).scalar_one()


def test_owner_cancels_a_waiting_invitation_and_its_link_stops_working(app, db, client, signed_in_owner):
    _invite(client)
    path = link_in_last_email("new.person@example.test", INVITE_PATH)
    response = client.post(f"/account/users/invitations/{_invitation(db).id}/cancel")
    assert response.status_code == 302
    assert app.test_client().get(path).status_code == 404
    assert "account/users/invitations/" not in client.get("/account/users").get_data(as_text=True)


def test_cancelling_another_accounts_invitation_is_404(app, db, client, auth, make, signed_in_owner):
    _invite(client)
    invitation = _invitation(db)
    stranger_owner = app.test_client()
    auth.fast_sign_in(stranger_owner, make.user("seller_owner"))
    assert stranger_owner.post(f"/account/users/invitations/{invitation.id}/cancel").status_code == 404
    member = app.test_client()
    auth.fast_sign_in(member, make.user("seller_user", account=signed_in_owner.account))
    assert member.post(f"/account/users/invitations/{invitation.id}/cancel").status_code == 404
    assert client.post(f"/account/users/invitations/{invitation.id}/cancel", csrf=False).status_code == 400
    assert client.post("/account/users/invitations/999999/cancel").status_code == 404
    db.session.refresh(invitation)
    assert invitation.used_at is None


def test_a_name_with_a_line_break_is_refused_and_markup_is_kept_as_text(app, db, client, signed_in_owner):
    # A header-injection attempt ("\r\nBcc:") in the name is refused with a message, nothing is created.
    _invite(client)
    path = link_in_last_email("new.person@example.test", INVITE_PATH)
    visitor = app.test_client()
    refused = visitor.post(
        path,
        data={"display_name": "Hanako\r\nBcc: x@evil.example", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        headers={"Accept-Language": "en"},
    )
    assert refused.status_code == 400 and "invisible or control characters" in refused.get_data(as_text=True)
    assert _count(db, User, User.email == "new.person@example.test") == 0
    visitor.post(path, data={"display_name": "  Hanako  <b>", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    user = db.session.execute(select(User).where(User.email == "new.person@example.test")).scalar_one()
    assert user.display_name == "Hanako <b>"
    page = client.get("/account/users").get_data(as_text=True)
    assert "&lt;b&gt;" in page and "<b>" not in page
