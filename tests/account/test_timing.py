"""No user enumeration by timing (ASVS 6.3.8): forgot-password and invitations
take as long for an address with a login as for one without.

Samples alternate between the two kinds of address so that drift (caches
warming, the database growing) falls on both alike; medians are compared with
a wide margin, because what this guards against is a different amount of work
(a link row, a message, a hash done for one kind only), not scheduler noise.
"""

from __future__ import annotations

import statistics
import time

SAMPLES = 60
WARM_UP = 5
MARGIN = 1.5  # each median within 1.5x of the other


def _median_pair(send_known, send_unknown) -> tuple[float, float]:
    for _ in range(WARM_UP):
        send_known()
        send_unknown()
    known, unknown = [], []
    for n in range(SAMPLES):
        order = ((send_known, known), (send_unknown, unknown))
        for send, bucket in order if n % 2 else reversed(order):
            started = time.perf_counter()
            response = send()
            bucket.append(time.perf_counter() - started)
            assert response.status_code in (200, 302)
    return statistics.median(known), statistics.median(unknown)


def test_forgot_password_takes_as_long_for_unknown_addresses(app, client, make):
    # ASVS 6.3.8
    app.config["RECOVERY_RESET_LIMIT_PER_ADDRESS"] = "100000 per hour"
    app.config["RECOVERY_RESET_LIMIT_PER_CLIENT"] = "100000 per hour"
    user = make.user()
    known, unknown = _median_pair(
        lambda: client.post("/account/password/forgot", data={"email": user.email}),
        lambda: client.post("/account/password/forgot", data={"email": "nobody.here@example.test"}),
    )
    assert known / MARGIN < unknown < known * MARGIN, f"known {known * 1000:.2f} ms, unknown {unknown * 1000:.2f} ms"


def test_inviting_takes_as_long_for_addresses_with_a_login(app, client, auth, make):
    # ASVS 6.3.8: an owner cannot probe which addresses have logins elsewhere
    app.config["RECOVERY_INVITE_LIMIT_PER_ADDRESS"] = "100000 per day"
    app.config["RECOVERY_INVITE_LIMIT_PER_ACCOUNT"] = "100000 per day"
    owner = make.user("seller_owner")
    elsewhere = make.user("seller_user")
    auth.fast_sign_in(client, owner)
    known, unknown = _median_pair(
        lambda: client.post("/account/users/invite", data={"email": elsewhere.email, "locale": "ja"}),
        lambda: client.post("/account/users/invite", data={"email": "nobody.here@example.test", "locale": "ja"}),
    )
    assert known / MARGIN < unknown < known * MARGIN, f"known {known * 1000:.2f} ms, unknown {unknown * 1000:.2f} ms"


def test_a_used_invitation_link_is_refused_as_fast_as_a_forged_one(app, client, auth, make):
    # ASVS 6.3.8: the refusal page does not tell a real, spent link from a made-up one
    from tests.account.conftest import link_in_last_email

    owner = make.user("seller_owner")
    auth.fast_sign_in(client, owner)
    client.post("/account/users/invite", data={"email": "new.person@example.test", "locale": "ja"})
    path = link_in_last_email("new.person@example.test", "/account/invitation/")
    visitor = app.test_client()
    password = "quiet lantern orchard 9107"
    visitor.post(path, data={"password": password, "confirm": password})
    forged = "/account/invitation/" + "Q" * 43
    used, made_up = _median_pair(lambda: _refused(visitor.get(path)), lambda: _refused(visitor.get(forged)))
    assert used / MARGIN < made_up < used * MARGIN, f"used {used * 1000:.2f} ms, forged {made_up * 1000:.2f} ms"


class _Ok:
    status_code = 200


def _refused(response):
    assert response.status_code == 404
    return _Ok
