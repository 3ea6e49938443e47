"""Clickjacking headers on every page, open redirects on every ``next=``, and
staff pages that sellers cannot even find. The URL map is walked, so pages
added later are covered too."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from tests.security.conftest import ROLES, changed_tables, snapshot

APP_DIR = Path(__file__).resolve().parents[2] / "recovery_app"
STAFF_PREFIXES = ("/review", "/reports", "/staff")


def get_pages(app):
    pages = [
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and not rule.arguments and rule.endpoint != "static"
    ]
    assert "/sign-in" in pages and "/settings/security" in pages
    return pages


def assert_not_framable(response, path):
    # ASVS 3.4.6 / 14.x: no page can be framed by another site (clickjacking)
    assert response.headers.get("X-Frame-Options") == "DENY", path
    assert "frame-ancestors 'none'" in response.headers.get("Content-Security-Policy", ""), path


@pytest.mark.parametrize("who", ("visitor", "password_step", *ROLES))
def test_every_page_refuses_to_be_framed(app, make, auth, who):
    client = app.test_client()
    if who == "password_step":
        auth.fast_password_step(client, make.user())
    elif who != "visitor":
        auth.fast_sign_in(client, make.user(who, locale="en"))
        auth.fresh_code(client)
    for path in [*get_pages(app), "/no-such-page", "/static/css/app.css"]:
        response = client.get(path)
        response.close()  # static files are streamed
        # /healthz answers 503 by design while no scheduler runs (as in tests); every other page must work.
        assert response.status_code < 500 or path == "/healthz", path
        assert_not_framable(response, path)


OFFSITE = (
    "https://evil.example/",
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example/",
    "\\\\evil.example",
    "https:evil.example",
    "javascript:alert(1)",
    " //evil.example/",
    "/\t/evil.example/",
    "http://localhost@evil.example/",
)


def assert_stays_here(response, target):
    if "\t" in target and response.status_code == 400:  # control characters in a URL are refused outright
        return
    assert response.status_code in (302, 303), target
    location = response.headers["Location"]
    parts = urlsplit(location)
    assert parts.netloc in ("", "localhost"), f"{target!r} sent the browser to {location!r}"
    assert parts.scheme in ("", "http", "https"), location
    assert not location.startswith(("//", "/\\", "\\")) and not parts.netloc.endswith("evil.example"), location


@pytest.mark.parametrize("target", OFFSITE)
def test_next_on_the_sign_in_form_never_leaves_the_site(client, make, auth, target):
    # ASVS 3.7.2 (open redirect): the next= carried through password and code
    user = make.user()
    auth.password(client, user, next=target)
    assert_stays_here(client.post("/sign-in/code", data={"code": auth.totp(user)}), target)


@pytest.mark.parametrize("target", OFFSITE)
def test_next_on_the_sign_in_page_of_a_signed_in_user_never_leaves_the_site(client, make, auth, target):
    auth.fast_sign_in(client, make.user())
    assert_stays_here(client.get("/sign-in?next=" + quote(target, safe="")), target)


@pytest.mark.parametrize("target", OFFSITE)
def test_next_on_the_confirm_page_never_leaves_the_site(client, make, auth, target):
    user = make.user()
    auth.fast_sign_in(client, user)
    response = client.post("/settings/confirm?next=" + quote(target, safe=""), data={"code": auth.totp(user)})
    assert_stays_here(response, target)


@pytest.mark.parametrize("target", OFFSITE)
def test_next_on_the_language_switch_never_leaves_the_site(client, target):
    assert_stays_here(client.get("/language/en?next=" + quote(target, safe="")), target)


@pytest.mark.parametrize("target", OFFSITE)
def test_a_foreign_referer_never_becomes_the_next_page(client, make, auth, target):
    # fresh_code_required sends POSTs back to the Referer after the code: it goes through safe_next too
    user = make.user()
    auth.fast_sign_in(client, user)
    response = client.post("/settings/security/recovery-codes", headers={"Referer": target})
    assert response.status_code == 302 and "/settings/confirm" in response.headers["Location"]
    after = client.post(response.headers["Location"], data={"code": auth.totp(user)})
    assert_stays_here(after, target)


def test_every_view_that_reads_next_passes_it_through_safe_next():
    # Guards views added later: any module reading a next= must also call safe_next
    readers = []
    for source in APP_DIR.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        if re.search(
            r"""(args|form|values)\.get\(\s*["']next["']|form\.next\.data|NEXT_KEY\)|request\.referrer""", text
        ):
            readers.append(source.relative_to(APP_DIR).as_posix())
            assert "safe_next(" in text, f"{source} reads a next= without safe_next"
    assert {"auth/views.py", "pages/views.py"} <= set(readers)


def assert_not_found(client, rules, who: str, *, number: int, text: str, data: dict) -> None:
    """Every GET and POST of ``rules``, with ``number`` and ``text`` in the
    path's places, answers 404 to ``client`` and changes no row."""
    before = snapshot()
    for rule in rules:
        path = re.sub(r"<int:\w+>", str(number), rule.rule)
        path = re.sub(r"<[^>]+>", text, path)
        for method in sorted(rule.methods & {"GET", "POST"}):
            response = client.get(path) if method == "GET" else client.post(path, data=data)
            assert response.status_code == 404, f"{method} {path} answered {response.status_code} to a {who}"
    assert changed_tables(before, snapshot()) == []


def staff_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.rule.startswith(STAFF_PREFIXES)]


@pytest.mark.parametrize("role", ("seller_owner", "seller_user"))
def test_staff_pages_are_not_found_by_sellers(app, make, auth, role):
    # ASVS 8.2.1 / 8.3.1: a seller cannot open, or even find, a staff page
    rules = staff_rules(app)
    assert any(rule.rule.startswith("/staff") for rule in rules)
    other = make.user("seller_owner")
    client = app.test_client()
    auth.fast_sign_in(client, make.user(role, locale="en"))
    auth.fresh_code(client)
    assert_not_found(client, rules, role, number=other.id, text="dummy", data={"q": "x"})


def test_owner_pages_are_not_found_by_other_seller_users(app, make, auth):
    account = make.account()
    owner = make.user("seller_owner", account=account)
    colleague = make.user("seller_user", account=account)
    client = app.test_client()
    auth.fast_sign_in(client, colleague)
    auth.fresh_code(client)
    before = snapshot()
    assert client.get("/account/users").status_code == 404
    assert client.post("/account/users/invite", data={"email": "x@example.test", "locale": "en"}).status_code == 404
    assert client.post(f"/account/users/{owner.id}/remove").status_code == 404
    assert changed_tables(before, snapshot()) == []


@pytest.mark.parametrize("role", ROLES)
def test_sign_out_is_on_every_page_of_a_signed_in_user(app, make, auth, role):
    # ASVS 7.4.4
    client = app.test_client()
    auth.fast_sign_in(client, make.user(role, locale="en"))
    auth.fresh_code(client)
    seen = 0
    for path in get_pages(app):
        response = client.get(path)
        if response.status_code == 200 and response.mimetype == "text/html":
            seen += 1
            assert 'action="/sign-out"' in response.get_data(as_text=True), path
    assert seen >= 3


def test_a_405_keeps_its_allow_header(client):
    response = client.delete("/sign-in")
    assert response.status_code == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_healthz_tells_an_outside_address_only_up_or_down(client, app, make, auth):
    outside = client.get("/healthz", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert set(outside.get_json()) == {"status"}
    inside = client.get("/healthz")
    assert {"database", "uploads", "scheduler"} <= set(inside.get_json())
    manager = app.test_client()
    auth.fast_sign_in(manager, make.user("manager"))
    from_home = manager.get("/healthz", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert "scheduler" in from_home.get_json()


def test_a_nul_in_a_url_is_a_clear_400(client, make, auth):
    auth.fast_sign_in(client, make.user("reviewer"))
    for path in ("/review/case/RC-AAAA%00AAAA", "/review/?after=%00", "/sign-in?next=%00"):
        response = client.get(path)
        assert response.status_code == 400, path


def test_language_link_changes_nothing_stored_only_the_switch_does(client, make, auth, db):
    user = make.user(locale="ja")
    auth.fast_sign_in(client, user)
    client.get("/language/en")
    db.session.refresh(user)
    assert user.locale == "ja"
    client.post("/language/en")
    db.session.refresh(user)
    assert user.locale == "en"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("number", (2**31, 2**63, 10**30))
def test_an_id_too_large_for_the_database_is_not_found(app, make, auth, role, number):
    # Every route with a number in its path, as each role: a number no row can
    # have is a 404 like any other unknown id, never a database error.
    rules = [rule for rule in app.url_map.iter_rules() if "<int:" in rule.rule]
    assert len(rules) >= 10
    client = app.test_client()
    auth.fast_sign_in(client, make.user(role, locale="en"))
    auth.fresh_code(client)
    assert_not_found(client, rules, role, number=number, text="RC-AAAA-AAAA", data={"role": "reviewer"})


def test_the_largest_row_id_still_reaches_its_view(app, make, auth):
    client = app.test_client()
    auth.fast_sign_in(client, make.user("manager", locale="en"))
    auth.fresh_code(client)
    largest = client.post(f"/staff/{2**31 - 1}/role", data={"role": "reviewer"}, headers={"Accept-Language": "en"})
    assert largest.status_code == 302  # the view's own answer: nobody on the staff has that id
    assert client.post(f"/staff/{2**31}/role", data={"role": "reviewer"}).status_code == 404
