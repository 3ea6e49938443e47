"""One language rule: the language a person uses (switched, or asked for by
their browser) carries through sign-in and becomes the one their e-mails and
calls use; a new user's first saved language is the one they used."""

from __future__ import annotations

from sqlalchemy import select

from recovery_app.models import User
from tests.account.conftest import link_in_last_email
from tests.helpers import later, outbox_messages

PHONE = "+819012345678"


def test_browser_language_carries_through_sign_in_and_is_saved(client, make, auth, db):
    user = make.user(locale="ja")  # saved Japanese, browser asks for English (the auth conftest)
    auth.password(client, user)
    assert '<html lang="en">' in client.get("/sign-in/code").get_data(as_text=True)
    auth.sign_in(client, user)
    home = client.get("/").get_data(as_text=True)
    assert '<html lang="en">' in home and "Welcome" in home
    db.session.refresh(user)
    assert user.locale == "en"


def test_switched_language_wins_over_the_browser_and_is_saved(client, make, auth, db):
    user = make.user(locale="en")
    client.post("/language/ja", data={"next": "/sign-in"})
    auth.sign_in(client, user)
    assert '<html lang="ja">' in client.get("/").get_data(as_text=True)
    db.session.refresh(user)
    assert user.locale == "ja"


def test_password_alone_does_not_change_the_saved_language(client, make, auth, db):
    # Someone who knows only the password must not change the language of the owner's notices.
    user = make.user(locale="ja")
    auth.password(client, user)
    db.session.refresh(user)
    assert user.locale == "ja"


def test_voice_code_is_read_in_the_language_of_the_page(client, make, auth, add_phone, db):
    user = make.user(locale="ja", enrolled=False)
    add_phone(user, PHONE, kind="voice")
    auth.password(client, user)
    [call] = outbox_messages("voice", PHONE)
    assert call.locale == "en"
    assert "、" not in call.body and ", " in call.body  # digits read with English pauses


def test_later_notice_e_mails_use_the_saved_language(client, make, auth, db, now):
    from recovery_app.auth import services

    user = make.user(locale="ja")
    auth.sign_in(client, user)
    db.session.refresh(user)
    services.notify(user, "security_change", later(now, minutes=1), change="method_added", address="?", browser="?")
    assert outbox_messages("email", user.email)[-1].locale == "en"


def test_invited_user_keeps_the_language_they_accepted_in(client, make, auth, db, app):
    owner = make.user("seller_owner", locale="ja")
    inviter = auth.client_for(owner, fresh_code=True)
    inviter.post("/account/users/invite", data={"email": "new-person@example.test", "locale": "ja"})
    [mail] = outbox_messages("email", "new-person@example.test")
    assert mail.locale == "ja"  # the invitation goes in the language the owner chose
    path = link_in_last_email("new-person@example.test", "/account/invitation/")
    response = client.post(
        path,
        data={
            "display_name": "New Person",
            "password": "a long new passphrase 7",
            "confirm": "a long new passphrase 7",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    created = db.session.execute(select(User).where(User.email == "new-person@example.test")).scalar_one()
    assert created.locale == "en"


def test_a_browser_that_asks_for_no_language_keeps_the_saved_one(client, make, auth, db):
    user = make.user(locale="en")
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = ""  # no choice expressed: the default is not a choice
    auth.sign_in(client, user)
    db.session.refresh(user)
    assert user.locale == "en"
    assert '<html lang="en">' in client.get("/").get_data(as_text=True)
