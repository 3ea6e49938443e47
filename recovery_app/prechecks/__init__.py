"""Automatic pre-checks on every case: image quality, passport MRZ, reused
documents and faces. They advise the reviewer and never decide a case.

``init_app(app)`` makes the panel's view-model available to templates as
``precheck_panel(case)``.
"""

from __future__ import annotations


def init_app(app) -> None:
    from .services import panel

    app.add_template_global(panel, "precheck_panel")
