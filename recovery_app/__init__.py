"""Recovery Desk: identity recovery for sellers locked out of 2-step verification."""

from __future__ import annotations

from flask import Flask

from .config import PROJECT_ROOT, RESOURCE_ROOT, load_config
from .i18n_catalogs import CATALOGS

FEATURES = ("pages", "auth", "recovery", "review", "reports", "account", "staff", "notify", "ops")


def create_app(config: dict | None = None) -> Flask:
    """The application factory: no database work and no I/O beyond reading settings."""
    app = Flask(
        __name__,
        template_folder=str(RESOURCE_ROOT / "templates"),
        static_folder=str(RESOURCE_ROOT / "static"),
        instance_path=str((config or {}).get("RECOVERY_INSTANCE_DIR") or PROJECT_ROOT / "instance"),
    )
    app.config.update(load_config(config))
    register_proxy_fix(app)
    register_request_log(app)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_request_checks(app)
    register_security_headers(app)
    register_cli(app)
    register_scheduler(app)
    return app


def register_proxy_fix(app: Flask) -> None:
    hops = app.config["RECOVERY_TRUSTED_PROXIES"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def register_request_log(app: Flask) -> None:
    """Request ids, the JSON access log and the request metrics, around
    everything else (ProxyFix included, so the log has the client's address)."""
    from .ops.requestlog import install

    install(app)


def register_extensions(app: Flask) -> None:
    from . import database, i18n, models  # noqa: F401  (models registers the tables)
    from .auth import sessions  # noqa: F401  (registers the user loader)
    from .extensions import babel, csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(RESOURCE_ROOT / "migrations"))
    login_manager.init_app(app)
    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = None
    login_manager.session_protection = None  # the server-side session row does this job
    csrf.init_app(app)
    limiter.init_app(app)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(
        str(PROJECT_ROOT / path / "translations") for path in CATALOGS
    )
    babel.init_app(app, locale_selector=i18n.select_locale, timezone_selector=i18n.select_timezone)
    i18n.init_app(app)
    database.init_app(app)  # one transaction per request, committed at its edge


def register_blueprints(app: Flask) -> None:
    import importlib

    from .web import RowId

    app.url_map.converters["int"] = RowId  # before any route is added: numbers in paths are row ids

    for feature in FEATURES:
        module = importlib.import_module(f".{feature}.views", __name__)
        app.register_blueprint(module.bp)


def register_error_handlers(app: Flask) -> None:
    from .errors import init_app

    init_app(app)


def register_request_checks(app: Flask) -> None:
    from .web import init_app

    init_app(app)


def register_security_headers(app: Flask) -> None:
    from .security_headers import init_app

    init_app(app)


def register_cli(app: Flask) -> None:
    from .cli import init_app

    init_app(app)


def register_scheduler(app: Flask) -> None:
    """The in-process SLA scheduler (``RECOVERY_SCHEDULER``); never in tests."""
    from .scheduler import init_app

    init_app(app)
