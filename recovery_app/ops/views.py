"""``/metrics`` for Prometheus, for configured networks or a bearer token only."""

from __future__ import annotations

import hmac

from flask import Blueprint, abort, current_app, request

from ..health import in_networks
from ..models.base import utcnow
from ..web import client_address

bp = Blueprint("ops", __name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _may_scrape() -> bool:
    """A caller that sends a bearer token must send the right one (403 if
    not); without one, only ``RECOVERY_METRICS_NETWORKS`` may read, and others
    are told nothing is here (404)."""
    header = request.headers.get("Authorization", "")
    if header:
        token = current_app.config["RECOVERY_METRICS_TOKEN"]
        scheme, _, presented = header.partition(" ")
        if not (token and scheme.lower() == "bearer" and hmac.compare_digest(presented.strip(), token)):
            abort(403)
        return True
    return in_networks(client_address(), "RECOVERY_METRICS_NETWORKS")


@bp.get("/metrics")
def metrics():
    from .metrics import exposition

    if not _may_scrape():
        abort(404)
    return exposition(utcnow()), 200, {"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"}
