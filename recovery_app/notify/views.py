"""The provider's delivery reports: Twilio calls back when a text or a call
ends, signed with the account's auth token (``X-Twilio-Signature``)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, request

from ..extensions import csrf
from ..models.base import utcnow
from .services import record_delivery_report

bp = Blueprint("notify", __name__, url_prefix="/notify")


@bp.post("/twilio/status")
@csrf.exempt  # the caller is Twilio, which signs the request instead
def twilio_status():
    token = current_app.config.get("RECOVERY_TWILIO_AUTH_TOKEN")
    if not token:
        abort(404)
    from twilio.request_validator import RequestValidator

    # Twilio signs the address it was given (RECOVERY_BASE_URL, not whatever
    # a proxy in front of us made of it) with every form field.
    url = current_app.config["RECOVERY_BASE_URL"].rstrip("/") + request.full_path.rstrip("?")
    if not RequestValidator(token).validate(url, request.form.to_dict(), request.headers.get("X-Twilio-Signature", "")):
        abort(403)
    sid = request.form.get("MessageSid") or request.form.get("CallSid")
    status = request.form.get("MessageStatus") or request.form.get("CallStatus")
    if sid and status:
        record_delivery_report(sid, status, request.form.get("ErrorCode"), utcnow())
    return "", 204
