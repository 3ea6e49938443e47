"""One JSON line per request, and a request id that ties it to everything else.

The id comes from the ``X-Request-ID`` header when the caller (nginx's
``$request_id``) sent a sane one, and is made here otherwise; it goes back in
the response's ``X-Request-ID`` and on every log line written while the
request runs. The line names the route (``/invitations/<token>``), never the
raw path, because single-use links carry their secret in the path; and it
never holds form fields, cookies or headers. Security events are not logged
here: they stay in the database (``security_events``, the audit log).

The middleware sits outside the Flask app, so it sees every response,
including a 500 from a failed commit, and it times the whole request.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

from flask import request

HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")
_current_id: ContextVar[str | None] = ContextVar("recovery_request_id", default=None)

RULE_KEY = "recovery.url_rule"  # where the app leaves the route it matched, for the line and the metrics

access_log = logging.getLogger("recovery_app.access")


def request_id() -> str | None:
    """The id of the request this thread is serving, if any."""
    return _current_id.get()


def accepted_id(incoming: str | None) -> str:
    """The caller's id when it is a plain token of 8 to 128 characters (no
    spaces, quotes or control characters that could forge a log line); a new
    one otherwise."""
    if incoming and _SANE_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON: time (UTC), level, logger, message,
    the request id when there is one, the record's ``fields`` and the
    exception, if any, as one string."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            line["request_id"] = rid
        line.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            line["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(line, ensure_ascii=False, default=str)


class RequestLog:
    """WSGI middleware: request id in and out, one access line, the metrics."""

    def __init__(self, app, observe):
        self.app = app
        self.observe = observe  # (endpoint, method, status, seconds) -> None

    def __call__(self, environ, start_response):
        rid = accepted_id(environ.get("HTTP_X_REQUEST_ID"))
        environ["HTTP_X_REQUEST_ID"] = rid
        token = _current_id.set(rid)
        started = time.perf_counter()
        seen = {"status": 500}

        def _start_response(status, headers, exc_info=None):
            seen["status"] = int(status.split(" ", 1)[0])
            headers = [(name, value) for name, value in headers if name.lower() != "x-request-id"]
            headers.append((HEADER, rid))
            return start_response(status, headers, exc_info)

        try:
            # Flask has called start_response and built the body by the time it
            # returns (a streamed CSV is timed to its first byte).
            return self.app(environ, _start_response)
        finally:
            try:
                self._record(environ, rid, seen["status"], time.perf_counter() - started)
            finally:
                _current_id.reset(token)

    def _record(self, environ, rid: str, status: int, seconds: float) -> None:
        rule = environ.get(RULE_KEY)
        endpoint = (rule.endpoint if rule is not None else None) or "unmatched"
        method = environ.get("REQUEST_METHOD", "")
        self.observe(endpoint, method, status, seconds)
        access_log.info(
            "request",
            extra={
                "fields": {
                    "method": method,
                    "route": rule.rule if rule is not None else None,
                    "endpoint": endpoint,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                    "remote": environ.get("REMOTE_ADDR"),  # the client's, once ProxyFix has read the proxy's header
                }
            },
        )


def _stamp_records_with_the_request_id() -> None:
    """Every log record made while a request runs carries its id, whichever
    logger made it and whenever a handler formats it."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "stamps_request_id", False):
        return

    def stamped(*args, **kwargs):
        record = make_record(*args, **kwargs)
        record.request_id = _current_id.get()
        return record

    stamped.stamps_request_id = True
    logging.setLogRecordFactory(stamped)


def install(app) -> None:
    """Wrap the app in the request log, and write the app's logs as JSON to
    stderr when ``RECOVERY_LOG_FORMAT`` is ``json`` (production's default)."""
    from . import metrics

    app.wsgi_app = RequestLog(app.wsgi_app, metrics.observe_request)
    _stamp_records_with_the_request_id()

    @app.before_request
    def _note_route() -> None:
        request.environ[RULE_KEY] = request.url_rule

    if app.config["RECOVERY_LOG_FORMAT"] != "json":
        return
    from flask.logging import default_handler

    logger = logging.getLogger("recovery_app")
    logger.removeHandler(default_handler)
    if not any(isinstance(handler.formatter, JsonFormatter) for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(app.config["RECOVERY_LOG_LEVEL"])
    logger.propagate = False  # the server's own handlers would write each line a second time
