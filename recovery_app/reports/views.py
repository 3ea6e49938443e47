"""Routes of the reports blueprint: parse the form, call the service, render or redirect."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_timezone, gettext as _
from flask_login import current_user

from ..auth.sessions import roles_required
from ..extensions import db
from ..models.base import utcnow
from ..web import client_address, client_browser
from . import charts, display, services
from .export import table_csv
from .forms import ROLE_LABELS, RoleForm

bp = Blueprint("reports", __name__, url_prefix="/reports")
display.init_app(bp)


def _range_from_request():
    today = utcnow().astimezone(get_timezone()).date()
    return services.parse_range(request.args.get("start"), request.args.get("end"), today=today,
                                tz=str(get_timezone()), max_days=current_app.config["RECOVERY_REPORT_MAX_DAYS"])


@bp.get("/")
@roles_required("manager")
def dashboard():
    try:
        rng = _range_from_request()
    except services.ReportError as exc:
        return render_template("reports/dashboard.html", report=None, error=str(exc),
                               start=request.args.get("start", ""), end=request.args.get("end", "")), 400
    report = services.build_report(rng, utcnow())
    return render_template("reports/dashboard.html", report=report, error=None, charts=charts.for_report(report),
                           status_labels=services.STATUS_LABELS, bucket_note=services.BUCKET_NOTE,
                           start=rng.start.isoformat(), end=rng.end.isoformat())


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
    return Response(table_csv(report.tables[name]), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


@bp.get("/staff")
@roles_required("manager")
def staff():
    return render_template("reports/staff.html", staff=services.staff_list(), form=RoleForm())


@bp.post("/staff/<int:user_id>/role")
@roles_required("manager")
def change_role(user_id: int):
    form = RoleForm()
    if not form.validate_on_submit():
        flash(_("Choose reviewer or manager."), "error")
        return redirect(url_for("reports.staff"))
    try:
        person = services.change_role(current_user, user_id, form.role.data, now=utcnow(),
                                      address=client_address(), browser=client_browser())
    except services.StaffError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("reports.staff"))
    flash(_("%(name)s is now a %(role)s. Their open sessions were ended.",
            name=person.display_name or person.email, role=ROLE_LABELS[person.role]),
          "success")
    return redirect(url_for("reports.staff"))
