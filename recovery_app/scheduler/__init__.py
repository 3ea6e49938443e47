"""Jobs that keep the 12-hour promise: the SLA sweep, stale claims, needs_info
expiry, retention, orphan cleanup and outbox delivery (see ``jobs``), run by a
single runner at a time (see ``lock`` and ``runner``).

``init_app`` arranges for the web process to start its runner thread when
``RECOVERY_SCHEDULER`` is on. The thread starts with the first request the
process serves, not in the factory: ``flask db upgrade``, ``flask demo`` and
the other commands build the app too and must not run jobs, and gunicorn
workers forked from a preloading master would not inherit a thread anyway.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    if not app.config["RECOVERY_SCHEDULER"] or app.testing:
        return

    started = []

    @app.before_request
    def _start_scheduler() -> None:
        if started:
            return
        from .runner import start_in_background

        start_in_background(app)
        started.append(True)
