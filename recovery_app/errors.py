"""Error pages: every failure gets a clear page (or JSON for JSON clients), never a stack trace."""

from __future__ import annotations

import math
import time

from flask import jsonify, render_template, request
from flask.globals import request_ctx
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from .extensions import db, limiter

MESSAGES = {
    400: _l("The request could not be understood. Please go back and try again."),
    403: _l("You do not have access to this page."),
    404: _l("This page does not exist, or you do not have access to it."),
    405: _l("This address does not accept that kind of request."),
    413: _l("What you sent is too large. Files may be at most %(mb)s MB each, and %(total)s MB together."),
    429: _l("Too many attempts. Please wait a little and try again."),
    500: _l("Something went wrong on our side. Nothing was changed; please try again."),
}
CSRF_MESSAGE = _l("This form has expired or was not sent from this site. Please reload the page and try again.")


FORM_TOO_BIG_MESSAGE = _l(
    "The form you sent has more fields, or a longer text, than this page accepts. Nothing was stored. "
    "Please go back, shorten what you typed and try again."
)

INCOMPLETE_MESSAGE = _l(
    "What you sent did not arrive complete (the connection may have dropped while the files were sent). "
    "Nothing was stored. Please send the form again."
)


def _upload_came_apart() -> bool:
    """A multipart body that was sent but could not be read (cut short, or its
    parts not where its header says): the token was lost with the rest, and
    "the form has expired" would send the person looking for the wrong cause."""
    if not (request.mimetype or "").startswith("multipart/") or not request.content_length:
        return False
    return not request.form and not request.files


def files_too_large() -> bool:
    """Whether a 413 is about the size of the body (over MAX_CONTENT_LENGTH, or
    a body of unknown length that grew past it). A body within the cap was
    refused by the form reader's own limits instead: more parts than
    MAX_FORM_PARTS, or a text field over MAX_FORM_MEMORY_SIZE. File sizes are
    not the cause then, and saying so would send the person shrinking photos."""
    from flask import current_app

    cap = current_app.config["MAX_CONTENT_LENGTH"]
    length = request.content_length
    return cap is not None and (length is None or length > cap)


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def render_error(status: int, message) -> tuple:
    """The error page (or JSON) for ``status`` saying ``message``."""
    from flask import current_app

    text = (
        str(message)
        % {
            "mb": current_app.config["RECOVERY_MAX_UPLOAD_MB"],
            "total": current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024),
        }
        if message is MESSAGES[413]
        else str(message)
    )
    if _wants_json():
        return jsonify(error=text, status=status), status
    if request_ctx.url_adapter is None:
        # The Host header could not be read (a name no DNS could hold): no address
        # of this site can be written, so the page has no links and no style sheet.
        return render_template("errors/bare.html", status=status, message=text), status
    return render_template("errors/error.html", status=status, message=text), status


def _seconds_until_allowed() -> int | None:
    """For a request a rate limit refused: the seconds until that limit's
    window lets the address in again (None when no limit of ours refused it)."""
    breached = limiter.current_limit
    if breached is None or not breached.breached:
        return None
    return max(1, int(breached.reset_at - time.time()))


def _refused_for(seconds: int) -> str:
    # In whole minutes, rounded up: an hourly limit can mean a long wait, and "a little" would mislead.
    return ngettext(
        "Too many attempts. Please try again in %(num)d minute.",
        "Too many attempts. Please try again in %(num)d minutes.",
        math.ceil(seconds / 60),
    )


def init_app(app) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render_error(400, INCOMPLETE_MESSAGE if _upload_came_apart() else CSRF_MESSAGE)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code is None or error.code < 400:
            return error
        message = MESSAGES.get(error.code, error.description)
        if error.code == 413 and not files_too_large():
            message = FORM_TOO_BIG_MESSAGE
        # Keep what the error says besides its page: Allow on a 405, Retry-After on a 429.
        kept = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]
        wait = _seconds_until_allowed() if error.code == 429 else None
        if wait is not None:
            message = _refused_for(wait)
            if not any(name.lower() == "retry-after" for name, _ in kept):
                kept.append(("Retry-After", str(wait)))
        body, status = render_error(error.code, message)
        return body, status, kept

    @app.errorhandler(InternalServerError)
    def server_error(error):
        db.session.rollback()
        return render_error(500, MESSAGES[500])

    @app.errorhandler(Exception)
    def unhandled(error):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        return render_error(500, MESSAGES[500])
