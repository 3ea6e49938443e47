"""Every time a person reads has its zone, in their zone and their language's
format, on pages and in e-mails; links in e-mails use the configured base URL."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from recovery_app.i18n import zoned
from tests.helpers import outbox_messages

MOMENT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "locale", "format", "expected"),
    [
        ("Asia/Tokyo", "ja", "long", "2026年3月2日 18:00（日本標準時）"),
        ("Asia/Tokyo", "ja", "short", "2026/03/02 18:00 JST (UTC+9)"),
        ("Asia/Tokyo", "en", "long", "2 March 2026, 18:00 JST (UTC+9)"),
        ("UTC", "en", "long", "2 March 2026, 09:00 UTC"),
        ("UTC", "en", "short", "2 Mar 2026, 09:00 UTC"),
        ("America/New_York", "en", "short", "2 Mar 2026, 04:00 EST (UTC-5)"),
        ("Asia/Kolkata", "en", "long", "2 March 2026, 14:30 IST (UTC+5:30)"),
        ("Asia/Dubai", "en", "long", "2 March 2026, 13:00 UTC+4"),
        ("No/Such_Zone", "en", "long", "2 March 2026, 09:00 UTC"),
    ],
)
def test_a_time_reads_in_the_readers_zone_with_the_zone_named(app, zone, locale, format, expected):
    assert zoned(MOMENT, zone, locale, format) == expected


def test_no_time_is_written_without_its_zone_or_in_us_order(app):
    english = zoned(MOMENT, "UTC", "en")
    assert "Coordinated Universal Time" not in english and "AM" not in english and "Mar 2," not in english


def test_security_notice_e_mail_names_the_zone_in_the_readers_format(app, make, db):
    from recovery_app.auth import services

    user = make.user(locale="en")  # English users start in UTC
    services.notify(user, "security_change", MOMENT, change="method_added", address="?", browser="?")
    body = outbox_messages("email", user.email)[-1].body
    assert "When: 2 March 2026, 09:00 UTC" in body


def test_signed_in_pages_show_times_with_their_zone(client, make, auth, db):
    user = make.user(locale="en")
    auth.sign_in(client, user)
    client.post("/language/en", data={"next": "/"})
    page = client.get("/settings/security").get_data(as_text=True)
    assert re.search(r"\d{1,2} [A-Z][a-z]+ 20\d\d, \d\d:\d\d UTC", page)
