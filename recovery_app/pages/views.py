"""Pages that belong to no single feature: home, language switch, health check."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user

from ..account.services import save_language
from ..models.base import utcnow
from ..recovery import services as recovery
from ..web import client_address, safe_next

bp = Blueprint("pages", __name__)


@bp.get("/")
def home():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.sign_in"))
    if current_user.is_staff:
        return redirect(url_for("review.queue"))
    # A recovery case opened for this user while they still hold their second
    # step: say so first, with the way to stop it or, once stopped, to secure
    # the account.
    open_case = recovery.open_case(current_user)
    cancelled = None if open_case is not None else recovery.recently_cancelled(current_user, utcnow())
    return render_template("pages/home.html", open_case=open_case, cancelled=cancelled)


@bp.route("/language/<code>", methods=["GET", "POST"])
def language(code: str):
    """Switch the language of this browser. Only the switcher's POST also saves
    it for the signed-in user's e-mails and calls: a GET (a link from another
    site, say) changes nothing stored."""
    if code in current_app.config["RECOVERY_LANGUAGES"]:
        session["lang"] = code
        if request.method == "POST" and current_user.is_authenticated:
            save_language(current_user, code)
    return redirect(safe_next(request.values.get("next")) or url_for("pages.home"))


@bp.get("/help", endpoint="help")
def help_page():
    """Answers to the questions sellers ask about 2-step verification; each
    section has an anchor (``#lost-phone``…) that other pages link to."""
    return render_template("pages/help.html")


@bp.get("/healthz")
def healthz():
    """Up or down for anyone (503 when a part is down); which part and the
    scheduler's holder only for managers and internal addresses; the outbox's
    pending and failed counts only for managers."""
    from ..health import check, manager_details, may_see_details
    from ..models.base import utcnow

    report = check(utcnow())
    manager = current_user.is_authenticated and current_user.role == "manager"
    if manager:
        body = {**report, **manager_details()}
    elif may_see_details(client_address()):
        body = report
    else:
        body = {"status": report["status"]}
    response = jsonify(body)
    response.status_code = 200 if report["status"] == "ok" else 503
    response.headers["Cache-Control"] = "no-store"
    return response
