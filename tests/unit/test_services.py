"""The case service on SQLite: submission, tasks, conflicts, clock pauses, timers, service calls."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from engine import clock, services, workflow
from engine.audit import pending_events
from engine.calendar import VN_TZ
from engine.models import (
    AuditEvent,
    ClockPause,
    Dossier,
    ServiceCall,
    Task,
    Timer,
    WorkflowState,
)
from tests.factories import (
    FIXTURES,
    complete,
    create_unit,
    create_user,
    install_bpmn,
    install_procedure,
    open_task,
    submit,
)

FRIDAY_10H = datetime(2026, 11, 13, 10, 0, tzinfo=VN_TZ)  # a working Friday


@pytest.fixture
def unit(session):
    install_procedure(session)
    return create_unit(session)


def test_submit_gives_code_due_date_and_first_task(session, unit):
    clock.freeze(FRIDAY_10H)
    dossier = submit(session, unit)
    assert re.fullmatch(re.escape(unit.agency_code) + r"-261113-0001", dossier.code)
    # 3 working days, day of receipt not counted: Mon 16, Tue 17, Wed 18 → Wed 17:00.
    assert dossier.due_at == datetime(2026, 11, 18, 17, 0, tzinfo=VN_TZ)
    assert dossier.status == "submitted"
    assert dossier.status_code == 1
    task = open_task(session, dossier.id, "receive")
    assert (task.role, task.kind, task.state, task.unit_id) == ("onestop", "user", "ready", unit.id)
    # the receive task has its own 4-working-hour deadline: 10:00 + 1.5 h morning + 2.5 h afternoon
    assert task.due_at == datetime(2026, 11, 13, 15, 30, tzinfo=VN_TZ)
    second = submit(session, unit)
    assert second.code.endswith("-261113-0002")
    actions = [e["action"] for e in pending_events(session)]
    assert actions.count("dossier_submitted") == 2


def test_bad_submission_is_refused_with_the_field(session, unit):
    with pytest.raises(services.InvalidDataError) as err:
        submit(session, unit, procedure="no_such_procedure")
    assert "procedure" in err.value.fields
    with pytest.raises(services.InvalidDataError) as err:
        submit(session, unit, applicant={"type": "individual"})
    assert "applicant.full_name" in err.value.fields
    assert session.scalar(select(func.count()).select_from(Dossier)) == 0


def test_happy_path_runs_to_the_end_with_status_codes(session, unit):
    clock.freeze(FRIDAY_10H)
    dossier = submit(session, unit)
    complete(session, dossier.id, "receive", {"decision": "accept"})
    assert dossier.status == "processing"
    assert dossier.status_code == 4
    complete(session, dossier.id, "appraise", {"decision": "propose_approve"})
    complete(session, dossier.id, "approve", {"decision": "approve"})
    call = session.scalars(select(ServiceCall).where(ServiceCall.dossier_id == dossier.id)).one()
    assert call.operation == "notify.status"
    assert call.params == {"template": "result_ready"}
    assert open_task(session, dossier.id, "notify_result").state == "started"
    assert services.take_service_call(session, call.id, lease=timedelta(seconds=30)) is not None
    assert services.finish_service_call(session, call.id, {"sent": True}) is True
    assert services.finish_service_call(session, call.id, {"sent": True}) is False  # idempotent
    complete(session, dossier.id, "hand_back", {"decision": "delivered"})
    assert dossier.status == "returned"
    assert dossier.status_code == 10
    assert dossier.finished_at is not None
    assert session.get(WorkflowState, dossier.id).completed
    # the terminate end cancelled the deadline watch: no timer left waiting
    assert session.scalar(select(func.count()).select_from(Timer).where(Timer.dossier_id == dossier.id)) == 0
    steps = session.scalars(select(Task.spec_name).where(Task.dossier_id == dossier.id).order_by(Task.created_at))
    assert list(steps) == ["receive", "appraise", "approve", "notify_result", "hand_back"]


def test_second_completion_is_a_conflict(session, unit):
    dossier = submit(session, unit)
    task = open_task(session, dossier.id, "receive")
    services.complete_task(session, task.id, actor=services.SYSTEM_ACTOR, data={"decision": "accept"})
    version = dossier.version
    with pytest.raises(services.ConflictError, match="already completed"):
        services.complete_task(session, task.id, actor=services.SYSTEM_ACTOR,
                               data={"decision": "refuse", "note": "Không thuộc thẩm quyền"})
    assert dossier.status == "processing"
    assert dossier.version == version


def test_claim_rules(session, unit):
    dossier = submit(session, unit)
    task = open_task(session, dossier.id, "receive")
    officer = services.Actor.of(create_user(session, unit, "onestop"))
    other = services.Actor.of(create_user(session, unit, "onestop"))
    justice = services.Actor.of(create_user(session, unit, "justice"))
    foreign = services.Actor.of(create_user(session, create_unit(session), "onestop"))
    with pytest.raises(services.ForbiddenError):
        services.claim_task(session, task.id, actor=justice)
    with pytest.raises(services.ForbiddenError):
        services.claim_task(session, task.id, actor=foreign)
    services.claim_task(session, task.id, actor=officer)
    assert task.assignee_id == officer.user_id
    with pytest.raises(services.ConflictError, match="claimed"):
        services.claim_task(session, task.id, actor=other)
    with pytest.raises(services.ConflictError, match="claimed"):
        services.complete_task(session, task.id, actor=other, data={"decision": "accept"})
    services.unclaim_task(session, task.id, actor=officer)
    services.claim_task(session, task.id, actor=other)
    services.complete_task(session, task.id, actor=other, data={"decision": "accept"})
    assert task.completed_by_id == other.user_id
    assert task.decision == "accept"


def test_form_validation_errors_change_nothing(session, unit):
    dossier = submit(session, unit)
    task = open_task(session, dossier.id, "receive")

    def validate(_task, data):
        return {} if data.get("decision") in ("accept", "supplement", "refuse") else {"decision": ["invalid"]}

    with pytest.raises(services.InvalidDataError) as err:
        services.complete_task(session, task.id, actor=services.SYSTEM_ACTOR, data={"decision": "x"},
                               validate=validate)
    assert err.value.fields == {"decision": ["invalid"]}
    assert task.state == "ready"
    assert dossier.status == "submitted"


def test_supplement_pauses_the_clock_and_restarts_the_full_time(session, unit):
    clock.freeze(FRIDAY_10H)
    dossier = submit(session, unit)
    timers = {t.name: t.run_at for t in session.scalars(select(Timer).where(Timer.dossier_id == dossier.id))}
    assert timers == {"Cảnh báo sắp hết hạn": datetime(2026, 11, 17, 17, 0, tzinfo=VN_TZ)}
    complete(session, dossier.id, "receive", {"decision": "supplement", "note": "Thiếu tờ khai"})
    assert dossier.status == "supplement_requested"
    assert dossier.status_code == 5
    assert dossier.clock_paused_at == FRIDAY_10H
    timer = session.scalars(select(Timer).where(Timer.dossier_id == dossier.id)).one()
    assert timer.run_at == services.PAUSED_UNTIL  # suspended while the clock is stopped
    # Nothing fires during the pause, even long after the original deadline.
    clock.freeze(datetime(2026, 11, 25, 9, 0, tzinfo=VN_TZ))
    assert services.fire_due_timers(session) == 0
    services.deliver_message(session, dossier.code, "supplement_received", {"files": 2},
                             actor=services.SYSTEM_ACTOR)
    pause = session.scalars(select(ClockPause).where(ClockPause.dossier_id == dossier.id)).one()
    assert pause.ended_at is not None
    assert dossier.clock_paused_at is None
    # Full 3 working days again from Wed 25/11 09:00: Thu 26, Fri 27, Mon 30 → Mon 30/11 17:00.
    assert dossier.due_at == datetime(2026, 11, 30, 17, 0, tzinfo=VN_TZ)
    timer = session.scalars(select(Timer).where(Timer.dossier_id == dossier.id)).one()
    assert timer.run_at == datetime(2026, 11, 27, 17, 0, tzinfo=VN_TZ)  # 1 working day before due
    assert open_task(session, dossier.id, "receive")  # back to the one-stop check


def test_message_not_awaited_is_a_conflict(session, unit):
    dossier = submit(session, unit)
    with pytest.raises(services.ConflictError, match="not waiting"):
        services.deliver_message(session, dossier.code, "supplement_received", {}, actor=services.SYSTEM_ACTOR)


def test_deadline_timers_warn_then_escalate(session, unit):
    clock.freeze(FRIDAY_10H)
    dossier = submit(session, unit)
    complete(session, dossier.id, "receive", {"decision": "accept"})
    clock.freeze(datetime(2026, 11, 17, 16, 59, tzinfo=VN_TZ))
    assert services.fire_due_timers(session) == 0
    clock.freeze(datetime(2026, 11, 17, 17, 1, tzinfo=VN_TZ))
    assert services.fire_due_timers(session) == 1
    warning = session.scalars(select(ServiceCall).where(ServiceCall.dossier_id == dossier.id)).one()
    assert warning.operation == "notify.deadline_warning"
    assert warning.params["due_at"] == "2026-11-18T17:00:00+07:00"
    services.take_service_call(session, warning.id, lease=timedelta(seconds=30))
    services.finish_service_call(session, warning.id, {"sent": True})
    timer = session.scalars(select(Timer).where(Timer.dossier_id == dossier.id)).one()
    assert timer.name == "Quá hạn"
    assert timer.run_at == datetime(2026, 11, 18, 17, 0, tzinfo=VN_TZ)
    clock.freeze(datetime(2026, 11, 18, 17, 0, 1, tzinfo=VN_TZ))
    assert services.fire_due_timers(session) == 1
    ops = session.scalars(select(ServiceCall.operation).where(ServiceCall.dossier_id == dossier.id)).all()
    assert sorted(ops) == ["notify.deadline_warning", "notify.overdue_escalation"]
    fired = [e["data"] for e in pending_events(session) if e["action"] == "timer_fired"]
    assert [(f["timer"], f["late_seconds"]) for f in fired] == [("Cảnh báo sắp hết hạn", 60.0), ("Quá hạn", 1.0)]


def test_timer_set_in_the_past_of_the_real_clock_waits_for_the_project_clock(session, unit):
    """Spiff compares timers with datetime.now(); the project clock must be the only authority."""
    clock.freeze(datetime(2025, 4, 28, 10, 0, tzinfo=VN_TZ))  # long before the real date
    dossier = submit(session, unit)
    complete(session, dossier.id, "receive", {"decision": "accept"})
    assert session.scalar(select(func.count()).select_from(ServiceCall)) == 0
    # received Mon 28/4/2025; 30/4, 1/5, 2/5 are days off; due Tue 6/5/2025 (Mon 5/5, Tue 6/5? no):
    # working days after 28/4: Tue 29/4 (1), Mon 5/5 (2), Tue 6/5 (3)
    assert dossier.due_at == datetime(2025, 5, 6, 17, 0, tzinfo=VN_TZ)


def test_service_call_failure_backs_off_then_gives_up(session, unit):
    dossier = submit(session, unit)
    for step, data in [("receive", {"decision": "accept"}), ("appraise", {"decision": "propose_approve"}),
                       ("approve", {"decision": "approve"})]:
        complete(session, dossier.id, step, data)
    call = session.scalars(select(ServiceCall)).one()
    services.take_service_call(session, call.id, lease=timedelta(seconds=30))
    assert services.take_service_call(session, call.id, lease=timedelta(seconds=30)) is None  # leased
    services.fail_service_call(session, call.id, "gateway timeout")
    assert call.status == "pending"
    assert call.next_attempt_at > clock.now()
    assert services.due_service_calls(session) == []
    clock.freeze(clock.now() + timedelta(hours=2))
    assert services.due_service_calls(session) == [call.id]
    services.take_service_call(session, call.id, lease=timedelta(seconds=30))
    services.fail_service_call(session, call.id, "bad request", permanent=True)
    assert call.status == "failed"
    assert any(e["action"] == "service_call_failed" for e in pending_events(session))


def test_rework_loop_150_passes_keeps_state_bounded(session, unit):
    dossier = submit(session, unit)
    complete(session, dossier.id, "receive", {"decision": "accept"})
    sizes = []
    for _ in range(150):
        complete(session, dossier.id, "appraise", {"decision": "propose_approve"})
        complete(session, dossier.id, "approve", {"decision": "return", "reason": "Cần bổ sung thông tin"})
        sizes.append(session.get(WorkflowState, dossier.id).size)
    assert max(sizes[-10:]) <= sizes[0] * 1.2  # compaction: no growth with the passes
    complete(session, dossier.id, "appraise", {"decision": "propose_approve"})
    complete(session, dossier.id, "approve", {"decision": "approve"})
    assert open_task(session, dossier.id, "notify_result").state == "started"
    approvals = session.scalar(select(func.count()).select_from(Task).where(
        Task.dossier_id == dossier.id, Task.spec_name == "approve", Task.state == "completed"))
    assert approvals == 151  # the history is kept in the projection even though Spiff's tree is compacted


def test_compaction_keeps_parallel_joins_working(session):
    """A process with a parallel split and join behind a loop still joins after compaction."""
    unit = create_unit(session)
    install_bpmn(session, "parallel_join", (FIXTURES / "parallel_join.bpmn").read_text())
    dossier = submit(session, unit, procedure="parallel_join")
    for _ in range(3):
        complete(session, dossier.id, "prepare", {"again": True})
    complete(session, dossier.id, "prepare", {"again": False})
    assert dossier.status == "accepted"
    complete(session, dossier.id, "police", {"answer": "ok"})
    assert dossier.finished_at is None  # the join waits for the second branch
    assert dossier.status == "processing"
    complete(session, dossier.id, "insurance", {"answer": "ok"})
    assert dossier.status == "processing"  # the other branch's inherited 'accepted' does not come back
    complete(session, dossier.id, "after_join", {})
    assert dossier.finished_at is not None


def test_compaction_keeps_data_changed_just_before_an_event_gateway(session):
    """A waiting event-based gateway merges its parent's data when its event arrives: after save,
    compaction and load, a value changed just before the wait must not fall back to an older
    task's value."""
    unit = create_unit(session)
    install_bpmn(session, "message_after_script", (FIXTURES / "message_after_script.bpmn").read_text())
    dossier = submit(session, unit, procedure="message_after_script")
    complete(session, dossier.id, "first", {"value": "new"})
    services.deliver_message(session, dossier.code, "go", {"ok": True}, actor=services.SYSTEM_ACTOR)
    wf = services.load_workflow(session, dossier)
    after = next(t for t in workflow.open_tasks(wf) if t.task_spec.name == "after")
    # `proposal` is None in the case's start data: the stale value a compacted tree would bring back
    assert (after.data["proposal"], after.data["go_payload"]) == ("new (checked)", {"ok": True})


def test_state_is_stored_without_the_spec(session, unit):
    dossier = submit(session, unit)
    state = session.get(WorkflowState, dossier.id)
    import zlib

    raw = zlib.decompress(state.state)
    assert b'"spec"' not in raw
    assert b"task_specs" not in raw
    wf = services.load_workflow(session, dossier)
    assert [t.task_spec.name for t in workflow.open_tasks(wf)] == ["receive"]


def test_audit_events_are_written_and_chained_on_commit(session, unit):
    dossier = submit(session, unit)
    complete(session, dossier.id, "receive", {"decision": "accept"})
    session.commit()
    rows = session.scalars(select(AuditEvent).where(AuditEvent.dossier_id == dossier.id)
                           .order_by(AuditEvent.id)).all()
    assert [r.action for r in rows] == ["dossier_submitted", "task_completed", "status_changed"]
    assert rows[1].prev_hash == rows[0].hash
    assert rows[2].prev_hash == rows[1].hash
    assert rows[1].data["form"] == {"decision": "accept"}


def test_service_fixture_process_deploys_and_waits_for_its_call(session):
    unit = create_unit(session)
    install_bpmn(session, "service_timer", (FIXTURES / "service_timer.bpmn").read_text())
    dossier = submit(session, unit, procedure="service_timer")
    complete(session, dossier.id, "review", {"effect_seconds": 0, "wait_until": "2026-01-01T00:00:00+07:00"})
    call = session.scalars(select(ServiceCall).where(ServiceCall.dossier_id == dossier.id)).one()
    assert call.operation == "demo.effect"
    assert call.params == {"seconds": 0, "label": dossier.code}


def test_reading_a_dossier_is_audited_and_scoped(session, unit):
    dossier = submit(session, unit)
    officer = services.Actor.of(create_user(session, unit, "justice"))
    foreign = services.Actor.of(create_user(session, create_unit(session), "justice"))
    auditor = services.Actor.of(create_user(session, None, "auditor"))
    services.view_dossier(session, dossier.code, actor=officer)
    services.view_dossier(session, dossier.code, actor=auditor, purpose="audit")
    with pytest.raises(services.ForbiddenError):
        services.view_dossier(session, dossier.code, actor=foreign)
    viewed = [(e["actor"], e["data"]["purpose"]) for e in pending_events(session) if e["action"] == "dossier_viewed"]
    assert viewed == [(officer.name, "view"), (auditor.name, "audit")]


def test_a_case_keeps_the_rules_in_force_when_it_was_received(session):
    """Effective-dated rules: e.g. funeral support went from 5 to 3 working days on 1/7/2025."""
    from engine.catalogue import lifecycle_forms
    from tests.factories import APPRAISE_FORM, PROCESSES

    unit = create_unit(session)
    forms = {**lifecycle_forms(PROCESSES), "appraise": APPRAISE_FORM}
    install_bpmn(session, "dated", (FIXTURES / "case_demo.bpmn").read_text(), legal=(3, "working_days"),
                 catalogue_data={"task_forms": forms, "legal_time": {"value": 3, "unit": "working_days"},
                                 "rules": [{"effective_to": "2025-07-01",
                                            "legal_time": {"value": 5, "unit": "working_days"}}]})
    clock.freeze(datetime(2025, 6, 30, 9, 0, tzinfo=VN_TZ))  # Monday, old rule: 5 working days
    before = submit(session, unit, procedure="dated")
    assert before.due_at == datetime(2025, 7, 7, 17, 0, tzinfo=VN_TZ)
    assert before.terms["rule"] == {"effective_from": None, "effective_to": "2025-07-01"}
    clock.freeze(datetime(2025, 7, 1, 9, 0, tzinfo=VN_TZ))  # Tuesday, new rule: 3 working days
    after = submit(session, unit, procedure="dated")
    assert after.due_at == datetime(2025, 7, 4, 17, 0, tzinfo=VN_TZ)
    # a restart after a supplement request keeps the old dossier on its old rule
    complete(session, before.id, "receive", {"decision": "supplement", "note": "Thiếu tờ khai"})
    clock.freeze(datetime(2025, 7, 8, 9, 0, tzinfo=VN_TZ))
    services.deliver_message(session, before.code, "supplement_received", {}, actor=services.SYSTEM_ACTOR)
    assert before.due_at == datetime(2025, 7, 15, 17, 0, tzinfo=VN_TZ)  # 5 working days again


# --- attachments and who submits -----------------------------------------------------------------

PDF = b"%PDF-1.7\n%%EOF\n"


def _file(name: str = "to-khai.pdf", content: bytes = PDF, mime: str = "application/pdf") -> dict[str, str]:
    import base64

    return {"name": name, "content_base64": base64.b64encode(content).decode(), "mime": mime}


def test_attachments_are_stored_with_the_dossier_and_audited_without_content(session, unit):
    import hashlib

    from engine.models import Attachment

    officer = services.Actor.of(create_user(session, unit, "onestop"))
    dossier = submit(session, unit, actor=officer, attachments=[_file(), _file("anh.png", b"\x89PNG\r\n\x1a\nxx",
                                                                              "image/png")])
    rows = session.scalars(select(Attachment).where(Attachment.dossier_id == dossier.id).order_by(Attachment.id)).all()
    assert [(r.name, r.mime, r.size, r.kind, r.uploaded_by_id) for r in rows] == [
        ("to-khai.pdf", "application/pdf", len(PDF), "submission", officer.user_id),
        ("anh.png", "image/png", 10, "submission", officer.user_id)]
    assert rows[0].content == PDF
    assert rows[0].sha256 == hashlib.sha256(PDF).hexdigest()
    event = next(e for e in pending_events(session) if e["action"] == "dossier_submitted")
    assert event["data"]["attachments"][0] == {"name": "to-khai.pdf", "mime": "application/pdf", "size": len(PDF),
                                               "sha256": hashlib.sha256(PDF).hexdigest()}
    assert "content" not in str(event["data"])  # neither the bytes nor the base64


def test_attachment_validation(monkeypatch):
    import base64

    wrapped = base64.encodebytes(PDF * 20).decode()  # MIME style, a newline every 76 characters
    assert "\n" in wrapped
    [upload] = services.validate_attachments([{"name": " scan.pdf ", "content_base64": wrapped,
                                               "mime": "application/pdf"}])
    assert (upload.name, upload.content, upload.size) == ("scan.pdf", PDF * 20, len(PDF) * 20)
    assert services.validate_attachments(None) == []
    assert services.validate_attachments([]) == []
    cases = [
        (_file(content=b"GIF89a"), "attachments[0].content_base64"),
        (_file(mime="image/jpeg"), "attachments[0].content_base64"),
        (_file(mime="application/octet-stream"), "attachments[0].mime"),
        ({**_file(), "content_base64": "@@@"}, "attachments[0].content_base64"),
        (_file(name="a" * 201), "attachments[0].name"),
        (_file(name=".."), "attachments[0].name"),
        (_file(name="x\x00.pdf"), "attachments[0].name"),
    ]
    for item, field in cases:
        with pytest.raises(services.InvalidDataError) as err:
            services.validate_attachments([item])
        assert set(err.value.fields) == {field}, (item, err.value.fields)
    assert len(services.validate_attachments([_file()] * services.MAX_ATTACHMENTS)) == services.MAX_ATTACHMENTS
    with pytest.raises(services.InvalidDataError) as err:
        services.validate_attachments([_file()] * (services.MAX_ATTACHMENTS + 1))
    assert set(err.value.fields) == {"attachments"}
    monkeypatch.setattr(services, "MAX_ATTACHMENT_BYTES", 4)  # refused before decoding a large string
    with pytest.raises(services.InvalidDataError) as err:
        services.validate_attachments([_file()])
    assert err.value.fields == {"attachments[0].content_base64": ["at most 4 bytes"]}


def test_a_refused_attachment_stores_no_dossier(session, unit):
    from engine.models import Attachment, DossierCodeCounter

    with pytest.raises(services.InvalidDataError) as err:
        submit(session, unit, attachments=[_file(), _file(mime="image/png")])
    assert set(err.value.fields) == {"attachments[1].content_base64"}
    assert session.scalar(select(func.count()).select_from(Dossier)) == 0
    assert session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert session.scalar(select(func.count()).select_from(DossierCodeCounter)) == 0  # no code number used
    assert [e for e in pending_events(session) if e["action"] == "dossier_submitted"] == []


def test_who_may_submit(session, unit):
    from engine.models import Role, User, UserRole

    officer = services.Actor.of(create_user(session, unit, "onestop"))
    foreign = services.Actor.of(create_user(session, create_unit(session), "onestop"))
    justice = services.Actor.of(create_user(session, unit, "justice"))
    citizen_user = User(username="001099099999", full_name="Đỗ Văn Giang", id_number="001099099999",
                        phone="0911000999", email="giang@example.vn")
    citizen_user.role_rows = [UserRole(role=Role.CITIZEN.value)]
    session.add(citizen_user)
    session.flush()
    citizen = services.Actor.of(citizen_user)
    base = {"procedure_code": "case_demo", "unit_code": unit.code,
            "applicant": {"type": "individual", "full_name": "Nguyễn Văn A"}}

    counter = services.submit_dossier_as(session, actor=officer, **base)
    assert (counter.channel, counter.citizen_id, counter.submitted_by_id) == ("counter", None, officer.user_id)
    posted = services.submit_dossier_as(session, actor=officer, channel="post", **base)
    assert posted.channel == "post"
    online = services.submit_dossier_as(session, actor=citizen, **{**base, "applicant": {"type": "individual",
                                                                                         "phone": "0988777666"}})
    assert (online.channel, online.citizen_id) == ("online", citizen_user.id)
    assert online.applicant == {"type": "individual", "full_name": "Đỗ Văn Giang", "id_number": "001099099999",
                                "phone": "0988777666", "email": "giang@example.vn"}
    for actor in (foreign, justice, services.SYSTEM_ACTOR):
        with pytest.raises(services.ForbiddenError):
            services.submit_dossier_as(session, actor=actor, **base)
    with pytest.raises(services.InvalidDataError) as err:
        services.submit_dossier_as(session, actor=citizen, **{**base, "applicant": {"id_number": "001199000111"}})
    assert err.value.fields == {"applicant.id_number": ["must be your own ID number"]}
    with pytest.raises(services.InvalidDataError):
        services.submit_dossier_as(session, actor=officer, channel="online", **base)
