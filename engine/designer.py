"""The process designer's services: drafts validated on every save, deployment of new versions,
roll-back, the difference between two models, and migration of running cases to a newer version.

Running cases are never harmed: a deployment only changes what new cases start on; a case moves
to another version only when the move is safe (every task it completed and every task it is at
still exists, as the same kind of task), keeps every waiting timer's due moment and every open
task's deadline, and is audited.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow import TaskState as SpiffState
from SpiffWorkflow.bpmn.util.diff import diff_workflow, migrate_workflow
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from engine import clock, forms, services, workflow
from engine.models import (
    Dossier,
    Procedure,
    ProcessDraft,
    ProcessModelVersion,
    Task,
    WorkflowState,
)
from engine.services import Actor, ForbiddenError, InvalidDataError, NotFoundError, ServiceError
from engine.validation import NS, OperationInfo, Problem, validate_bpmn

DESIGNER_ROLES = frozenset({"designer", "admin"})
# A draft is a whole BPMN document with its forms; this bounds what one save may store.
MAX_DRAFT_BYTES = 2 * 1024 * 1024
# Spiff task states a case is "at": its current tasks (a person's, a worker's, an awaited event).
CURRENT = SpiffState.READY | SpiffState.STARTED | SpiffState.WAITING


class MigrationRefusedError(ServiceError):
    """The move would harm the case; ``reasons`` say why."""

    http_status = 409
    code = "migration_refused"

    def __init__(self, message: str, reasons: list[str]):
        super().__init__(message, fields={"migration": reasons})
        self.reasons = reasons


READER_ROLES = DESIGNER_ROLES | {"auditor"}


def require_designer(actor: Actor) -> None:
    if not actor.roles & DESIGNER_ROLES:
        raise ForbiddenError("process designers only")


def procedure_of(session: Session, code: str) -> Procedure:
    procedure = session.scalar(select(Procedure).where(Procedure.code == code))
    if procedure is None:
        raise NotFoundError(f"procedure {code} not found", fields={"code": ["unknown procedure"]})
    return procedure


def version_of(session: Session, procedure: Procedure, number: int) -> ProcessModelVersion:
    version = session.scalar(select(ProcessModelVersion).where(
        ProcessModelVersion.procedure_id == procedure.id, ProcessModelVersion.version == number))
    if version is None:
        raise NotFoundError(f"{procedure.code} has no version {number}", fields={"version": ["unknown version"]})
    return version


# --- opening, saving, validating --------------------------------------------------------------


@dataclass
class Model:
    """What the designer edits: the procedure's BPMN, lane roles and task forms."""

    procedure: Procedure
    xml: str
    lane_roles: dict[str, str]
    task_forms: dict[str, Any]
    version: int  # the deployed version the model is (or the draft started from)
    draft: ProcessDraft | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)


def open_model(session: Session, code: str, *, actor: Actor) -> Model:
    """The procedure's draft when there is one, else its current deployed version."""
    require_designer(actor)
    procedure = procedure_of(session, code)
    current = services.current_version(session, procedure)
    draft = session.get(ProcessDraft, procedure.id)
    if draft is not None:
        return Model(procedure, draft.bpmn_xml, dict(draft.lane_roles), dict(draft.task_forms),
                     draft.base_version or current.version, draft, list(draft.problems))
    return Model(procedure, current.spec.bpmn_xml, dict(current.lane_roles), services.version_task_forms(current),
                 current.version)


def check(session: Session, procedure: Procedure, bpmn_xml: str, lane_roles: Mapping[str, str],
          task_forms: Mapping[str, Any], *, operations: Mapping[str, OperationInfo] | None) -> list[Problem]:
    """Every rule a model must pass before deployment (engine.validation), in the procedure's
    lifecycle, with its lane roles and task forms; the forms' own schemas are checked too."""
    library = services.current_version(session, procedure).spec.library
    problems = []
    for name, schema in sorted(task_forms.items()):
        try:
            forms.check_schema(schema)
        except forms.FormSchemaError as exc:
            problems.append(Problem(None, None, f"task form {name!r}: {exc}", "form"))
    roles = {**services.DEFAULT_LANE_ROLES, **lane_roles}
    problems.extend(validate_bpmn(bpmn_xml, filename=f"{procedure.code}.bpmn", library=library, lane_roles=roles,
                                  task_forms=task_forms, operations=operations))
    return problems


def _check_payload(bpmn_xml: Any, lane_roles: Any, task_forms: Any) -> None:
    fields: dict[str, list[str]] = {}
    if not isinstance(bpmn_xml, str) or not bpmn_xml.strip():
        fields["xml"] = ["the BPMN document is missing"]
    elif len(bpmn_xml.encode("utf-8")) > MAX_DRAFT_BYTES:
        fields["xml"] = [f"the BPMN document is larger than {MAX_DRAFT_BYTES // (1024 * 1024)} MB"]
    valid_roles = {r for r in services.DEFAULT_LANE_ROLES.values()}
    if not isinstance(lane_roles, dict) or not all(isinstance(k, str) and v in valid_roles
                                                   for k, v in lane_roles.items()):
        fields["lane_roles"] = [f"a mapping of lane name to one of {', '.join(sorted(valid_roles))}"]
    if not isinstance(task_forms, dict) or not all(isinstance(k, str) and k and isinstance(v, dict)
                                                   for k, v in task_forms.items()):
        fields["task_forms"] = ["a mapping of form key to a JSON Schema object"]
    if fields:
        raise InvalidDataError("the draft is malformed", fields=fields)


def save_draft(session: Session, code: str, *, actor: Actor, bpmn_xml: Any, lane_roles: Any, task_forms: Any,
               operations: Mapping[str, OperationInfo] | None) -> ProcessDraft:
    """Store the designer's work (even with problems: it is a draft) with the problems found."""
    require_designer(actor)
    _check_payload(bpmn_xml, lane_roles, task_forms)
    procedure = procedure_of(session, code)
    problems = check(session, procedure, bpmn_xml, lane_roles, task_forms, operations=operations)
    draft = session.get(ProcessDraft, procedure.id)
    if draft is None:
        base = services.current_version(session, procedure).version
        draft = ProcessDraft(procedure_id=procedure.id, base_version=base)
        session.add(draft)
    draft.bpmn_xml = bpmn_xml
    draft.lane_roles = dict(lane_roles)
    draft.task_forms = dict(task_forms)
    draft.problems = [p.as_dict() for p in problems]
    draft.updated_by_id = actor.user_id
    draft.updated_at = clock.now()
    session.flush()
    return draft


def discard_draft(session: Session, code: str, *, actor: Actor) -> None:
    require_designer(actor)
    procedure = procedure_of(session, code)
    draft = session.get(ProcessDraft, procedure.id)
    if draft is not None:
        session.delete(draft)
        services.record_event(session, action="process_draft_discarded", actor=actor.name, actor_id=actor.user_id,
                              data={"procedure": code})


def deploy_draft(session: Session, code: str, *, actor: Actor, comment: str = "",
                 operations: Mapping[str, OperationInfo] | None) -> ProcessModelVersion:
    """The saved draft as the procedure's new version (checked again); new cases start on it."""
    require_designer(actor)
    procedure = procedure_of(session, code)
    draft = session.get(ProcessDraft, procedure.id)
    if draft is None:
        raise InvalidDataError("there is no draft to deploy", fields={"draft": ["save a draft first"]})
    problems = check(session, procedure, draft.bpmn_xml, draft.lane_roles, draft.task_forms, operations=operations)
    if problems:
        draft.problems = [p.as_dict() for p in problems]
        raise InvalidDataError(f"the draft has {len(problems)} problem(s); fix them before deploying",
                               fields={"problems": [p.message for p in problems]})
    version = _deploy(session, procedure, draft.bpmn_xml, lane_roles=draft.lane_roles, task_forms=draft.task_forms,
                      actor=actor, comment=comment.strip()[:500] or f"designed from version {draft.base_version}")
    session.delete(draft)
    return version


def deploy_model(session: Session, code: str, bpmn_xml: Any, *, actor: Actor, comment: str = "",
                 operations: Mapping[str, OperationInfo] | None) -> ProcessModelVersion:
    """A BPMN document deployed directly (API ``POST /process-models/{procedure}``) with the current
    version's lane roles and task forms; refused with every problem, nothing deployed, when invalid."""
    require_designer(actor)
    procedure = procedure_of(session, code)
    current = services.current_version(session, procedure)
    forms_ = services.version_task_forms(current)
    _check_payload(bpmn_xml, current.lane_roles, forms_)
    problems = check(session, procedure, bpmn_xml, current.lane_roles, forms_, operations=operations)
    if problems:
        raise InvalidDataError(f"the model has {len(problems)} problem(s); nothing was deployed",
                               fields={"bpmn": [p.as_dict() for p in problems]})
    return _deploy(session, procedure, bpmn_xml, lane_roles=current.lane_roles, task_forms=forms_,
                   actor=actor, comment=comment.strip()[:500] or "deployed through the API")


def _deploy(session: Session, procedure: Procedure, bpmn_xml: str, *, lane_roles: Mapping[str, str],
            task_forms: Mapping[str, Any], actor: Actor, comment: str,
            redeploys_version: int | None = None) -> ProcessModelVersion:
    library = services.current_version(session, procedure).spec.library
    version = services.deploy_process_model(session, procedure, bpmn_xml, actor=actor, library=library,
                                            lane_roles=lane_roles, comment=comment, task_forms=task_forms,
                                            redeploys_version=redeploys_version)
    # The catalogue shows the forms of the version new cases start on.
    procedure.catalogue = {**procedure.catalogue, "task_forms": dict(task_forms)}
    flag_modified(procedure, "catalogue")
    return version


def redeploy(session: Session, code: str, number: int, *, actor: Actor, comment: str = "") -> ProcessModelVersion:
    """Roll back: deploy an older version's model, lanes and forms again as the newest version."""
    require_designer(actor)
    procedure = procedure_of(session, code)
    old = version_of(session, procedure, number)
    current = services.current_version(session, procedure)
    if old.id == current.id:
        raise InvalidDataError(f"version {number} is already the current version",
                               fields={"version": ["already current"]})
    return _deploy(session, procedure, old.spec.bpmn_xml, lane_roles=old.lane_roles,
                   task_forms=services.version_task_forms(old), actor=actor,
                   comment=comment.strip()[:500] or f"roll back to version {number}", redeploys_version=number)


# --- history and differences ------------------------------------------------------------------


def versions(session: Session, code: str, *, actor: Actor) -> list[dict[str, Any]]:
    """Every deployed version, newest first, with who deployed it, when, and its running cases
    (designers, and auditors who read the history)."""
    if not actor.roles & READER_ROLES:
        raise ForbiddenError("process designers and auditors only")
    procedure = procedure_of(session, code)
    running = dict(session.execute(
        select(Dossier.model_version_id, func.count()).where(Dossier.procedure_id == procedure.id,
                                                             Dossier.finished_at.is_(None))
        .group_by(Dossier.model_version_id)).all())
    rows = session.scalars(select(ProcessModelVersion).where(ProcessModelVersion.procedure_id == procedure.id)
                           .order_by(ProcessModelVersion.version.desc())).all()
    return [{"version": v.version, "deployed_at": v.deployed_at, "comment": v.comment,
             "deployed_by": v.deployed_by.full_name if v.deployed_by else "system",
             "hash": v.content_hash[:12], "running": int(running.get(v.id, 0)),
             "redeploys_version": v.redeploys_version, "current": i == 0} for i, v in enumerate(rows)]


# Not compared: layout, the pool the designer draws around lanes, and children reported with their element.
_SKIP = {"BPMNDiagram", "definitions", "collaboration", "participant", "incoming", "outgoing", "flowNodeRef",
         "laneSet", "extensionElements", "properties", "property", "parameters", "parameter",
         "serviceTaskOperator", "script", "conditionExpression", "documentation", "messageEventDefinition",
         "timerEventDefinition", "timeDate", "timeDuration", "timeCycle"}


def _elements(xml: str) -> dict[str, dict[str, Any]]:
    """Each identified BPMN element (diagram layout left out) with what the engine reads of it."""
    try:
        root = etree.fromstring(xml.encode("utf-8"))  # noqa: S320 - no DTD/entity resolution in lxml
    except etree.XMLSyntaxError:
        return {}
    found: dict[str, dict[str, Any]] = {}
    lanes = {(ref.text or "").strip(): lane.get("name") or lane.get("id")
             for lane in root.iterfind(".//bpmn:lane", NS) for ref in lane.iterfind("bpmn:flowNodeRef", NS)}
    for node in root.iter():
        if not isinstance(node.tag, str) or not node.get("id"):
            continue
        kind = etree.QName(node).localname
        if kind in _SKIP or etree.QName(node).namespace != NS["bpmn"]:
            continue
        facts: dict[str, Any] = {k: v for k, v in sorted(node.attrib.items()) if k not in ("id", "name")}
        props = {p.get("name"): p.get("value")
                 for p in node.iterfind("bpmn:extensionElements//spiffworkflow:property", NS)}
        if props:
            facts["properties"] = props
        operator = node.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", NS)
        if operator is not None:
            facts["operation"] = operator.get("id")
            facts["parameters"] = {p.get("id"): p.get("value")
                                   for p in operator.iterfind(".//spiffworkflow:parameter", NS)}
        for tag in ("script", "conditionExpression"):
            child = node.find(f"bpmn:{tag}", NS)
            if child is not None:
                facts[tag] = (child.text or "").strip()
        for tag in ("timeDate", "timeDuration", "timeCycle"):
            child = node.find(f".//bpmn:{tag}", NS)
            if child is not None:
                facts["timer"] = (child.text or "").strip()
        definition = node.find("bpmn:messageEventDefinition", NS)
        if definition is not None:
            facts["message"] = definition.get("messageRef")
        if node.get("id") in lanes:
            facts["lane"] = lanes[node.get("id")]
        found[node.get("id")] = {"type": kind, "name": node.get("name") or "", "facts": facts}
    return found


def model_diff(old_xml: str, new_xml: str) -> list[dict[str, Any]]:
    """Elements added, removed or changed between two models, by element id (layout ignored)."""
    old, new = _elements(old_xml), _elements(new_xml)
    changes = []
    for element_id in sorted(old.keys() | new.keys()):
        before, after = old.get(element_id), new.get(element_id)
        if before is None and after is not None:
            changes.append({"element": element_id, "type": after["type"], "name": after["name"], "change": "added",
                            "details": [f"{k}: {_show(v)}" for k, v in after["facts"].items()]})
        elif after is None and before is not None:
            changes.append({"element": element_id, "type": before["type"], "name": before["name"],
                            "change": "removed", "details": []})
        elif before is not None and after is not None and before != after:
            details = [f"type: {before['type']} → {after['type']}"] if before["type"] != after["type"] else []
            if before["name"] != after["name"]:
                details.append(f"name: {before['name']!r} → {after['name']!r}")
            for key in sorted(before["facts"].keys() | after["facts"].keys()):
                if before["facts"].get(key) != after["facts"].get(key):
                    details.append(f"{key}: {_show(before['facts'].get(key))} → {_show(after['facts'].get(key))}")
            changes.append({"element": element_id, "type": after["type"], "name": after["name"], "change": "changed",
                            "details": details})
    return changes


def _show(value: Any) -> str:
    return "—" if value is None else (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))


def draft_diff(session: Session, code: str, *, actor: Actor) -> list[dict[str, Any]]:
    """The draft against the deployed version (empty when there is no draft)."""
    require_designer(actor)
    procedure = procedure_of(session, code)
    draft = session.get(ProcessDraft, procedure.id)
    if draft is None:
        return []
    current = services.current_version(session, procedure)
    changes = model_diff(current.spec.bpmn_xml, draft.bpmn_xml)
    old_roles, new_roles = dict(current.lane_roles), dict(draft.lane_roles)
    for lane in sorted(set(old_roles) | set(new_roles)):
        if old_roles.get(lane) != new_roles.get(lane) and new_roles.get(lane) is not None:
            changes.append({"element": lane, "type": "lane role", "name": lane, "change": "changed",
                            "details": [f"role: {old_roles.get(lane) or '—'} → {new_roles.get(lane)}"]})
    old_forms = services.version_task_forms(current)
    for name in sorted(set(old_forms) | set(draft.task_forms)):
        before, after = old_forms.get(name), draft.task_forms.get(name)
        if before != after:
            change = "added" if before is None else "removed" if after is None else "changed"
            changes.append({"element": name, "type": "task form", "name": name, "change": change, "details": []})
    return changes


# --- migration of running cases ---------------------------------------------------------------


def _migration_reasons(wf: Any, top: Any, subs: Mapping[Any, Any], new_deps: Mapping[str, Any]) -> list[str]:
    """Why moving this case would harm it; empty when the move is safe."""
    reasons: list[str] = []

    def missing(task: Any, where: str, match: Any = None) -> None:
        kind = "completed" if task.state == SpiffState.COMPLETED else "current"
        label = task.task_spec.bpmn_name or task.task_spec.name
        closest = f" (the closest element there is {match.name})" if match is not None else ""
        reasons.append(f"{where}: {kind} step {task.task_spec.name} ({label}) is not in the new version{closest}")

    def judge(diff: Any, where: str) -> None:
        for task in diff.removed:
            if task.state & (CURRENT | SpiffState.COMPLETED):
                missing(task, where)
        for task, new_spec in diff.alignment.items():
            if new_spec is None or not task.state & (CURRENT | SpiffState.COMPLETED):
                continue
            if new_spec.name != task.task_spec.name:  # Spiff matched it by position, not by id
                missing(task, where, new_spec)
            elif task.state & CURRENT and type(new_spec).__name__ != type(task.task_spec).__name__:
                reasons.append(f"{where}: current step {task.task_spec.name} changes kind "
                               f"({type(task.task_spec).__name__} → {type(new_spec).__name__})")

    judge(top, "process")
    for sp_id, diff in subs.items():
        sub = wf.subprocesses[sp_id]
        if sub.is_completed():
            continue
        if diff is None:
            reasons.append(f"subprocess {sub.spec.name}: not in the new version")
        else:
            judge(diff, sub.spec.name)
    return reasons


@dataclass
class _Plan:
    """A running case loaded and compared with a target version: what a move would do."""

    wf: Any
    new_spec: Any
    new_deps: dict[str, Any]
    top: Any
    subs: Mapping[Any, Any]
    reasons: list[str]


def _plan(session: Session, dossier: Dossier, target: ProcessModelVersion) -> _Plan | list[str]:
    """The case compared with ``target``, or the reasons it cannot be (finished, other procedure …)."""
    if dossier.finished_at is not None:
        return ["the case is finished"]
    if target.procedure_id != dossier.procedure_id:
        return ["the version belongs to another procedure"]
    if target.id == dossier.model_version_id:
        return ["the case is already on this version"]
    wf = services.load_workflow(session, dossier)
    new_spec, new_deps = services.specs_of(session, target.content_hash)
    top, subs = diff_workflow(workflow.SERIALIZER.registry, wf, new_spec, new_deps)
    reasons = _migration_reasons(wf, top, subs, new_deps)
    # Steps people or workers completed, also those history compaction dropped from the workflow.
    names = {name for spec in (new_spec, *new_deps.values()) for name in spec.task_specs}
    done = session.execute(select(Task.spec_name, Task.name).where(
        Task.dossier_id == dossier.id, Task.state == "completed").distinct()).all()
    for spec_name, label in sorted(done):
        reason = f"completed step {spec_name} ({label}) is not in the new version"
        if spec_name not in names and not any(reason in r for r in reasons):
            reasons.append(f"history: {reason}")
    return _Plan(wf, new_spec, new_deps, top, subs, reasons)


def migration_check(session: Session, dossier: Dossier, target: ProcessModelVersion) -> list[str]:
    """Reasons the case cannot move to ``target`` (empty: it can)."""
    plan = _plan(session, dossier, target)
    return plan.reasons if isinstance(plan, _Plan) else plan


def migrate_case(session: Session, code: str, *, to_version: int, actor: Actor) -> dict[str, Any]:
    """Move a running case to another version of its procedure when that is safe.

    Spiff's migration resets the tasks the case waits at (their timers are computed again); the
    due moments are put back, to the second, and every open task keeps its id, deadline and
    assignee.
    """
    require_designer(actor)
    dossier = services.lock_dossier(session, services.get_dossier(session, code).id)
    target = version_of(session, dossier.procedure, to_version)
    source = session.get(ProcessModelVersion, dossier.model_version_id)
    assert source is not None
    plan = _plan(session, dossier, target)
    reasons = plan.reasons if isinstance(plan, _Plan) else plan
    if reasons or not isinstance(plan, _Plan):
        raise MigrationRefusedError(f"{code} cannot move to version {to_version}: {reasons[0]}", reasons)
    wf = plan.wf
    timers = {task_id: due for task_id, _name, due in workflow.waiting_timers(wf)}
    migrate_workflow(plan.top, wf, plan.new_spec)
    for sp_id, diff in plan.subs.items():
        sub = wf.subprocesses[sp_id]
        if diff is not None:
            migrate_workflow(diff, sub, plan.new_deps[sub.spec.name])
    wf.subprocess_specs = plan.new_deps
    wf.do_engine_steps()
    kept = _restore_timers(wf, timers)
    lost = sorted(set(timers) - set(kept))
    if lost:  # a timer the new version no longer waits at: the check above lets none through
        raise ServiceError(f"{code}: timers {', '.join(lost)} were lost in the migration")
    dossier.model_version_id = target.id
    state = session.get(WorkflowState, dossier.id)
    assert state is not None
    state.content_hash = target.content_hash
    services.record_event(session, action="case_migrated", actor=actor.name, actor_id=actor.user_id,
                          dossier_id=dossier.id, dossier_code=dossier.code,
                          data={"from_version": source.version, "to_version": target.version,
                                "timers_kept": {k: v.isoformat() for k, v in sorted(kept.items())}})
    services.save_migrated_case(session, dossier, wf, actor=actor)
    open_tasks = session.scalars(select(Task).where(Task.dossier_id == dossier.id,
                                                    Task.state.in_(("ready", "started")))).all()
    return {"dossier": dossier.code, "from_version": source.version, "to_version": target.version,
            "timers_kept": len(kept), "open_tasks": len(open_tasks)}


def _restore_timers(wf: Any, timers: Mapping[str, Any]) -> dict[str, Any]:
    """Put back the due moment of every timer the case waited at before the migration."""
    kept = {}
    for task_id, _name, _due in workflow.waiting_timers(wf):
        spiff_task = workflow.find_task(wf, task_id)
        if task_id in timers and spiff_task is not None:
            spiff_task._set_internal_data(event_value=timers[task_id].isoformat())
            kept[task_id] = timers[task_id]
    return kept


def migration_candidates(session: Session, code: str, *, from_version: int, to_version: int,
                         actor: Actor, limit: int = 200) -> list[dict[str, Any]]:
    """The running cases on ``from_version`` and whether each may move to ``to_version``."""
    require_designer(actor)
    procedure = procedure_of(session, code)
    source, target = version_of(session, procedure, from_version), version_of(session, procedure, to_version)
    dossiers = session.scalars(select(Dossier).where(Dossier.model_version_id == source.id,
                                                     Dossier.finished_at.is_(None))
                               .order_by(Dossier.received_at).limit(limit)).all()
    result = []
    for dossier in dossiers:
        reasons = migration_check(session, dossier, target)
        result.append({"code": dossier.code, "status": dossier.status, "safe": not reasons, "reasons": reasons})
    return result
