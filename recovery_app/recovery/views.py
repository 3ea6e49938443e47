"""Routes of the recovery blueprint: parse the form, call the service, render or redirect.

Every page is for the seller who passed the password step in this browser (or
is fully signed in); the user always comes from the session, never from the form.
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from ..auth.sessions import pending_user
from ..database import on_commit, reads_first
from ..errors import FORM_TOO_BIG_MESSAGE, files_too_large, render_error
from ..models.base import utcnow
from ..web import client_address, configured_limit, origin
from . import kept, services, standing
from .forms import ResubmitForm, StartForm, WithdrawForm

bp = Blueprint("recovery", __name__, url_prefix="/recovery")


def _seller(*, signed_in_too: bool = True):
    """The seller these pages are for: the one who passed the password step in
    this browser or, for the case page, a fully signed-in seller (who may want
    to withdraw a case someone else opened with their password)."""
    user = pending_user()
    if user is None and signed_in_too and current_user.is_authenticated:
        user = current_user._get_current_object()
    return user if user is not None and user.is_seller else None


def _elsewhere():
    """Where to send someone these pages are not for: visitors to sign in,
    a signed-in user to the home page."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.sign_in"))
    return redirect(url_for("pages.home"))


def seller_required(view=None, *, signed_in_too: bool = True):
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            g.seller = _seller(signed_in_too=signed_in_too)
            if g.seller is None:
                if current_user.is_authenticated and signed_in_too is False:
                    return redirect(url_for(".case_status"))
                return _elsewhere()
            return view(*args, **kwargs)

        return wrapped

    return decorator(view) if view is not None else decorator


def _user_key() -> str:
    seller = _seller()
    return f"recovery-user:{seller.id if seller else 'none'}"


attempts_per_address = configured_limit(
    "RECOVERY_CASE_LIMIT_PER_ADDRESS", key_func=lambda: f"recovery-address:{client_address() or 'unknown'}"
)
attempts_per_user = configured_limit("RECOVERY_CASE_LIMIT_PER_USER", key_func=_user_key)


def _uploads() -> list[services.Upload]:
    """The files of each side as plain bytes, read only up to one byte over the cap."""
    cap = current_app.config["RECOVERY_MAX_UPLOAD_MB"] * 1024 * 1024
    uploads = []
    for side in services.SIDES:
        files = [f for f in request.files.getlist(side) if f.filename or f.content_length]
        if files:
            uploads.append(services.Upload(side, files[0].filename, files[0].stream.read(cap + 1), len(files) - 1))
    return uploads


def _kept_entries(now) -> dict:
    """This browser's files kept from an earlier try, if still good."""
    return kept.valid(session.get(kept.SESSION_KEY), g.seller.id, now)


def _kept_files(entries: dict) -> dict:
    return services.kept_documents(kept.documents(entries))


def _keep_passed(entries: dict, wrong: services.UploadProblems, now) -> None:
    session[kept.SESSION_KEY] = kept.remember(entries, wrong.passed, g.seller.id, now)


def _sent(entries: dict, target: str):
    """The documents went in: the kept files go once the unit commits. A page
    that sends with its own progress bar (``X-Upload-Progress``) is told where
    to go instead of being redirected, so it can show the next page itself."""
    session.pop(kept.SESSION_KEY, None)
    if entries:
        on_commit(lambda: kept.forget(entries))
    if request.headers.get("X-Upload-Progress"):
        return jsonify(location=target)
    return redirect(target)


def _page(template: str, status: int = 200, **context):
    seller = g.seller
    locale = str(get_locale() or "ja")
    context.setdefault("kept", kept.shown(kept.valid(session.get(kept.SESSION_KEY), seller.id, utcnow())))
    return render_template(
        template,
        seller=seller,
        withdrawable=services.WITHDRAWABLE,
        local_time=lambda moment: services.in_zone(moment, seller.time_zone, locale),
        sla_hours=current_app.config["RECOVERY_SLA_HOURS"],
        max_mb=current_app.config["RECOVERY_MAX_UPLOAD_MB"],
        owner=_signed_in_owner(),
        **context,
    ), status


@bp.get("/")
@seller_required(signed_in_too=False)  # a signed-in seller has working 2SV: nothing to recover
def start():
    if services.open_case(g.seller) is not None:
        return redirect(url_for(".case_status"))
    return _start_page(StartForm(), problems={})


def _start_page(form, status: int = 200, **context):
    return _page(
        "recovery/start.html",
        status,
        form=form,
        choices=services.document_choices(),
        slots=services.intake_slots(form.document_type.data),
        **context,
    )


def _case_page(case, status: int = 200, **context):
    cancelled_by = services.how_cancelled(case) if case.status == "cancelled" else None
    return _page(
        "recovery/case.html",
        status,
        case=case,
        form=ResubmitForm(),
        slots=services.case_slots(case),
        cancelled_by=cancelled_by,
        **context,
    )


@bp.post("/")
@reads_first  # the files are cleaned before the unit takes the write lock
@seller_required(signed_in_too=False)
@attempts_per_address
@attempts_per_user
def submit():
    form = StartForm()
    now = utcnow()
    entries = _kept_entries(now)
    try:
        services.submit_case(
            g.seller,
            form.document_type.data,
            _uploads(),
            consent=form.consent.data,
            now=now,
            kept=_kept_files(entries),
            **origin(),
        )
    except services.OpenCaseExists as exists:
        flash(str(exists.message), "warning")
    except services.UploadProblems as wrong:
        _keep_passed(entries, wrong, now)
        return _start_page(form, 422, problems=wrong.problems, summary=wrong.message)
    else:
        flash(_("Your documents were sent. We will e-mail you the result."), "success")
    return _sent(entries, url_for(".case_status"))


@bp.get("/case")
@seller_required
def case_status():
    case = services.latest_case(g.seller)
    if case is None:
        return redirect(url_for(".start")) if pending_user() else _elsewhere()
    return _case_page(case, problems={}, standing=_standing(case.reference))


def _standing(reference: str) -> dict | None:
    return standing.for_case(
        g.seller.id, reference, utcnow(), time_zone=g.seller.time_zone, locale=str(get_locale() or "ja")
    )


@bp.get("/case/<reference>/standing")
def case_standing(reference: str):
    """Where the case stands now, as JSON, for the case page to update itself.
    Only its seller may read it; anyone else gets 404. Asking again is not
    activity: the session's idle timeout keeps running while the page waits."""
    g.passive_request = True
    g.seller = _seller()
    found = _standing(reference) if g.seller is not None else None
    if found is None:
        abort(404)
    response = jsonify(found)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/case/documents")
@reads_first
@seller_required
@attempts_per_address
@attempts_per_user
def resubmit():
    now = utcnow()
    entries = _kept_entries(now)
    try:
        services.resubmit_documents(g.seller, _uploads(), now=now, kept=_kept_files(entries), **origin())
    except services.UploadProblems as wrong:
        _keep_passed(entries, wrong, now)
        case = services.latest_case(g.seller)
        return _case_page(case, 422, problems=wrong.problems, summary=wrong.message, standing=_standing(case.reference))
    except services.RecoveryError as refused:
        flash(str(refused.message), "error")
        return redirect(url_for(".case_status"))
    flash(_("Thank you. Your new documents were sent and the review continues."), "success")
    return _sent(entries, url_for(".case_status"))


def _signed_in_owner() -> bool:
    """Whether the seller of this page passed both steps in this browser (not
    only the password): they may stop their case at any open status."""
    return current_user.is_authenticated and current_user.id == g.seller.id


@bp.route("/case/withdraw", methods=["GET", "POST"])
@seller_required
def withdraw():
    """Withdraw the case. A seller who is fully signed in cancels it instead,
    whatever its status short of a decision ("this wasn't me"), and is then
    shown how to secure the account."""
    form = WithdrawForm()
    owner = _signed_in_owner()
    if not form.validate_on_submit():
        case = services.latest_case(g.seller)
        may_stop = case is not None and case.is_open and (owner or case.status in services.WITHDRAWABLE)
        return _page("recovery/withdraw.html", form=form, case=case, may_stop=may_stop)
    if owner:
        if services.cancel_for_owner(g.seller, reason="owner_cancelled", now=utcnow(), **origin()) is None:
            flash(_("You have no open recovery case to cancel."), "error")
            return redirect(url_for(".case_status"))
        flash(_("The recovery case was cancelled. Nothing was changed on your sign-in."), "success")
        return redirect(url_for("pages.home"))
    try:
        services.withdraw(g.seller, now=utcnow(), **origin())
    except services.RecoveryError as refused:
        flash(str(refused.message), "error")
    else:
        flash(_("Your recovery case was withdrawn. Your documents will be deleted."), "success")
    return redirect(url_for(".case_status"))


@bp.errorhandler(413)
def too_large(error):
    """The body was over MAX_CONTENT_LENGTH: nothing was read, nothing stored.
    A body within it that the form reader refused is not about the photos."""
    if not files_too_large():
        return render_error(413, FORM_TOO_BIG_MESSAGE)
    back = url_for(".case_status") if request.endpoint == "recovery.resubmit" else url_for(".start")
    return render_template(
        "recovery/too_large.html",
        back=back,
        max_mb=current_app.config["RECOVERY_MAX_UPLOAD_MB"],
        total_mb=current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024),
    ), 413
