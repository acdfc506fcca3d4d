"""Procedure folders (``processes/<code>/procedure.yaml`` + BPMN) loaded into the catalogue."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import forms, services, workflow
from engine.models import Procedure, ProcessModelVersion

LIFECYCLE_DIR = "_lifecycle"
CATALOGUE_KEYS = (
    "fee", "documents", "delivery", "form_schema", "task_forms", "basis", "sources", "result_document",
    "legal_time", "decides", "uncertain", "rules", "draft_confirmation",
)


class CatalogueError(ValueError):
    """A procedure folder is malformed; the message starts with ``file:line:``."""


@dataclass(frozen=True)
class ProcedureDefinition:
    code: str
    path: Path
    data: dict[str, Any]
    bpmn_xml: str
    library: tuple[str, ...] = ()

    @property
    def lane_roles(self) -> dict[str, str]:
        return dict(self.data.get("lanes") or {})


def validation_context(path: Path) -> dict[str, Any]:
    """How to validate a BPMN file: with its procedure's lifecycle, lanes and forms when it is a
    procedure's, as the lifecycle itself when it is in ``_lifecycle/``, alone otherwise."""
    folder = path.resolve().parent
    if folder.name == LIFECYCLE_DIR:
        return {"lane_roles": services.DEFAULT_LANE_ROLES, "task_forms": lifecycle_forms(folder.parent),
                "process_id": workflow.LIFECYCLE_PROCESS, "require_called": False}
    if (folder / "procedure.yaml").is_file():
        return definition_validation_context(load_definition(folder))
    return {"lane_roles": services.DEFAULT_LANE_ROLES}


def definition_validation_context(definition: ProcedureDefinition) -> dict[str, Any]:
    """How to validate a loaded procedure's BPMN: its lifecycle, lane roles and task forms."""
    forms_ = dict(definition.data.get("task_forms") or {})
    if definition.library:
        forms_ = {**lifecycle_forms(definition.path.parent), **forms_}
    return {"library": definition.library, "lane_roles": {**services.DEFAULT_LANE_ROLES, **definition.lane_roles},
            "task_forms": forms_}


def default_processes_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "processes"


def load_definition(folder: Path) -> ProcedureDefinition:
    path = folder / "procedure.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise CatalogueError(f"{path}:{line}: {exc.problem}") from exc
    if not isinstance(data, dict):
        raise CatalogueError(f"{path}:1: expected a mapping")
    for key in ("code", "name_vi", "name_en", "legal_time", "bpmn"):
        if key not in data:
            raise CatalogueError(f"{path}:1: missing key {key!r}")
    if data["code"] != folder.name:
        raise CatalogueError(f"{path}:1: code {data['code']!r} differs from the folder name {folder.name!r}")
    bpmn_path = folder / data["bpmn"]
    if not bpmn_path.is_file():
        raise CatalogueError(f"{path}:1: BPMN file {data['bpmn']!r} not found")
    library: tuple[str, ...] = ()
    lifecycle = data.get("lifecycle")
    if lifecycle:
        lifecycle_path = folder.parent / LIFECYCLE_DIR / f"{lifecycle}.bpmn"
        if not lifecycle_path.is_file():
            raise CatalogueError(f"{path}:1: lifecycle {lifecycle!r} not found in {LIFECYCLE_DIR}/")
        library = (lifecycle_path.read_text(encoding="utf-8"),)
    return ProcedureDefinition(data["code"], folder, data, bpmn_path.read_text(encoding="utf-8"), library)


def lifecycle_forms(processes_dir: Path) -> dict[str, Any]:
    """The task forms every lifecycle procedure shares (``_lifecycle/forms.yaml``)."""
    path = processes_dir / LIFECYCLE_DIR / "forms.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return dict(data or {})


def load_definitions(processes_dir: Path | None = None) -> list[ProcedureDefinition]:
    root = processes_dir or default_processes_dir()
    if not root.is_dir():
        raise CatalogueError(f"{root}:0: procedure folder not found (install from a source checkout)")
    return [load_definition(p.parent) for p in sorted(root.glob("*/procedure.yaml"))]


def sync_procedure(session: Session, definition: ProcedureDefinition, *, actor: services.Actor) -> Procedure:
    """Create or update the catalogue entry; deploy the BPMN when it differs from the current version.

    The BPMN must pass every validation rule first; problems come back as ``file:line: message``.
    """
    from engine.validation import validate_bpmn

    data = definition.data
    bpmn_path = definition.path / data["bpmn"]
    context = definition_validation_context(definition)
    problems = validate_bpmn(definition.bpmn_xml, filename=str(bpmn_path), **context)
    if problems:
        raise CatalogueError("\n".join(f"{bpmn_path}:{p.line or 0}: {p.message}" for p in problems))
    procedure = session.scalar(select(Procedure).where(Procedure.code == definition.code))
    if procedure is None:
        procedure = Procedure(code=definition.code)
        session.add(procedure)
    procedure.national_code = data.get("national_code")
    procedure.name_vi = data["name_vi"]
    procedure.name_en = data["name_en"]
    procedure.field = data.get("field", "")
    procedure.online_level = data.get("online_level", "partial")
    procedure.legal_time_value = float(data["legal_time"].get("value") or 0)
    procedure.legal_time_unit = data["legal_time"]["unit"]
    catalogue = {k: data[k] for k in CATALOGUE_KEYS if k in data}
    catalogue["task_forms"] = context["task_forms"]  # the procedure's forms and the lifecycle's
    for name, schema in catalogue.get("task_forms", {}).items():
        try:
            forms.check_schema(schema)
        except forms.FormSchemaError as exc:
            raise CatalogueError(f"{definition.path / 'procedure.yaml'}:1: task form {name!r}: {exc}") from exc
    procedure.catalogue = catalogue
    session.flush()
    current = session.scalar(
        select(ProcessModelVersion)
        .where(ProcessModelVersion.procedure_id == procedure.id)
        .order_by(ProcessModelVersion.version.desc())
        .limit(1)
    )
    # The folder is a source of versions: a model or forms never deployed before make a new version
    # (running cases keep theirs); what the designer deployed after the folder's last change stays.
    file_hash = workflow.content_hash(definition.bpmn_xml, definition.library)
    deployed_before = session.scalars(select(ProcessModelVersion.task_forms).where(
        ProcessModelVersion.procedure_id == procedure.id, ProcessModelVersion.content_hash == file_hash)).all()
    if current is not None and catalogue["task_forms"] in deployed_before:
        if current.task_forms is not None:
            procedure.catalogue = {**catalogue, "task_forms": current.task_forms}
    else:
        services.deploy_process_model(
            session, procedure, definition.bpmn_xml, actor=actor, library=definition.library,
            lane_roles=definition.lane_roles, task_forms=catalogue["task_forms"],
            comment=f"from {definition.path.name}/{data['bpmn']}",
        )
    return procedure


def sync_catalogue(session: Session, *, actor: services.Actor, processes_dir: Path | None = None) -> list[str]:
    return [sync_procedure(session, d, actor=actor).code for d in load_definitions(processes_dir)]
