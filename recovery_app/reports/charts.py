"""Charts drawn on the server as SVG: no script, no style attributes (the CSP
forbids them), only presentation attributes and classes from reports.css.
Every chart carries a title and a description, and the page shows the same
figures as a table beside it."""

from __future__ import annotations

import math

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 22, 44


def _frame(title: str, description: str, body: list[str], chart_id: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-title">{escape(title)}</title><desc id="{chart_id}-desc">{escape(description)}</desc>'
        + "".join(body)
        + "</svg>"
    )


NICE = sorted({m * 10**k for k in range(8) for m in (1, 2, 4, 6, 8)})


def _nice_max(value: float) -> float:
    """The smallest round number at or above ``value`` (axis top)."""
    return next((n for n in NICE if n >= value), value) if value > 0 else 1


def _axis(top_value: float, fmt) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = []
    for i in range(5):
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d9dee5"/>'
        )
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#5b6675">'
            f"{escape(fmt(top_value * i / 4))}</text>"
        )
    return parts


def _x_labels(labels: list[str], slot: float) -> list[str]:
    every = max(1, -(-len(labels) // 12))  # at most about a dozen labels
    parts = []
    for i, label in enumerate(labels):
        if i % every:
            continue
        x = LEFT + slot * (i + 0.5)
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11" '
            f'fill="#5b6675">{escape(label)}</text>'
        )
    return parts


def bars(
    chart_id: str,
    title: str,
    description: str,
    labels: list[str],
    values: list[float | None],
    *,
    fmt=lambda v: f"{v:g}",
    top: float | None = None,
    target: float | None = None,
    target_label: str = "",
    css: str = "bar",
) -> Markup:
    """A bar per label; ``None`` draws no bar (no data that day)."""
    top = top or _nice_max(max([v for v in values if v is not None] or [0]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(labels))
    body = _axis(top, fmt)
    for i, value in enumerate(values):
        if value is None:
            continue
        h = plot_h * min(value, top) / top
        x = LEFT + slot * i + slot * 0.15
        body.append(
            f'<rect class="{css}" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{h:.1f}" fill="#0b5cad"><title>{escape(labels[i])}: {escape(fmt(value))}</title></rect>'
        )
    if target is not None:
        y = TOP + plot_h - plot_h * target / top
        body.append(
            f'<line class="target" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#b3261e" stroke-dasharray="6 4" stroke-width="2"/>'
        )
        # The label sits in the top margin, clear of the bars, with a sample of the line.
        body.append(
            f'<line x1="{WIDTH - RIGHT - 150}" x2="{WIDTH - RIGHT - 126}" y1="8" y2="8" stroke="#b3261e" '
            f'stroke-dasharray="6 4" stroke-width="2"/>'
        )
        body.append(
            f'<text class="target-label" x="{WIDTH - RIGHT - 120}" y="12" font-size="11" '
            f'fill="#b3261e">{escape(target_label)}</text>'
        )
    body.append(
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" '
        'stroke="#5b6675"/>'
    )
    body += _x_labels(labels, slot)
    return _frame(title, description, body, chart_id)


PALETTE = ("#1e7a3c", "#b3261e", "#a35a00", "#5b6675", "#0b5cad")


def stacked(
    chart_id: str, title: str, description: str, labels: list[str], series: list[tuple[str, list[int]]]
) -> Markup:
    """Stacked bars with a legend; series in drawing order, bottom first."""
    totals = [sum(values[i] for _, values in series) for i in range(len(labels))]
    # Cases are whole: the axis top is a multiple of four, so its quarter ticks are whole numbers too.
    top = max(4, math.ceil(_nice_max(max(totals or [0])) / 4) * 4)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM - 18
    slot = plot_w / max(1, len(labels))
    body = []
    for i in range(5):
        y = TOP + 18 + plot_h - plot_h * i / 4
        body.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d9dee5"/>')
        body.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#5b6675">{top * i / 4:g}</text>'
        )
    for i, label in enumerate(labels):
        base = TOP + 18 + plot_h
        for (name, values), colour in zip(series, PALETTE, strict=False):  # the palette outlasts the series
            value = values[i]
            if not value:
                continue
            h = plot_h * value / top
            base -= h
            body.append(
                f'<rect x="{LEFT + slot * i + slot * 0.15:.1f}" y="{base:.1f}" width="{slot * 0.7:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(label)} · {escape(name)}: {value}</title></rect>'
            )
    x = LEFT
    for (name, _), colour in zip(series, PALETTE, strict=False):
        body.append(f'<rect x="{x}" y="{TOP - 6}" width="10" height="10" fill="{colour}"/>')
        body.append(f'<text x="{x + 14}" y="{TOP + 3}" font-size="11" fill="#1c2430">{escape(name)}</text>')
        x += 24 + 7 * len(str(name)) * (2 if any(ord(c) > 0x2E80 for c in str(name)) else 1)
    body.append(
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + 18 + plot_h}" '
        f'y2="{TOP + 18 + plot_h}" stroke="#5b6675"/>'
    )
    body += _x_labels(labels, slot)
    return _frame(title, description, body, chart_id)


def for_report(report) -> dict[str, Markup]:
    """The dashboard's charts, in the viewer's language."""
    from flask_babel import format_percent
    from flask_babel import gettext as _

    from .display import short_day

    daily = report.tables["daily"]
    days = [short_day(row[0]) for row in daily.rows]
    shares = [row[4] for row in daily.rows]
    target = report.staffing["target"]
    backlog = report.tables["backlog"]
    return {
        "attainment": bars(
            "chart-attainment",
            _("SLA attainment per day"),
            _(
                "Share of the cases decided each day that were decided within the SLA; the dashed line is the "
                "%(target)s target. "
                "Days without decisions have no bar. The table below holds the same figures.",
                target=format_percent(target),
            ),
            days,
            shares,
            fmt=lambda v: format_percent(v),
            top=1.0,
            target=target,
            target_label=_("target %(target)s", target=format_percent(target)),
        ),
        "volume": stacked(
            "chart-volume",
            _("Outcomes per day"),
            _(
                "Cases approved, rejected, asked for new documents and expired each day, stacked. "
                "The table below holds the same figures."
            ),
            days,
            [
                (_("Approved"), [row[5] for row in daily.rows]),
                (_("Rejected"), [row[6] for row in daily.rows]),
                (_("Asked for new documents"), [row[7] for row in daily.rows]),
                (_("Expired"), [row[8] for row in daily.rows]),
            ],
        ),
        "backlog": bars(
            "chart-backlog",
            _("Open cases by hours on the clock"),
            _(
                "How many cases waiting on us have used how many hours of their SLA clock. The table beside "
                "holds the same figures."
            ),
            [_("%(span)s h", span=row[0]) for row in backlog.rows],
            [row[1] for row in backlog.rows],
            css="bar bar-backlog",
        ),
    }
