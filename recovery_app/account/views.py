"""Routes of the account blueprint: parse the form, call the service, commit, render or redirect."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user

from ..auth.sessions import current_session_row, fresh_code_required, roles_required
from ..forms import put_on_form
from ..i18n import chosen_language
from ..models.base import utcnow
from ..web import configured_limit, describe_browser, limit_per_form_email, origin, row_id
from . import services
from .forms import (
    AcceptInvitationForm,
    ChangeEmailForm,
    ChangePasswordForm,
    ConfirmForm,
    EndSessionsForm,
    ForgotPasswordForm,
    InviteForm,
    NewPasswordForm,
)

bp = Blueprint("account", __name__, url_prefix="/account")

# ``/account/sessions?after=method`` (or password, email) shows the offer to end
# the other sessions after a change of sign-in details (ASVS 7.4.3).
OFFER_AFTER = ("password", "method", "email")


@bp.context_processor
def helpers() -> dict:
    return {"describe_browser": describe_browser}


def _link_invalid():
    return render_template("account/link_invalid.html"), 404


def _sign_in_page():
    return redirect(url_for("auth.sign_in"))


# --- the people on a seller account --------------------------------------------


def _users_page(form: InviteForm, status: int = 200):
    people = services.account_people(current_user, utcnow())
    return render_template("account/users.html", people=people, form=form, cancel_form=ConfirmForm()), status


@bp.get("/users")
@roles_required("seller_owner")
def users():
    return _users_page(InviteForm(locale=current_user.locale))


@bp.post("/users/invite")
@roles_required("seller_owner")
@configured_limit("RECOVERY_INVITE_LIMIT_PER_ACCOUNT", key_func=lambda: f"account:{current_user.account_id}")
@limit_per_form_email("RECOVERY_INVITE_LIMIT_PER_ADDRESS")
def invite():
    form = InviteForm()
    if form.validate_on_submit():
        try:
            email = services.invite(current_user, form.email.data, form.locale.data, utcnow(), **origin())
        except services.AccountError as error:
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
            return redirect(url_for(".users"))
    return _users_page(form, 400)


@bp.post("/users/invitations/<int:invitation_id>/cancel")
@roles_required("seller_owner")
def cancel_invitation(invitation_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        email = services.cancel_invitation(current_user, invitation_id, utcnow())
    except services.NotOnAccount:
        abort(404)
    flash(_("The invitation to %(email)s was cancelled; its link no longer works.", email=email), "success")
    return redirect(url_for(".users"))


@bp.route("/users/<int:user_id>/remove", methods=["GET", "POST"])
@roles_required("seller_owner")
def remove_user(user_id: int):
    try:
        person = services.account_user(current_user, user_id)
    except services.NotOnAccount:
        abort(404)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            services.remove_user(current_user, user_id, utcnow(), **origin())
        except services.AccountError as error:
            put_on_form(form, error)
        else:
            flash(_("%(email)s was removed and signed out everywhere.", email=person.email), "success")
            return redirect(url_for(".users"))
    status = 400 if request.method == "POST" else 200
    return render_template("account/remove_user.html", person=person, form=form), status


@bp.route("/invitation/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    now = utcnow()
    try:
        invitation, account = services.invitation_for(token, now)
    except services.LinkInvalid:
        return _link_invalid()
    form = AcceptInvitationForm()
    if form.validate_on_submit():
        try:
            services.accept_invitation(
                token,
                form.display_name.data,
                form.password.data,
                form.confirm.data,
                now,
                locale=chosen_language(),
                **origin(),
            )
        except services.LinkInvalid:
            return _link_invalid()
        except services.AccountError as error:
            put_on_form(form, error)
        else:
            flash(
                _(
                    "Your login is ready. Sign in with your e-mail address and new password; "
                    "you will then set up your own 2-step verification."
                ),
                "success",
            )
            return _sign_in_page()
    status = 400 if request.method == "POST" else 200
    return render_template("account/accept_invitation.html", form=form, invitation=invitation, account=account), status


# --- forgotten password ----------------------------------------------------------


@bp.route("/password/forgot", methods=["GET", "POST"])
@configured_limit("RECOVERY_RESET_LIMIT_PER_CLIENT", methods=["POST"])
@limit_per_form_email("RECOVERY_RESET_LIMIT_PER_ADDRESS", methods=["POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        services.request_password_reset(form.email.data, str(get_locale()), utcnow(), **origin())
        return render_template(
            "account/forgot_password_sent.html", minutes=current_app.config["RECOVERY_RESET_MINUTES"]
        )
    status = 400 if request.method == "POST" else 200
    return render_template("account/forgot_password.html", form=form), status


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    now = utcnow()
    try:
        link = services.usable_link(token, services.RESET, now)
    except services.LinkInvalid:
        return _link_invalid()
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            services.reset_password(token, form.password.data, form.confirm.data, now, **origin())
        except services.LinkInvalid:
            return _link_invalid()
        except services.AccountError as error:
            put_on_form(form, error)
        else:
            flash(
                _(
                    "Your new password is set and every session was signed out. Sign in again: "
                    "you will still be asked for a code."
                ),
                "success",
            )
            return _sign_in_page()
    status = 400 if request.method == "POST" else 200
    return render_template("account/reset_password.html", form=form, email=link.email), status


# --- one's own password, e-mail and sessions ---------------------------------------


@bp.route("/password", methods=["GET", "POST"])
@login_required
@fresh_code_required
@configured_limit("RECOVERY_PASSWORD_CHANGE_LIMIT", methods=["POST"], key_func=lambda: f"user:{current_user.id}")
def password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            services.change_password(
                current_user, form.current_password.data, form.password.data, form.confirm.data, utcnow(), **origin()
            )
        except services.AccountError as error:
            put_on_form(form, error)
        else:
            flash(_("Your password was changed."), "success")
            return redirect(url_for(".sessions", after="password"))
    status = 400 if request.method == "POST" else 200
    return render_template("account/password.html", form=form), status


@bp.route("/email", methods=["GET", "POST"])
@login_required
@fresh_code_required
def email():
    form = ChangeEmailForm()
    if form.validate_on_submit():
        try:
            services.change_email(current_user, form.email.data, utcnow(), **origin())
        except services.AccountError as error:
            put_on_form(form, error)
        else:
            flash(_("Your e-mail address was changed. A notice went to the old and the new address."), "success")
            return redirect(url_for(".sessions", after="email"))
    status = 400 if request.method == "POST" else 200
    return render_template("account/email.html", form=form), status


@bp.get("/sessions")
@login_required
@fresh_code_required
def sessions():
    rows = services.open_sessions(current_user, utcnow())
    after = request.args.get("after")
    return render_template(
        "account/sessions.html",
        rows=rows,
        current=current_session_row(),
        after=after if after in OFFER_AFTER else None,
        form=EndSessionsForm(),
    )


@bp.post("/sessions/end")
@login_required
@fresh_code_required
def end_sessions():
    form = EndSessionsForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        if form.scope.data == "others":
            ended = services.end_other_sessions(current_user, current_session_row(), utcnow(), **origin())
            login_user(current_user)  # this browser follows the user's new epoch; the others cannot
            message = _("Every other session was signed out (%(n)d).", n=ended)
        elif (session_id := row_id(form.session_id.data)) is not None:
            services.end_one_session(current_user, session_id, current_session_row(), utcnow(), **origin())
            message = _("That session was signed out.")
        else:
            abort(400)
    except services.NotOnAccount:
        abort(404)
    except services.AccountError as error:
        flash(str(error.message), "error")
        return redirect(url_for(".sessions"))
    flash(message, "success")
    return redirect(url_for(".sessions"))
