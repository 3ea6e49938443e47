"""A manager opens the SLA dashboard on a month of demo cases and downloads a
table as CSV, in a real browser. The dashboard screenshot shown in the README
is taken here, so it always shows the current page."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pyotp
import pytest

from tests.helpers import TEST_PASSWORD

from .conftest import screenshot

DOCS = Path(__file__).resolve().parent.parent.parent / "docs"


@pytest.fixture
def manager_with_demo_month(live_app):
    """A manager enrolled with an authenticator, and 40 demo cases over the last 30 days
    (the month the staff pages' axe test uses: the same photos)."""
    from recovery_app.auth import twofactor
    from recovery_app.auth.users import create_user
    from recovery_app.demo import seed_cases
    from recovery_app.documents import storage
    from recovery_app.extensions import db
    from recovery_app.models.base import utcnow

    with live_app.app_context():
        now = utcnow()
        manager = create_user(
            email="manager@example.test",
            password=TEST_PASSWORD,
            role="manager",
            display_name="Manager",
            locale="en",
            time_zone="Asia/Tokyo",
            now=now,
        )
        method, seed = twofactor.new_totp_method(manager, now, primary=True, label="Authenticator")
        method.confirmed_at = now
        manager.must_enroll_2sv = False
        _, staged = seed_cases(40, now=now, seed=11)
        db.session.commit()
        storage.commit_staged(staged)
        return manager.email, seed


def sign_in(page, base, email, seed):
    page.goto(f"{base}/sign-in")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("form.stack button[type=submit]")
    page.wait_for_url(re.compile(r"/sign-in/code"))
    page.fill("input[name=code]", pyotp.TOTP(seed).now())
    page.click("form.stack button[type=submit]")
    page.wait_for_url(re.compile(r"/review/"))


def test_manager_reads_the_dashboard_and_downloads_csv(
    live_server, new_context, manager_with_demo_month, database_url, tmp_path
):
    email, seed = manager_with_demo_month
    errors = []
    page = new_context("en-US", viewport={"width": 1280, "height": 900}, accept_downloads=True).new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, live_server, email, seed)
    page.goto(f"{live_server}/reports/")
    assert "SLA dashboard" in page.inner_text("h1")
    assert page.locator("svg").count() >= 3  # charts drawn on the server
    assert page.locator("table").count() >= 3  # with their figures as tables
    with page.expect_download() as download_info:
        page.locator("a[download]").first.click()
    csv_path = tmp_path / "now.csv"
    download_info.value.save_as(csv_path)
    data = csv_path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: spreadsheets open Japanese right
    assert data.decode("utf-8-sig").count("\n") >= 2
    shot = screenshot(page, "reports-dashboard-en")
    if database_url.startswith("sqlite") and os.environ.get("RECOVERY_REFRESH_DOCS") == "1":
        # The README's picture, taken again only when asked: a test run leaves the checkout as it was.
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS / "dashboard.png")

    page.goto(f"{live_server}/language/ja?next=/reports/")
    page.wait_for_url(re.compile(r"/reports/"))
    assert "SLAダッシュボード" in page.inner_text("h1")
    assert "SLA達成率" in page.inner_text("main")
    screenshot(page, "reports-dashboard-ja")
    assert errors == []
