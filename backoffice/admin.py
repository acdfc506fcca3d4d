"""Flask-Admin for administrators: units, users and roles, procedure catalogue and fees, holiday
calendar, settings. Access is checked on every view; every change is an audit event.

Business rules stay in the engine: passwords go through argon2 (engine.security), a second factor
is reset by engine.accounts, a holiday change invalidates the cached working-day calendar.
"""

from __future__ import annotations

import json
import warnings
from datetime import date
from typing import Any

from flask import Flask, abort, flash, redirect, request, url_for
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_admin.form import SecureForm
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session
from wtforms import PasswordField, SelectMultipleField, TextAreaField
from wtforms.validators import Optional as OptionalValidator
from wtforms.validators import ValidationError

from backoffice.extensions import motcua
from backoffice.security import web_user
from engine import accounts, services
from engine.audit import record_event
from engine.models import CalendarEntry, Procedure, Role, ServiceCall, Setting, Unit, UnitTarget, User, UserRole
from engine.security import hash_password

ADMIN_ROLE = Role.ADMIN.value
MIN_PASSWORD = 10
SECRET_SETTING_WORDS = ("secret", "password", "token", "key")


def _is_admin() -> bool:
    user = web_user()
    return user is not None and ADMIN_ROLE in user.roles


class SecuredIndex(AdminIndexView):
    def is_accessible(self) -> bool:
        return _is_admin()

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        if web_user() is None:
            return redirect(url_for("views.login", next=request.full_path))
        abort(403)

    @expose("/")
    def index(self) -> Any:
        return super().index()


class SecuredModelView(ModelView):
    """Admins only; forms carry a CSRF token; changes are audited."""

    form_base_class = SecureForm
    can_view_details = True
    page_size = 50

    def is_accessible(self) -> bool:
        return _is_admin()

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        if web_user() is None:
            return redirect(url_for("views.login", next=request.full_path))
        abort(403)

    @property
    def db_session(self) -> Session:
        return motcua().scoped()

    def _audit(self, model: Any, action_name: str, data: dict[str, Any] | None = None) -> None:
        user = web_user()
        record_event(self.db_session, action=action_name, actor=user.username if user else "admin",
                     actor_id=user.id if user else None,
                     data={"model": type(model).__name__, "id": str(self.get_pk_value(model)), **(data or {})})

    def after_model_change(self, form: Any, model: Any, is_created: bool) -> None:
        changed = sorted(name for name, field in form._fields.items()
                         if name != "csrf_token" and field.data != field.object_data
                         and not isinstance(field, PasswordField))
        self._audit(model, "admin_created" if is_created else "admin_changed", {"fields": changed})
        self.db_session.commit()

    def after_model_delete(self, model: Any) -> None:
        self._audit(model, "admin_deleted")
        self.db_session.commit()


class UnitView(SecuredModelView):
    column_list = ("code", "name", "agency_code")
    column_searchable_list = ("code", "name", "agency_code")
    form_columns = ("code", "name", "agency_code")
    column_labels = {"code": _l("Code"), "name": _l("Name"), "agency_code": _l("Agency code")}
    can_delete = False  # dossier codes and history refer to units: deactivate users instead


class UserView(SecuredModelView):
    column_list = ("username", "full_name", "unit", "title", "is_active", "locked_until")
    column_searchable_list = ("username", "full_name", "email", "phone")
    column_filters = ("is_active", "unit")
    column_labels = {"username": _l("Username"), "full_name": _l("Full name"), "unit": _l("Unit"),
                     "title": _l("Title"), "is_active": _l("Active"), "locked_until": _l("Locked until")}
    form_columns = ("username", "full_name", "unit", "title", "phone", "email", "is_active", "roles", "new_password")
    form_extra_fields = {
        "roles": SelectMultipleField(_l("Roles"), choices=[(r.value, r.value) for r in Role]),
        "new_password": PasswordField(_l("New password"), validators=[OptionalValidator()]),
    }
    can_delete = False  # the audit log names users: deactivate instead

    def on_form_prefill(self, form: Any, id: Any) -> None:  # noqa: A002 - Flask-Admin's signature
        user = self.db_session.get(User, int(id))
        if user is not None:
            form.roles.data = sorted(user.roles)

    def on_model_change(self, form: Any, model: User, is_created: bool) -> None:
        password = form.new_password.data or ""
        if is_created and not password:
            raise ValidationError(str(_l("A new account needs a password.")))
        if password:
            if len(password) < MIN_PASSWORD or password.lower() == password or password.upper() == password \
                    or not any(c.isdigit() for c in password):
                raise ValidationError(str(_l("Password: at least 10 characters with upper and lower case "
                                             "letters and a digit.")))
            model.password_hash = hash_password(password)
        wanted = set(form.roles.data or [])
        model.role_rows = [row for row in model.role_rows if row.role in wanted] + [
            UserRole(role=role) for role in sorted(wanted - model.roles)]

    @action("reset_totp", _l("Reset second factor"), _l("Reset the second factor of the selected users?"))
    def action_reset_totp(self, ids: list[str]) -> None:
        user = web_user()
        for user_id in ids:
            target = self.db_session.get(User, int(user_id))
            if target is not None:
                accounts.reset_totp(self.db_session, target, actor=user.username if user else "admin")
        self.db_session.commit()
        flash(str(_l("Second factor reset; the users set it up again at their next login.")), "success")

    @action("unlock", _l("Unlock"), _l("Unlock the selected accounts?"))
    def action_unlock(self, ids: list[str]) -> None:
        for user_id in ids:
            target = self.db_session.get(User, int(user_id))
            if target is not None:
                target.locked_until = None
                target.failed_logins = 0
                self._audit(target, "admin_unlocked")
        self.db_session.commit()
        flash(str(_l("Accounts unlocked.")), "success")


class ProcedureView(SecuredModelView):
    column_list = ("code", "name_vi", "field", "online_level", "legal_time_value", "legal_time_unit", "is_active")
    column_searchable_list = ("code", "name_vi", "name_en", "national_code")
    column_filters = ("field", "online_level", "is_active")
    column_labels = {"code": _l("Code"), "name_vi": _l("Name (Vietnamese)"), "name_en": _l("Name (English)"),
                     "field": _l("Field"), "online_level": _l("Online level"), "legal_time_value": _l("Legal time"),
                     "legal_time_unit": _l("Unit of time"), "is_active": _l("Active")}
    form_columns = ("name_vi", "name_en", "national_code", "field", "online_level", "legal_time_value",
                    "legal_time_unit", "is_active", "fee")
    form_choices = {
        "online_level": [("full", "full"), ("partial", "partial"), ("none", "none")],
        "legal_time_unit": [(u, u) for u in ("same_day", "working_days", "calendar_days", "hours")],
    }
    form_extra_fields = {"fee": TextAreaField(_l("Fee (JSON)"))}
    can_create = False  # procedures come from processes/ with their BPMN model (motcua seed)
    can_delete = False

    def on_form_prefill(self, form: Any, id: Any) -> None:  # noqa: A002
        procedure = self.db_session.get(Procedure, int(id))
        if procedure is not None:
            form.fee.data = json.dumps(procedure.catalogue.get("fee") or {}, ensure_ascii=False, indent=2)

    def on_model_change(self, form: Any, model: Procedure, is_created: bool) -> None:
        raw = (form.fee.data or "").strip()
        if not raw:
            return
        try:
            fee = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{_l('Fee (JSON)')}: line {exc.lineno}: {exc.msg}") from exc
        if not isinstance(fee, dict):
            raise ValidationError(str(_l("Fee must be a JSON object.")))
        try:
            services.fee_due(fee, {})
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"{_l('Fee (JSON)')}: {exc}") from exc
        model.catalogue = {**model.catalogue, "fee": fee}


class TargetView(SecuredModelView):
    """Units' yearly targets (chỉ tiêu): the reports compare the online submission rate with them."""

    column_list = ("unit", "year", "online_rate")
    column_default_sort = ("year", True)
    column_labels = {"unit": _l("Unit"), "year": _l("Year"), "online_rate": _l("Online submissions (%)")}
    form_columns = ("unit", "year", "online_rate")


class CalendarView(SecuredModelView):
    column_list = ("day", "kind", "name")
    column_default_sort = ("day", True)
    column_filters = ("kind",)
    column_labels = {"day": _l("Day"), "kind": _l("Kind"), "name": _l("Name")}
    form_columns = ("day", "kind", "name")
    form_choices = {"kind": [("holiday", "holiday"), ("day_off", "day_off"), ("make_up_day", "make_up_day")]}

    def get_one(self, id: str) -> Any:  # noqa: A002 - Flask-Admin's name
        """The row of an edit, details or delete link: its key is the day (an ISO date in the URL,
        which SQLite's Date type does not take as a string)."""
        try:
            day = date.fromisoformat(id)
        except ValueError:
            return None
        return self.db_session.get(CalendarEntry, day)

    def after_model_change(self, form: Any, model: Any, is_created: bool) -> None:
        super().after_model_change(form, model, is_created)
        services.invalidate_calendar()  # deadlines computed from now on use the new day

    def after_model_delete(self, model: Any) -> None:
        super().after_model_delete(model)
        services.invalidate_calendar()


class SettingView(SecuredModelView):
    column_list = ("key", "value")
    column_searchable_list = ("key",)
    form_columns = ("key", "value")
    column_labels = {"key": _l("Key"), "value": _l("Value")}

    def _value_formatter(self, _context: Any, model: Setting, _name: str) -> str:
        if any(word in model.key.lower() for word in SECRET_SETTING_WORDS):
            return "••••••"
        return model.value

    column_formatters = {"value": _value_formatter}


class DeliveryView(SecuredModelView):
    """Outgoing calls to providers and agencies (service steps and the outbox): the failed ones can
    be sent again once the cause is fixed. Read-only otherwise."""

    can_create = False
    can_edit = False
    can_delete = False
    column_list = ("created_at", "operation", "dossier_id", "status", "attempts", "error", "next_attempt_at")
    column_filters = ("status", "operation")
    column_searchable_list = ("operation", "error")
    column_default_sort = ("created_at", True)
    column_labels = {"created_at": _l("Created"), "operation": _l("Operation"), "dossier_id": _l("Dossier"),
                     "status": _l("Status"), "attempts": _l("Attempts"), "error": _l("Last error"),
                     "next_attempt_at": _l("Next attempt")}

    def get_query(self) -> Any:  # failed ones first: what the admin comes for
        return super().get_query().order_by(ServiceCall.status != "failed", ServiceCall.created_at.desc())

    @action("retry", _l("Send again"), _l("Send the selected failed calls again?"))
    def action_retry(self, ids: list[str]) -> None:
        user = web_user()
        actor = services.Actor.of(user) if user else services.SYSTEM_ACTOR
        retried = sum(services.retry_service_call(self.db_session, call_id, actor=actor) for call_id in ids)
        self.db_session.commit()
        flash(str(_l("%(n)s call(s) will be sent again.", n=retried)), "success")


def init_admin(app: Flask) -> Admin:
    scoped = motcua(app).scoped
    admin = Admin(app, name="motcua", url="/admin", index_view=SecuredIndex(url="/admin", name=_l("Home")))
    with warnings.catch_warnings():
        # Flask-Admin 2 wants a Flask-SQLAlchemy ``db``; without that extension its supported
        # input is still a scoped session (it only warns that the parameter will be renamed).
        warnings.filterwarnings("ignore", "Passing a session object directly", DeprecationWarning)
        admin.add_view(UnitView(Unit, scoped, name=_l("Units"), endpoint="admin_units"))
        admin.add_view(UserView(User, scoped, name=_l("Users and roles"), endpoint="admin_users"))
        admin.add_view(ProcedureView(Procedure, scoped, name=_l("Procedures and fees"), endpoint="admin_procedures"))
        admin.add_view(CalendarView(CalendarEntry, scoped, name=_l("Holiday calendar"), endpoint="admin_calendar"))
        admin.add_view(TargetView(UnitTarget, scoped, name=_l("Targets"), endpoint="admin_targets"))
        admin.add_view(SettingView(Setting, scoped, name=_l("Settings"), endpoint="admin_settings"))
        admin.add_view(DeliveryView(ServiceCall, scoped, name=_l("Deliveries"), endpoint="admin_deliveries"))
    return admin
