"""Routes of the staff pages (managers only; anyone else gets a 404): parse the
form, call the service, render or redirect."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..auth.sessions import roles_required
from ..forms import put_on_form
from ..models.base import utcnow
from ..web import limit_per_form_email, origin
from . import services
from .forms import ROLE_LABELS, ConfirmForm, InviteStaffForm, RoleForm, SearchForm

bp = Blueprint("staff", __name__, url_prefix="/staff")


@bp.context_processor
def helpers() -> dict:
    return {"role_labels": ROLE_LABELS}


# --- the staff list, roles and invitations --------------------------------------------


def _staff_page(invite_form: InviteStaffForm, status: int = 200):
    return render_template(
        "staff/index.html",
        page=services.staff_page(utcnow()),
        form=RoleForm(),
        invite_form=invite_form,
        confirm_form=ConfirmForm(),
    ), status


@bp.get("/")
@roles_required("manager")
def index():
    return _staff_page(InviteStaffForm(locale=current_user.locale))


@bp.post("/<int:user_id>/role")
@roles_required("manager")
def change_role(user_id: int):
    form = RoleForm()
    if not form.validate_on_submit():
        flash(_("Choose reviewer or manager."), "error")
        return redirect(url_for(".index"))
    try:
        person = services.change_role(current_user, user_id, form.role.data, now=utcnow(), **origin())
    except services.StaffError as error:
        flash(str(error), "error")
        return redirect(url_for(".index"))
    flash(
        _(
            "%(name)s is now a %(role)s. Their open sessions were ended.",
            name=person.display_name or person.email,
            role=ROLE_LABELS[person.role],
        ),
        "success",
    )
    return redirect(url_for(".index"))


@bp.post("/invite")
@roles_required("manager")
@limit_per_form_email("RECOVERY_INVITE_LIMIT_PER_ADDRESS")
def invite():
    form = InviteStaffForm()
    if form.validate_on_submit():
        try:
            email = services.invite(
                current_user, form.email.data, form.role.data, form.locale.data, utcnow(), **origin()
            )
        except services.StaffError as error:
            put_on_form(form, error)
        else:
            flash(
                _(
                    "An invitation was sent to %(email)s. The link works once, for %(hours)d hours.",
                    email=email,
                    hours=current_app.config["RECOVERY_INVITATION_HOURS"],
                ),
                "success",
            )
            return redirect(url_for(".index"))
    return _staff_page(form, 400)


@bp.post("/invitations/<int:invitation_id>/cancel")
@roles_required("manager")
def cancel_invitation(invitation_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        email = services.cancel_invitation(current_user, invitation_id, utcnow(), **origin())
    except services.NotFound:
        abort(404)
    flash(_("The invitation to %(email)s was cancelled; its link no longer works.", email=email), "success")
    return redirect(url_for(".index"))


# --- the user search --------------------------------------------------------------------


@bp.get("/users")
@roles_required("manager")
def users():
    form = SearchForm(request.args)
    query = form.q.data if form.validate() else ""
    rows = services.find_users(query or "", utcnow())
    return render_template(
        "staff/users.html", form=form, rows=rows, end_form=ConfirmForm(), page_size=services.PAGE_SIZE
    ), 200 if not form.errors else 400


def _back_to_search():
    return redirect(url_for(".users", q=request.args.get("q") or None))


@bp.post("/users/<int:user_id>/end-sessions")
@roles_required("manager")
def end_sessions(user_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        person, ended = services.end_sessions_for(current_user, user_id, utcnow(), **origin())
    except services.NotFound:
        abort(404)
    flash(_("Every session of %(email)s was ended (%(n)d).", email=person.email, n=ended), "success")
    return _back_to_search()


@bp.post("/users/<int:user_id>/unlock")
@roles_required("manager")
def unlock(user_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        person, lifted = services.unlock_for(current_user, user_id, utcnow(), **origin())
    except services.NotFound:
        abort(404)
    if lifted:
        flash(_("%(email)s can sign in again with their password and a code.", email=person.email), "success")
    else:
        flash(_("%(email)s was not locked out. Nothing was changed.", email=person.email), "info")
    return _back_to_search()
