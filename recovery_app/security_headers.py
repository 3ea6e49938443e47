"""Security headers on every response.

No inline script anywhere: the CSP allows scripts and styles from this site only.
Pages that must differ (a document served in a sandbox) set their own CSP first;
it is kept.
"""

from __future__ import annotations

from flask import request

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-src 'self'; frame-ancestors 'none'"
)


_ALWAYS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(self), geolocation=(), microphone=()"),
)
_PRODUCTION = (("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),)
# Pages about people's sign-in and identity are never kept in caches.
_PAGES = (("Cache-Control", "no-store"),)


def init_app(app) -> None:
    @app.after_request
    def add_headers(response):
        headers = response.headers
        # One pass over what the view set, instead of a failed lookup per header.
        present = {name.lower() for name, _ in headers.items()}
        wanted = _ALWAYS
        if app.config["RECOVERY_ENV"] == "production":
            wanted += _PRODUCTION
        if request.endpoint != "static":
            wanted += _PAGES
        for name, value in wanted:
            if name.lower() not in present:
                headers.add(name, value)
        return response
