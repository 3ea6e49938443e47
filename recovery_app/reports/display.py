"""How report values read on the page (CSV has its own plain forms)."""

from __future__ import annotations

from datetime import date

from flask_babel import format_date, format_decimal, format_percent
from flask_babel import gettext as _

from .services import REASON_LABELS


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes = int(round(max(seconds, 0) / 60))
    if minutes < 60:
        return _("%(m)s min", m=minutes)
    return _("%(h)s h %(m)s min", h=minutes // 60, m=minutes % 60)


def short_day(value: str | date) -> str:
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return format_date(day, "M/d")


def report_cell(value, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "seconds":
        return duration(value)
    if kind == "share":
        return format_percent(value, "#,##0.0%")
    if kind == "int":
        return format_decimal(value)
    if kind == "day":
        return short_day(value)
    if kind == "reason":
        return str(REASON_LABELS.get(value, value))
    return str(value)


def init_app(bp) -> None:
    bp.add_app_template_filter(report_cell, "report_cell")
    bp.add_app_template_filter(duration, "report_duration")
    bp.add_app_template_filter(short_day, "report_day")
