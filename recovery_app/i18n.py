"""Language and time-zone choice, and the display helpers templates use."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_datetime
from flask import current_app, has_request_context, request, session
from flask_babel import get_locale, get_timezone
from flask_login import current_user

# How a time reads in each language. English uses day-month-year and a 24-hour
# clock (CLDR's en_GB patterns): a marketplace's English readers are not all
# in the US, and "3/4" means different days to different people.
_PATTERNS = {
    "ja": {"long": "y年M月d日 H:mm", "short": "y/MM/dd H:mm"},
    "en": {"long": "d MMMM y, HH:mm", "short": "d MMM y, HH:mm"},
}
_FORMAT_LOCALES = {"en": "en_GB"}


def select_locale() -> str:
    languages = current_app.config["RECOVERY_LANGUAGES"]
    if not has_request_context():  # CLI and jobs: force_locale() decides, else the default
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    chosen = session.get("lang")
    if chosen in languages:
        return chosen
    if getattr(current_user, "is_authenticated", False) and current_user.locale in languages:
        return current_user.locale
    # An unknown or malformed Accept-Language simply matches nothing.
    return request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]


def chosen_language() -> str | None:
    """The language this visitor chose: switched to, or asked for by their
    browser. None when they expressed no choice (the default is not one)."""
    languages = current_app.config["RECOVERY_LANGUAGES"]
    if session.get("lang") in languages:
        return session["lang"]
    return request.accept_languages.best_match(languages)


def select_timezone() -> str:
    if not has_request_context():
        return "UTC"
    if getattr(current_user, "is_authenticated", False) and current_user.time_zone:
        return current_user.time_zone
    locale = str(get_locale() or current_app.config["BABEL_DEFAULT_LOCALE"])
    return current_app.config["RECOVERY_DEFAULT_TIMEZONES"].get(locale, "UTC")


def zone_named(time_zone: str | None) -> ZoneInfo:
    """The zone called ``time_zone``; UTC for a missing or unknown name."""
    try:
        return ZoneInfo(time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def zone_label(local: datetime) -> str:
    """A zone as anyone can read it: its abbreviation and offset ("JST (UTC+9)"), or "UTC"."""
    minutes = int(local.utcoffset().total_seconds() // 60)
    abbreviation = local.tzname() or ""
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    offset = f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")
    if abbreviation == "UTC" or (not minutes and not abbreviation.isalpha()):
        return "UTC"
    return f"{abbreviation} ({offset})" if abbreviation.isalpha() else offset


def zoned(moment: datetime | None, time_zone: str | None, locale: str, format: str = "long") -> str:
    """``moment`` (UTC) as a reader in ``time_zone`` reads it, in ``locale``'s
    words, always with the zone named: pages and e-mails both use this."""
    if moment is None:
        return ""
    language = locale if locale in _PATTERNS else "en"
    local = moment.astimezone(zone_named(time_zone))
    pattern = _PATTERNS[language]["short" if format == "short" else "long"]
    text = format_datetime(local, pattern, tzinfo=local.tzinfo, locale=_FORMAT_LOCALES.get(language, language))
    if language == "ja" and format != "short":
        return text + "（" + format_datetime(local, "zzzz", tzinfo=local.tzinfo, locale="ja") + "）"
    return f"{text} {zone_label(local)}"


def localtime(value: datetime | None, format: str = "medium") -> str:
    """A UTC datetime shown in the viewer's time zone, with the zone named."""
    return zoned(value, str(get_timezone()), str(get_locale() or "ja"), "short" if format == "short" else "long")


def hours_minutes(delta: timedelta) -> str:
    """``h:mm`` for a duration, the sign dropped (callers say "left" or "overdue")."""
    total = abs(int(delta.total_seconds())) // 60
    return f"{total // 60}:{total % 60:02d}"


def init_app(app) -> None:
    app.jinja_env.filters["localtime"] = localtime
    app.jinja_env.filters["hours_minutes"] = hours_minutes

    from .case_labels import template_helpers

    app.context_processor(template_helpers)

    @app.context_processor
    def template_globals():
        return {"current_locale": str(get_locale() or "ja"), "view_functions": app.view_functions}
