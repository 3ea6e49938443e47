"""The one way tests sign a client in.

``auth.password`` and ``auth.sign_in`` post the real forms, as a browser
would (e-mail and password, then the authenticator code). The fast path,
``auth.fast_sign_in`` and ``auth.fast_password_step``, puts a client straight
into a signed-in or password-step state the way the sign-in pages leave it
(the same session keys and server-side rows), for tests about what comes
after signing in; it skips the password hash and the 2SV notices.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import pyotp

from recovery_app.auth.sessions import FRESH_KEY, PENDING_KEY, SID_KEY, token_hash
from recovery_app.extensions import db
from recovery_app.models import PasswordStep, UserSession
from recovery_app.models.base import utcnow

from .helpers import TEST_PASSWORD


class SignIn:
    def __init__(self, app):
        self.app = app

    # --- the real forms ---------------------------------------------------------------

    def password(self, client, user, *, password: str = TEST_PASSWORD, next: str = ""):
        return client.post("/sign-in", data={"email": user.email, "password": password, "next": next})

    def totp(self, user, at=None) -> str:
        totp = pyotp.TOTP(user._test_totp_seed)
        return totp.at(at) if at is not None else totp.now()

    def sign_in(self, client, user, *, remember: bool = False):
        """Password, then the current authenticator code: a full session."""
        self.password(client, user)
        data = {"code": self.totp(user)}
        if remember:
            data["remember_device"] = "y"
        response = client.post("/sign-in/code", data=data)
        assert response.status_code == 302, response.get_data(as_text=True)
        return response

    # --- the fast path ----------------------------------------------------------------

    def fast_password_step(self, client, user, *, at: datetime | None = None) -> None:
        moment = at or utcnow()
        token = secrets.token_urlsafe(32)
        db.session.add(
            PasswordStep(
                user_id=user.id, token_hash=token_hash(token), created_at=moment, address="127.0.0.1", browser="pytest"
            )
        )
        db.session.flush()
        with client.session_transaction() as sess:
            sess.clear()
            sess[PENDING_KEY] = {"uid": user.id, "epoch": user.session_epoch, "at": moment.isoformat(), "token": token}

    def fast_sign_in(self, client, user, *, at: datetime | None = None) -> UserSession:
        moment = at or utcnow()
        token = secrets.token_urlsafe(32)
        row = UserSession(
            user_id=user.id,
            token_hash=token_hash(token),
            created_at=moment,
            last_seen_at=moment,
            address="127.0.0.1",
            browser="pytest",
        )
        db.session.add(row)
        db.session.flush()
        with client.session_transaction() as sess:
            sess.clear()
            sess[SID_KEY] = token
            sess["_user_id"] = user.get_id()
            sess["_fresh"] = True
        return row

    def client_for(self, user, *, fresh_code: bool = False):
        """A new client with a full session of ``user`` (the fast path)."""
        client = self.app.test_client()
        self.fast_sign_in(client, user)
        if fresh_code:
            self.fresh_code(client)
        return client

    def fresh_code(self, client, *, at: datetime | None = None) -> None:
        """As if the signed-in user had just passed the confirm-with-a-code page."""
        with client.session_transaction() as sess:
            sess[FRESH_KEY] = (at or utcnow()).isoformat()
