"""Small request-edge helpers shared by every blueprint: who is asking, from
where, and where it is safe to send them next."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import abort, current_app, request
from werkzeug.routing import IntegerConverter

from .auth.users import normalise_email
from .extensions import limiter
from .forms import unsafe_characters

# The largest key an INTEGER primary key holds on PostgreSQL (SQLite's go to 2**63 - 1).
ROW_ID_MAX = 2**31 - 1


class RowId(IntegerConverter):
    """``<int:…>`` in every route is a row id, at most ``ROW_ID_MAX``. A larger
    number names no row, so such a URL matches no route and is a 404 like any
    unknown page, instead of reaching the database, which refuses the number
    (PostgreSQL: out of range; SQLite, past 2**63: the driver cannot send it)."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs["max"] = min(kwargs.get("max") or ROW_ID_MAX, ROW_ID_MAX)
        super().__init__(url_map, *args, **kwargs)


def row_id(text: str | None) -> int | None:
    """A row id sent as text (a form field, a query parameter), or None when
    the text is not one: anything but ASCII digits ("²" passes ``isdigit``),
    or a number larger than any row's id."""
    if not text or len(text) > 10 or not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if number <= ROW_ID_MAX else None


def client_address() -> str | None:
    # ProxyFix (RECOVERY_TRUSTED_PROXIES) has already replaced remote_addr
    # when the app sits behind known proxies; headers are not trusted otherwise.
    return request.remote_addr


def client_browser() -> str:
    return (request.user_agent.string or "")[:300]


def origin() -> dict:
    """Where a request comes from, as the keyword arguments services take
    (``address=``, ``browser=``) for security events and the audit log."""
    return {"address": client_address(), "browser": client_browser()}


def configured_limit(setting: str, **options):
    """A Flask-Limiter limit whose rate is read from ``setting`` at request
    time (ASVS 2.4.1, 6.3.1), so tests and operators can change it."""
    return limiter.limit(lambda: current_app.config[setting], **options)


def _form_email() -> str:
    return normalise_email(request.form.get("email", ""))[:254]


def limit_per_form_email(setting: str, **options):
    """``configured_limit`` counted per e-mail address typed in the form (a
    reset link, an invitation), whoever sends it. A form without an address is
    not counted: the form refuses it anyway, and an empty key would make
    Flask-Limiter skip the limit and log an error for each such request."""
    return configured_limit(setting, key_func=_form_email, exempt_when=lambda: not _form_email(), **options)


def describe_browser(user_agent: str | None) -> str:
    """A short, readable name for a user-agent string ("Chrome on Android")."""
    ua = user_agent or ""
    browser = next(
        (
            name
            for key, name in (
                ("Edg/", "Edge"),
                ("OPR/", "Opera"),
                ("Firefox/", "Firefox"),
                ("Chrome/", "Chrome"),
                ("Safari/", "Safari"),
            )
            if key in ua
        ),
        "",
    )
    system = next(
        (
            name
            for key, name in (
                ("Android", "Android"),
                ("iPhone", "iPhone"),
                ("iPad", "iPad"),
                ("Windows", "Windows"),
                ("Mac OS X", "macOS"),
                ("Linux", "Linux"),
            )
            if key in ua
        ),
        "",
    )
    if browser and system:
        return f"{browser} / {system}"
    return browser or system or (ua[:60] if ua else "?")


def safe_next(target: str | None) -> str | None:
    """Return ``target`` only if it is a path on this site; refuse anything else.

    Protects every ``next=`` parameter against open redirects.
    """
    if not target or len(target) > 2000:
        return None
    if any(ch in target for ch in ("\\", "\r", "\n", "\t", "\x00")):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def same_site_path(url: str | None) -> str | None:
    """The path and query of ``url`` when it points at this site (a Referer, say);
    None for anything else, so it can go through ``safe_next``."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def refuse_control_characters() -> None:
    """A URL or query with control characters (a NUL that PostgreSQL would
    refuse, say) gets a clear 400 before any view sees it. Form fields are
    checked by the forms themselves, with a message beside the field."""
    if unsafe_characters(request.path) or any(unsafe_characters(value) for value in request.args.values()):
        abort(400)


def init_app(app) -> None:
    app.before_request(refuse_control_characters)
