"""Which sources feed which translation catalog.

Each feature keeps its own catalog beside its code, so that work on one
feature never edits another's. Flask-Babel merges them all at run time.
English is the source language; each catalog holds the Japanese.
"""

CATALOGS: dict[str, tuple[str, ...]] = {
    "recovery_app": (
        "recovery_app/*.py",
        "recovery_app/models",
        "recovery_app/pages",
        "recovery_app/notify",
        "templates/base.html",
        "templates/errors",
        "templates/pages",
        "templates/notify",
    ),
    "recovery_app/auth": ("recovery_app/auth", "templates/auth"),
    "recovery_app/recovery": ("recovery_app/recovery", "recovery_app/documents", "templates/recovery"),
    "recovery_app/review": ("recovery_app/review", "templates/review"),
    "recovery_app/reports": (
        "recovery_app/reports",
        "recovery_app/scheduler",
        "templates/reports",
        "templates/scheduler",
    ),
    "recovery_app/account": ("recovery_app/account", "templates/account"),
    "recovery_app/staff": ("recovery_app/staff", "templates/staff"),
    "recovery_app/prechecks": ("recovery_app/prechecks", "templates/prechecks"),
}
LANGUAGES = ("ja",)
