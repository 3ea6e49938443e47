"""CSRF on every state-changing route (ASVS 3.5.1, 3.3.2): the URL map is walked,
so routes added later are covered without editing this file."""

from __future__ import annotations

import re

import pytest

from recovery_app.auth import twofactor
from recovery_app.errors import CSRF_MESSAGE
from tests.security.conftest import ROLES, changed_tables, snapshot

# Posted by a provider, never by a browser: the provider's signature stands in
# for the token (tests/notify/test_delivery_reports.py); unsigned, they change nothing.
SIGNED_INSTEAD = {"notify.twilio_status"}


def post_rules(app):
    rules = [rule for rule in app.url_map.iter_rules() if "POST" in rule.methods and rule.endpoint != "static"]
    assert len(rules) >= 20, "the URL map walk found too few POST routes to be real"
    return rules


def fill(rule, values: dict) -> str:
    """The rule's path with plausible values: ids and references of real rows where the
    argument is known, harmless dummies otherwise."""
    path = rule.rule
    for match in re.finditer(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", rule.rule):
        converter, name = match.group(1) or "default", match.group(2)
        value = values.get(name)
        if value is None:
            value = "1" if converter == "int" else "dummy-value"
        path = path.replace(match.group(0), str(value), 1)
    return path


@pytest.fixture
def world(make, now, db, auth, app):
    """One of everything a route argument can name: methods, devices, users,
    invitations, a case. Ids come from the owner's own rows, so that the only
    thing standing between the request and a change is the missing token."""
    from recovery_app.account import services as account_services
    from recovery_app.models import ActionToken

    account = make.account()
    owner = make.user("seller_owner", account=account, locale="en")
    colleague = make.user("seller_user", account=account)
    twofactor.generate_recovery_codes(owner, now)
    device_token = twofactor.trust_device(owner, now, browser="pytest", address="127.0.0.1")
    with app.test_request_context():
        account_services.invite(owner, "invited.person@example.test", "en", now, address=None, browser=None)
    invitation = db.session.query(ActionToken).filter_by(email="invited.person@example.test").one()
    case = make.case(colleague)
    db.session.flush()
    method = twofactor.primary_method(owner)
    device = twofactor.trusted_device_for(owner, device_token, now)
    values = {
        "method_id": method.id,
        "device_id": device.id,
        "user_id": colleague.id,
        "invitation_id": invitation.id,
        "case_id": case.id,
        "reference": case.reference,
        "document_id": 1,
        "name": "sla",
        "code": "en",
        "token": "x" * 43,
    }
    return owner, values


def _assert_refused(response, path):
    assert response.status_code == 400, f"{path} answered {response.status_code} without a CSRF token"
    assert str(CSRF_MESSAGE) in response.get_data(as_text=True), f"{path} did not show the CSRF page"


@pytest.mark.parametrize("who", ("visitor", "password_step", *ROLES))
def test_every_post_route_refuses_a_missing_csrf_token_and_changes_nothing(app, db, world, make, auth, who):
    # ASVS 3.5.1 / 3.3.2: a cross-site form cannot change anything, whoever's browser it rides on
    owner, values = world
    client = app.test_client()
    if who == "password_step":
        auth.fast_password_step(client, owner)
    elif who == "seller_owner":
        auth.fast_sign_in(client, owner)
        auth.fresh_code(client)
    elif who != "visitor":
        auth.fast_sign_in(client, make.user(who, locale="en"))
        auth.fresh_code(client)
    for rule in post_rules(app):
        path = fill(rule, values)
        before = snapshot()
        response = client.post(
            path, data={"email": "attacker@example.test", "scope": "others", "code": "123456"}, csrf=False
        )
        if rule.endpoint in SIGNED_INSTEAD:
            assert response.status_code in (403, 404), f"{path} answered {response.status_code} unsigned"
        else:
            _assert_refused(response, path)
        assert changed_tables(before, snapshot()) == [], f"{path} changed rows without a CSRF token"


def test_a_token_from_another_browser_is_refused_too(app, world, auth):
    # ASVS 3.5.1: the token is bound to the session it was issued to
    owner, values = world
    attacker, victim = app.test_client(), app.test_client()
    foreign_token = attacker.csrf_token()
    auth.fast_sign_in(victim, owner)
    auth.fresh_code(victim)
    before = snapshot()
    for path in (
        "/settings/security/sign-out-everywhere",
        "/account/sessions/end",
        f"/settings/security/methods/{values['method_id']}/remove",
    ):
        response = victim.post(path, data={"csrf_token": foreign_token, "scope": "others"})
        _assert_refused(response, path)
    assert changed_tables(before, snapshot()) == []
