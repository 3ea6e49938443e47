"""Routes of the review blueprint: parse the form, call the service, render or redirect."""

from __future__ import annotations

from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import SelectChoice

from ..auth.sessions import current_session_row, roles_required
from ..database import writes
from ..documents.storage import StorageError
from ..forms import put_on_form
from ..models.base import utcnow
from ..vault import VaultError
from ..web import describe_browser, origin
from . import casefile, claims, decisions, risk, services
from .forms import (
    ActionForm,
    ApproveForm,
    NeedsInfoForm,
    NoteForm,
    QueueFilterForm,
    ReassignForm,
    RejectForm,
)
from .queue import QueueFilters, decode_cursor, queue_page

bp = Blueprint("review", __name__, url_prefix="/review")
staff_only = roles_required("reviewer", "manager")


@bp.context_processor
def review_helpers():
    """The reviewer's own words, beside the case labels every template has."""
    return {
        "risk_label": risk.reason_label,
        "method_label": casefile.method_label,
        "audit_action_label": casefile.audit_action_label,
        "decision_label": decisions.decision_label,
        "describe_browser": describe_browser,
    }


def _staff_choices() -> list[SelectChoice]:
    return [SelectChoice(user_id, label) for user_id, label in claims.staff_choices()]


def _edge() -> dict:
    """The request's facts every service takes: the time, and where the action came from."""
    return {"now": utcnow(), **origin()}


def _act(reference: str, work: Callable, done: str | Callable, **sent):
    """Run one decision or claim, then go back to the case saying what happened.

    A refusal that names a field of the form sent (``sent``: the page's name for
    that form, and the form) is the reviewer's to correct there, like any other
    form error: the page comes back with the field marked and what they entered
    kept. Any other refusal is audited and told at the top of the case."""
    try:
        result = work()
    except services.CaseNotFound:
        abort(404)
    except services.ReviewError as exc:
        form = next(iter(sent.values()), None)
        if form is not None and exc.field is not None and exc.field in form:
            put_on_form(form, exc)
            return _sent_back(reference, **sent)
        services.record_refusal(reference, current_user, request.endpoint.rpartition(".")[2], exc, **_edge())
        flash(str(exc.message), "error")
    else:
        flash(done(result) if callable(done) else done, "success")
    return redirect(url_for("review.case", reference=reference), code=303)


def _opened(reference: str):
    """The case page as the reviewer opens it: the opening is audited."""
    try:
        file = casefile.open_case_file(reference, current_user, **_edge())
    except services.CaseNotFound:
        abort(404)
    return _case_page(file, 200)


def _sent_back(reference: str, **forms):
    """The case page again under a form that was refused, with its errors; an
    opening, audited, unless this session has opened the case already."""
    session_row = current_session_row()
    try:
        file = casefile.reread_case_file(
            reference, current_user, opened_since=session_row.created_at if session_row else None, **_edge()
        )
    except services.CaseNotFound:
        abort(404)
    return _case_page(file, 400, **forms)


def _case_page(file: casefile.CaseFile, status: int, **forms):
    reassign = ReassignForm(formdata=None) if "reassign_form" not in forms else forms.pop("reassign_form")
    reassign.reviewer.choices = _staff_choices() if current_user.role == "manager" else []
    context = {
        "approve_form": ApproveForm(formdata=None),
        "reject_form": RejectForm(formdata=None),
        "info_form": NeedsInfoForm(formdata=None),
        "note_form": NoteForm(formdata=None),
        "action_form": ActionForm(),
        "reassign_form": reassign,
        **forms,
    }
    return render_template("review/case.html", file=file, case=file.case, now=utcnow(), **context), status


@bp.get("/")
@staff_only
def queue():
    filters_form = QueueFilterForm(request.args)
    filters = QueueFilters()
    if filters_form.validate():
        filters = QueueFilters(
            status=filters_form.status.data or "",
            at_risk=filters_form.at_risk.data,
            breached=filters_form.breached.data,
            mine=filters_form.mine.data,
            flagged=filters_form.flagged.data,
        )
        try:
            filters.after = decode_cursor(filters_form.after.data) if filters_form.after.data else None
        except services.ReviewError as exc:
            flash(str(exc.message), "error")
    else:
        flash(_("That filter is not valid; showing every case that waits on us."), "error")
    now = utcnow()
    page = queue_page(current_user, filters, now)
    return render_template(
        "review/queue.html", page=page, filters=filters, filters_form=filters_form, action_form=ActionForm(), now=now
    )


@bp.post("/claim-next")
@staff_only
def claim_next():
    if not ActionForm().validate_on_submit():
        abort(400)
    case = claims.claim_next(current_user, **_edge())
    if case is None:
        flash(_("No case is waiting to be claimed."), "info")
        return redirect(url_for("review.queue"), code=303)
    flash(_("You now hold case %(ref)s.", ref=case.reference), "success")
    return redirect(url_for("review.case", reference=case.reference), code=303)


@bp.post("/case/<reference>/claim")
@staff_only
def claim(reference: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    return _act(
        reference,
        lambda: claims.claim(reference, current_user, **_edge()),
        _("You now hold case %(ref)s.", ref=reference),
    )


@bp.post("/case/<reference>/release")
@staff_only
def release(reference: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    return _act(
        reference,
        lambda: claims.release(reference, current_user, **_edge()),
        _("Case %(ref)s is back in the queue.", ref=reference),
    )


@bp.post("/case/<reference>/reassign")
@roles_required("manager")
def reassign(reference: str):
    form = ReassignForm()
    form.reviewer.choices = _staff_choices()
    if not form.validate_on_submit():
        return _sent_back(reference, reassign_form=form)
    return _act(
        reference,
        lambda: claims.reassign(reference, current_user, form.reviewer.data, **_edge()),
        _("Case %(ref)s was reassigned.", ref=reference),
    )


@bp.get("/case/<reference>")
@staff_only
@writes  # every view of a case file is audited
def case(reference: str):
    return _opened(reference)


@bp.get("/case/<reference>/documents/<int:document_id>")
@staff_only
@writes  # every look at a document is audited
def document(reference: str, document_id: int):
    try:
        doc, content, filename = casefile.read_document(reference, document_id, current_user, **_edge())
    except services.CaseNotFound:
        abort(404)
    except (StorageError, VaultError, InvalidTag, OSError):
        current_app.logger.error("document %s of case %s could not be read", document_id, reference)
        return render_template(
            "errors/error.html",
            status=500,
            message=_("This document cannot be shown: its stored copy is missing or failed its integrity check."),
        ), 500
    response = Response(
        content, mimetype=doc.content_type if doc.content_type in casefile.SAFE_TYPES else "application/octet-stream"
    )
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # The document may be framed by the case page only, and runs nothing.
    response.headers["Content-Security-Policy"] = "sandbox; frame-ancestors 'self'"
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


@bp.post("/case/<reference>/approve")
@staff_only
def approve(reference: str):
    form = ApproveForm()
    if not form.validate_on_submit():
        return _sent_back(reference, approve_form=form)
    return _act(
        reference,
        lambda: decisions.approve(reference, current_user, form.checklist.data or [], **_edge()),
        lambda case: (
            _("Case %(ref)s is high-risk: your approval is recorded and waits for a second reviewer.", ref=reference)
            if case.status == "awaiting_second_approval"
            else _("Case %(ref)s is approved. The seller's 2-step verification was reset.", ref=reference)
        ),
        approve_form=form,
    )


@bp.post("/case/<reference>/confirm")
@staff_only
def confirm(reference: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    return _act(
        reference,
        lambda: decisions.confirm_approval(reference, current_user, **_edge()),
        _("Case %(ref)s is approved. The seller's 2-step verification was reset.", ref=reference),
    )


@bp.post("/case/<reference>/reject")
@staff_only
def reject(reference: str):
    form = RejectForm()
    if not form.validate_on_submit():
        return _sent_back(reference, reject_form=form)
    return _act(
        reference,
        lambda: decisions.reject(reference, current_user, form.reason.data, form.message.data, **_edge()),
        _("Case %(ref)s was rejected. The seller will be told by e-mail.", ref=reference),
    )


@bp.post("/case/<reference>/request-documents")
@staff_only
def request_documents(reference: str):
    form = NeedsInfoForm()
    if not form.validate_on_submit():
        return _sent_back(reference, info_form=form)
    return _act(
        reference,
        lambda: decisions.request_documents(reference, current_user, form.message.data, **_edge()),
        _("New documents were requested for case %(ref)s. The SLA clock is paused.", ref=reference),
    )


@bp.post("/case/<reference>/notes")
@staff_only
def add_note(reference: str):
    form = NoteForm()
    if not form.validate_on_submit():
        return _sent_back(reference, note_form=form)
    return _act(
        reference, lambda: decisions.add_note(reference, current_user, form.body.data, **_edge()), _("Note added.")
    )
