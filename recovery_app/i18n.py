"""Language and time-zone choice, and the display helpers templates use."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app, has_request_context, request, session
from flask_babel import format_datetime, get_locale
from flask_login import current_user


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


def select_timezone() -> str:
    if not has_request_context():
        return "UTC"
    if getattr(current_user, "is_authenticated", False) and current_user.time_zone:
        return current_user.time_zone
    locale = str(get_locale() or current_app.config["BABEL_DEFAULT_LOCALE"])
    return current_app.config["RECOVERY_DEFAULT_TIMEZONES"].get(locale, "UTC")


def localtime(value: datetime | None, format: str = "medium") -> str:
    """A UTC datetime shown in the viewer's time zone, with the zone named."""
    if value is None:
        return ""
    return format_datetime(value, format)


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
