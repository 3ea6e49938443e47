"""Routes of the reports blueprint: parse the form, call the service, render or redirect."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_babel import get_timezone

from ..auth.sessions import roles_required
from ..models.base import utcnow
from . import charts, display, services
from .export import table_csv

bp = Blueprint("reports", __name__, url_prefix="/reports")
display.init_app(bp)


def _range_from_request():
    today = utcnow().astimezone(get_timezone()).date()
    return services.parse_range(
        request.args.get("start"),
        request.args.get("end"),
        today=today,
        tz=str(get_timezone()),
        max_days=current_app.config["RECOVERY_REPORT_MAX_DAYS"],
    )


@bp.get("/")
@roles_required("manager")
def dashboard():
    try:
        rng = _range_from_request()
    except services.ReportError as exc:
        return render_template(
            "reports/dashboard.html",
            report=None,
            error=str(exc),
            start=request.args.get("start", ""),
            end=request.args.get("end", ""),
            zone=str(get_timezone()),
        ), 400
    report = services.build_report(rng, utcnow())
    return render_template(
        "reports/dashboard.html",
        report=report,
        error=None,
        charts=charts.for_report(report),
        bucket_note=services.BUCKET_NOTE,
        start=rng.start.isoformat(),
        end=rng.end.isoformat(),
        zone=rng.tz,
    )


@bp.get("/<name>.csv")
@roles_required("manager")
def download(name: str):
    try:
        rng = _range_from_request()
    except services.ReportError as exc:
        return Response(str(exc) + "\n", status=400, mimetype="text/plain")
    report = services.build_report(rng, utcnow())
    if name not in report.tables:
        abort(404)
    filename = f"recovery-desk-{name}-{rng.start.isoformat()}-{rng.end.isoformat()}.csv"
    return Response(
        table_csv(report.tables[name]),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
