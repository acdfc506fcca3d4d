"""Flask app factory: binds extensions and registers blueprints, nothing at import time."""

from __future__ import annotations

from typing import Any

from flask import Flask

from connectors import build_registry
from engine import services
from engine.config import Settings
from engine.db import make_engine, make_session_factory
from engine.jobs import EmbeddedWorker, attach_dispatcher

# A submission carries its files in base64 (4/3 of their size) inside the JSON body, with the form
# around them: the body limit follows the attachments' total (engine.services), plus 1 MiB. A larger
# body is refused with 413 before it is read.
MAX_REQUEST_BYTES = services.MAX_ATTACHMENTS_TOTAL_BYTES * 4 // 3 + 1024 * 1024


def create_app(settings: Settings | None = None, *, start_worker: bool = False) -> Flask:
    """Build the web app. ``start_worker`` starts the embedded worker thread (``motcua serve``)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(SECRET_KEY=settings.secret_key, JSON_AS_ASCII=False, TESTING=settings.is_test,
                      MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    if settings.proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # The client's address (SMS code limits, audit) and scheme as the trusted proxies saw them.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops)  # type: ignore[method-assign]
    engine = make_engine(settings)
    factory = make_session_factory(engine)

    from backoffice.extensions import Motcua, close_db

    ext = Motcua(settings=settings, engine=engine, factory=factory, registry=build_registry(settings, factory))
    app.extensions["motcua"] = ext
    app.teardown_appcontext(close_db)

    if settings.worker == "celery":
        from backoffice.celery_app import celery_init_app

        celery = celery_init_app(app)
        from backoffice.tasks import dispatch_service_calls

        attach_dispatcher(factory, lambda ids: dispatch_service_calls(celery, ids))
    else:
        from connectors import national_portal

        worker = EmbeddedWorker(factory, ext.registry, interval=settings.worker_interval, lease=ext.lease,
                                sweeps=[lambda: national_portal.sync(settings, factory)])
        ext.worker = worker
        attach_dispatcher(factory, worker.wake)
        if start_worker:
            worker.start()

    from backoffice.i18n import init_i18n
    from backoffice.security import init_security

    init_security(app)
    init_i18n(app)

    import backoffice.api_citizens  # noqa: F401 - adds the citizen routes to the api blueprint
    import backoffice.api_reports  # noqa: F401 - adds the report and audit routes to the api blueprint
    from backoffice.admin import init_admin
    from backoffice.api import bp as api_bp
    from backoffice.api_designer import bp as api_designer_bp
    from backoffice.audit import bp as audit_bp
    from backoffice.designer import bp as designer_bp
    from backoffice.portal import bp as portal_bp
    from backoffice.reports import bp as reports_bp
    from backoffice.verify import bp as verify_bp
    from backoffice.views import bp as views_bp
    from backoffice.views import page_error
    from backoffice.web import bp as web_bp

    app.register_blueprint(web_bp)
    app.register_blueprint(views_bp)
    app.register_blueprint(portal_bp, url_prefix="/portal")
    app.register_blueprint(designer_bp, url_prefix="/designer")
    app.register_blueprint(audit_bp, url_prefix="/audit")
    app.register_blueprint(reports_bp, url_prefix="/reports")
    app.register_blueprint(verify_bp)
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    app.register_blueprint(api_designer_bp, url_prefix="/api/v1")
    for status in (400, 403, 404, 405, 413):
        app.register_error_handler(status, page_error)
    init_admin(app)
    if settings.is_test:
        from backoffice.testmode import bp as test_bp

        app.register_blueprint(test_bp, url_prefix="/api/v1/test")
    if settings.sandbox:
        from backoffice.sandbox import bp as sandbox_bp

        app.register_blueprint(sandbox_bp, url_prefix="/sandbox")
    return app


def app_factory(**kwargs: Any) -> Flask:
    """Entry point for ``gunicorn 'backoffice.app:app_factory()'``."""
    return create_app(**kwargs)
