"""The process designer's engine side on birth registration: drafts checked on every save, new
versions for new cases only, roll-back, and migration of running cases (safe ones keep every
deadline to the second; unsafe ones are refused with the reason and nothing changes)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors import build_registry
from engine import designer, diagram, services
from engine.calendar import VN_TZ, to_vn
from engine.config import Settings
from engine.models import AuditEvent, ProcessModelVersion, Role, Task, Timer
from tests.factories import create_user
from tests.procedures.harness import CaseDriver
from tests.procedures.test_birth_registration import APPRAISE, APPROVE, FORM, THURSDAY

CODE = "birth_registration"
ROOT_DIR = Path(__file__).resolve().parents[2]
NEW_TASK = "check_register"
NEW_FORM = {"title": "Kiểm tra sổ hộ tịch", "type": "object", "required": ["decision"],
            "properties": {"decision": {"type": "string", "enum": ["propose_approve", "propose_refuse"]}}}
HAND_BACK = {"decision": "delivered", "fee_collected": 0, "receiver_name": "Phạm Thị Dung"}


@pytest.fixture
def case(session):
    return CaseDriver(session, CODE)


@pytest.fixture
def operations(session):
    return build_registry(Settings(env="test"), lambda: session).describe()


@pytest.fixture
def designer_actor(case):
    return services.Actor.of(create_user(case.session, None, Role.DESIGNER.value))


def _with_new_task(xml: str, *, deadline: str | None) -> str:
    """Birth registration with a user task in the justice lane between appraisal and the gateway."""
    deadline_prop = f'<spiffworkflow:property name="deadline" value="{deadline}"/>' if deadline else ""
    task = (f'<bpmn:userTask id="{NEW_TASK}" name="Kiểm tra sổ đăng ký hộ tịch">\n'
            '      <bpmn:extensionElements><spiffworkflow:properties>\n'
            f'        <spiffworkflow:property name="form" value="{NEW_TASK}"/>{deadline_prop}\n'
            '      </spiffworkflow:properties></bpmn:extensionElements>\n'
            '    </bpmn:userTask>\n'
            f'    <bpmn:sequenceFlow id="bf_checked" sourceRef="{NEW_TASK}" targetRef="late_gw"/>\n')
    old = '<bpmn:sequenceFlow id="bf_appraised" sourceRef="appraise" targetRef="late_gw"/>'
    assert old in xml
    xml = xml.replace(old, f'<bpmn:sequenceFlow id="bf_appraised" sourceRef="appraise" targetRef="{NEW_TASK}"/>\n'
                      f'    {task}')
    return xml.replace("<bpmn:flowNodeRef>late_gw</bpmn:flowNodeRef>",
                       f"<bpmn:flowNodeRef>{NEW_TASK}</bpmn:flowNodeRef>\n"
                       "        <bpmn:flowNodeRef>late_gw</bpmn:flowNodeRef>")


def _deploy_new_task(case: CaseDriver, actor: services.Actor, operations, *, deadline: str = "working_days:1"):
    designer.discard_draft(case.session, CODE, actor=actor)  # start again from the deployed version
    model = designer.open_model(case.session, CODE, actor=actor)
    forms = {**model.task_forms, NEW_TASK: NEW_FORM}
    draft = designer.save_draft(case.session, CODE, actor=actor, bpmn_xml=_with_new_task(model.xml, deadline=deadline),
                                lane_roles=model.lane_roles, task_forms=forms, operations=operations)
    assert draft.problems == []
    return designer.deploy_draft(case.session, CODE, actor=actor, comment="thêm bước kiểm tra sổ",
                                 operations=operations)


def _at_appraisal(case: CaseDriver, at: datetime = THURSDAY):
    dossier = case.submit(form=FORM, at=at)
    case.complete("receive", decision="accept")
    assert case.open_steps() == ["appraise"]
    return dossier


def test_a_draft_is_checked_on_save_and_deployed_for_new_cases_only(case, designer_actor, operations):
    old = _at_appraisal(case)
    model = designer.open_model(case.session, CODE, actor=designer_actor)
    assert model.version == 1
    forms = {**model.task_forms, NEW_TASK: NEW_FORM}

    draft = designer.save_draft(case.session, CODE, actor=designer_actor,
                                bpmn_xml=_with_new_task(model.xml, deadline=None), lane_roles=model.lane_roles,
                                task_forms=forms, operations=operations)
    problem = next(p for p in draft.problems if p["element"] == NEW_TASK)
    assert problem["rule"] == "deadline"
    assert problem["message"] == f"{NEW_TASK}: user task has no deadline (property 'deadline')"
    assert f'id="{NEW_TASK}"' in draft.bpmn_xml.splitlines()[problem["line"] - 1]
    with pytest.raises(services.InvalidDataError, match="problem"):
        designer.deploy_draft(case.session, CODE, actor=designer_actor, operations=operations)
    assert services.current_version(case.session, case.procedure).version == 1
    changes = designer.draft_diff(case.session, CODE, actor=designer_actor)
    added = next(c for c in changes if c["element"] == NEW_TASK)
    assert (added["change"], added["type"]) == ("added", "userTask")
    assert any(c["element"] == "bf_appraised" and c["change"] == "changed" for c in changes)

    version = _deploy_new_task(case, designer_actor, operations)
    assert version.version == 2
    assert version.task_forms[NEW_TASK] == NEW_FORM
    assert case.procedure.catalogue["task_forms"][NEW_TASK] == NEW_FORM

    # The running case stays on version 1 and finishes there, never meeting the new step.
    case.complete("appraise", **APPRAISE)
    assert case.open_steps() == ["approve"]
    case.complete("approve", **APPROVE)
    case.complete("hand_back", **HAND_BACK)
    assert case.finished
    assert old.model_version.version == 1

    # A new case starts on version 2 and meets it, in the justice lane, with its one-day deadline.
    new = CaseDriver(case.session, CODE, unit=case.unit)
    new.users = case.users
    dossier = _at_appraisal(new)
    assert dossier.model_version.version == 2
    new.complete("appraise", **APPRAISE)
    task = new.task(NEW_TASK)
    assert (task.role, task.form_key) == ("justice", NEW_TASK)
    with pytest.raises(services.InvalidDataError):  # checked against the new version's form
        new.complete(NEW_TASK, decision="maybe")
    new.complete(NEW_TASK, decision="propose_approve")
    assert new.open_steps() == ["approve"]

    history = designer.versions(case.session, CODE, actor=designer_actor)
    assert [(v["version"], v["current"], v["comment"]) for v in history][:2] == [
        (2, True, "thêm bước kiểm tra sổ"), (1, False, history[1]["comment"])]
    case.session.commit()  # audit events are written on commit
    deployed = case.session.scalars(select(AuditEvent).where(AuditEvent.action == "process_model_deployed")).all()
    assert any(e.data.get("version") == 2 and e.actor == designer_actor.name for e in deployed)


def test_roll_back_deploys_the_older_model_again(case, designer_actor, operations):
    _deploy_new_task(case, designer_actor, operations)
    again = designer.redeploy(case.session, CODE, 1, actor=designer_actor)
    first = case.session.scalar(select(ProcessModelVersion).where(
        ProcessModelVersion.procedure_id == case.procedure.id, ProcessModelVersion.version == 1))
    assert (again.version, again.redeploys_version, again.content_hash) == (3, 1, first.content_hash)
    assert NEW_TASK not in case.procedure.catalogue["task_forms"]
    dossier = _at_appraisal(case)
    assert dossier.model_version.version == 3
    case.complete("appraise", **APPRAISE)
    assert case.open_steps() == ["approve"]
    with pytest.raises(services.InvalidDataError, match="already the current"):
        designer.redeploy(case.session, CODE, 3, actor=designer_actor)


def _timers(case: CaseDriver) -> dict[str, datetime]:
    return {t.id: t.run_at for t in case.session.scalars(select(Timer).where(Timer.dossier_id == case.dossier.id))}


def test_a_safe_migration_keeps_every_deadline_to_the_second(case, designer_actor, operations):
    _at_appraisal(case)
    # The apology moved the appointment: the case's timers now differ from what its earlier steps
    # computed, so a migration that recomputed them would move them back.
    services.request_apology(case.session, case.dossier.code, actor=services.SYSTEM_ACTOR,
                             reason="Chờ tra cứu cơ sở dữ liệu hộ tịch")
    cal = services.calendar_for(case.session)
    new_day = cal.add_working_days(to_vn(case.dossier.due_at).date(), 2)
    case.complete("sign_apology", decision="approve", new_due_date=new_day.isoformat(), reason="Chờ tra cứu")
    moved_due = datetime.combine(new_day, cal.afternoon[1], VN_TZ)
    assert case.dossier.due_at == moved_due
    timers_before = _timers(case)
    assert moved_due in timers_before.values()
    appraise = case.task("appraise")
    task_before = (appraise.id, appraise.due_at)
    v2 = _deploy_new_task(case, designer_actor, operations)

    assert designer.migration_check(case.session, case.dossier, v2) == []
    summary = designer.migrate_case(case.session, case.dossier.code, to_version=2, actor=designer_actor)
    assert summary["timers_kept"] == len(timers_before) > 0

    assert _timers(case) == timers_before  # same timers, same due moments, to the second
    appraise = case.task("appraise")
    assert (appraise.id, appraise.due_at) == task_before
    assert case.dossier.model_version.version == 2
    assert case.dossier.due_at == moved_due
    case.session.commit()  # audit events are written on commit
    event = case.session.scalar(select(AuditEvent).where(AuditEvent.action == "case_migrated"))
    assert (event.dossier_id, event.data["from_version"], event.data["to_version"]) == (case.dossier.id, 1, 2)
    # The case now follows version 2.
    case.complete("appraise", **APPRAISE)
    assert case.open_steps() == [NEW_TASK]


def test_an_unsafe_migration_is_refused_with_the_reason_and_changes_nothing(case, designer_actor, operations):
    _at_appraisal(case)
    model = designer.open_model(case.session, CODE, actor=designer_actor)
    # Version 2 renames the appraisal step the case is at: its current task no longer exists.
    renamed = model.xml.replace('id="appraise"', 'id="appraise_v2"').replace(
        'targetRef="appraise"', 'targetRef="appraise_v2"').replace('sourceRef="appraise"', 'sourceRef="appraise_v2"')
    renamed = renamed.replace("<bpmn:flowNodeRef>appraise</bpmn:flowNodeRef>",
                              "<bpmn:flowNodeRef>appraise_v2</bpmn:flowNodeRef>")
    designer.save_draft(case.session, CODE, actor=designer_actor, bpmn_xml=renamed, lane_roles=model.lane_roles,
                        task_forms=model.task_forms, operations=operations)
    designer.deploy_draft(case.session, CODE, actor=designer_actor, operations=operations)
    before = (case.dossier.model_version_id, _timers(case), case.task("appraise").id)

    with pytest.raises(designer.MigrationRefusedError) as refused:
        designer.migrate_case(case.session, case.dossier.code, to_version=2, actor=designer_actor)
    assert any("current step appraise" in reason for reason in refused.value.reasons)
    assert (case.dossier.model_version_id, _timers(case), case.task("appraise").id) == before
    candidates = designer.migration_candidates(case.session, CODE, from_version=1, to_version=2, actor=designer_actor)
    assert [(c["code"], c["safe"]) for c in candidates] == [(case.dossier.code, False)]


def test_a_completed_step_removed_makes_the_migration_unsafe(case, designer_actor, operations):
    _at_appraisal(case)
    case.complete("appraise", **APPRAISE)
    model = designer.open_model(case.session, CODE, actor=designer_actor)
    # Version 2 drops the late-registration branch… and the appraisal the case already completed.
    xml = _with_new_task(model.xml, deadline="same_day").replace('id="appraise"', 'id="appraise_new"').replace(
        'sourceRef="appraise"', 'sourceRef="appraise_new"').replace('targetRef="appraise"', 'targetRef="appraise_new"')
    xml = xml.replace("<bpmn:flowNodeRef>appraise</bpmn:flowNodeRef>",
                      "<bpmn:flowNodeRef>appraise_new</bpmn:flowNodeRef>")
    designer.save_draft(case.session, CODE, actor=designer_actor, bpmn_xml=xml, lane_roles=model.lane_roles,
                        task_forms={**model.task_forms, NEW_TASK: NEW_FORM}, operations=operations)
    v2 = designer.deploy_draft(case.session, CODE, actor=designer_actor, operations=operations)
    reasons = designer.migration_check(case.session, case.dossier, v2)
    assert any("completed step appraise" in reason for reason in reasons), reasons


def test_only_designers_design(case, operations):
    officer = case.officer("justice")
    with pytest.raises(services.ForbiddenError):
        designer.open_model(case.session, CODE, actor=officer)
    with pytest.raises(services.ForbiddenError):
        designer.migrate_case(case.session, "X", to_version=2, actor=officer)


@pytest.mark.parametrize(("payload", "field"), [
    ({"bpmn_xml": "", "lane_roles": {}, "task_forms": {}}, "xml"),
    ({"bpmn_xml": "<x/>", "lane_roles": {"Tư pháp – Hộ tịch": "king"}, "task_forms": {}}, "lane_roles"),
    ({"bpmn_xml": "<x/>", "lane_roles": {}, "task_forms": {"appraise": "not a schema"}}, "task_forms"),
])
def test_a_malformed_draft_is_refused_by_field_and_nothing_is_stored(case, designer_actor, operations, payload,
                                                                     field):
    with pytest.raises(services.InvalidDataError) as err:
        designer.save_draft(case.session, CODE, actor=designer_actor, operations=operations, **payload)
    assert field in err.value.fields
    assert designer.open_model(case.session, CODE, actor=designer_actor).draft is None


def test_open_tasks_keep_their_deadline_when_migrated(case, designer_actor, operations):
    """The open task's row (its id, deadline and assignee) survives the move."""
    _at_appraisal(case)
    task = case.task("appraise")
    services.claim_task(case.session, task.id, actor=case.officer("justice"))
    _deploy_new_task(case, designer_actor, operations)
    designer.migrate_case(case.session, case.dossier.code, to_version=2, actor=designer_actor)
    row = case.session.get(Task, task.id)
    assert (row.state, row.assignee_id, row.due_at) == ("ready", case.users["justice"].id, task.due_at)


def test_a_process_variable_overrides_the_task_deadline(case, designer_actor, operations):
    model = designer.open_model(case.session, CODE, actor=designer_actor)
    xml = _with_new_task(model.xml, deadline="working_days:1").replace(
        f'<spiffworkflow:property name="form" value="{NEW_TASK}"/>',
        f'<spiffworkflow:property name="form" value="{NEW_TASK}"/>'
        '<spiffworkflow:property name="deadline_variable" value="check_deadline"/>')
    # A script between appraisal and the new step chooses three working days instead of one.
    xml = xml.replace(f'<bpmn:sequenceFlow id="bf_appraised" sourceRef="appraise" targetRef="{NEW_TASK}"/>',
                      '<bpmn:sequenceFlow id="bf_appraised" sourceRef="appraise" targetRef="choose"/>\n'
                      '    <bpmn:scriptTask id="choose"><bpmn:script>check_deadline = "working_days:3"</bpmn:script>'
                      '</bpmn:scriptTask>\n'
                      f'    <bpmn:sequenceFlow id="bf_chosen" sourceRef="choose" targetRef="{NEW_TASK}"/>')
    xml = xml.replace("<bpmn:flowNodeRef>late_gw</bpmn:flowNodeRef>",
                      "<bpmn:flowNodeRef>choose</bpmn:flowNodeRef><bpmn:flowNodeRef>late_gw</bpmn:flowNodeRef>")
    draft = designer.save_draft(case.session, CODE, actor=designer_actor, bpmn_xml=xml, lane_roles=model.lane_roles,
                                task_forms={**model.task_forms, NEW_TASK: NEW_FORM}, operations=operations)
    assert draft.problems == []
    designer.deploy_draft(case.session, CODE, actor=designer_actor, operations=operations)
    _at_appraisal(case)  # Thursday 19/11 10:00, due the same day
    # A step's due moment is capped by the appointment: move it a week out (apology, Mẫu 04).
    services.request_apology(case.session, case.dossier.code, actor=services.SYSTEM_ACTOR,
                             reason="Chờ tra cứu cơ sở dữ liệu hộ tịch")
    cal = services.calendar_for(case.session)
    later = cal.add_working_days(to_vn(case.dossier.due_at).date(), 5)
    case.complete("sign_apology", decision="approve", new_due_date=later.isoformat(), reason="Chờ tra cứu")
    case.complete("appraise", **APPRAISE)
    task = case.task(NEW_TASK)
    three, one = (services.task_deadline(cal, spec, task.created_at) for spec in ("working_days:3", "working_days:1"))
    assert one < three < case.dossier.due_at
    assert task.due_at == three  # the variable's three working days, not the property's one


def test_the_diff_names_each_change_once_and_ignores_layout():
    old = (ROOT_DIR / "processes" / CODE / "process.bpmn").read_text(encoding="utf-8")
    new = diagram.for_designer(old).replace('name="Đăng ký quá hạn?"', 'name="Quá hạn?"')
    changes = designer.model_diff(old, new)
    assert changes == [{"element": "late_gw", "type": "exclusiveGateway", "name": "Quá hạn?", "change": "changed",
                        "details": ["name: 'Đăng ký quá hạn?' → 'Quá hạn?'"]}]
