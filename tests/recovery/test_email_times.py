"""The e-mail a seller account gets when a case is opened: its times carry the
reader's zone, and its link uses the configured base URL."""

from __future__ import annotations

import re

from tests.helpers import outbox_messages
from tests.recovery.conftest import full_form, send


def test_links_and_times_in_the_request_e_mail(app, client, make, auth, documents, db):
    app.config["RECOVERY_BASE_URL"] = "https://desk.example.test/"
    seller = make.user(locale="en", enrolled=False)
    auth.fast_password_step(client, seller)
    response = send(client, "/recovery/", full_form(documents))
    assert response.status_code == 302, response.get_data(as_text=True)
    body = outbox_messages("email", seller.email)[-1].body
    links = re.findall(r"https?://\S+", body)
    assert links and all(link.startswith("https://desk.example.test/") for link in links)
    assert "https://desk.example.test/account/password" in links
    assert re.search(r"Requested at: \d{1,2} [A-Z][a-z]+ 20\d\d, \d\d:\d\d UTC", body)
