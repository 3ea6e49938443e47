"""Report tables as CSV: UTF-8 with a byte order mark, so that spreadsheet
tools open Japanese correctly; durations in hours, shares in percent."""

from __future__ import annotations

import csv
import io

from flask_babel import gettext as _

from .services import REASON_LABELS, Table

BOM = "\ufeff"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _header(label, kind: str) -> str:
    if kind == "seconds":
        return _("%(label)s (hours)", label=str(label))
    if kind == "share":
        return _("%(label)s (%%)", label=str(label))
    return str(label)


def _cell(value, kind: str):
    if value is None:
        return ""
    if kind == "seconds":
        return f"{value / 3600:.2f}"
    if kind == "share":
        return f"{value * 100:.1f}"
    if kind == "reason":
        value = REASON_LABELS.get(value, value)
    text = str(value)
    # A cell a spreadsheet would run as a formula is written as text (CSV injection).
    if kind in ("text", "reason") and text.startswith(FORMULA_START):
        return "'" + text
    return text


def table_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    kinds = [kind for _, kind in table.columns]
    writer.writerow([_header(label, kind) for label, kind in table.columns])
    for row in table.rows:
        writer.writerow([_cell(value, kind) for value, kind in zip(row, kinds, strict=True)])
    return BOM + out.getvalue()
