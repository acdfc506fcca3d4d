"""The reports on a month of real cases, each figure computed by hand below.

Fourteen guardianship dossiers (3 working days; Tue 24/11/2026 is a public holiday) in two
communes are driven through the engine as officers would, at set times, then November 2026 is
reported. Each case says what it counts as; the expected figures are summed from those lines.

  unit A (counter)                         received        appointment     end of processing
  C1  early                                Mon 02/11 09:00 Thu 05/11 17:00 Tue 03/11 10:00 result
  C2  on time (on the appointment's day)   Mon 09/11 09:00 Thu 12/11 17:00 Thu 12/11 16:00 result
  C3  late                                 Mon 16/11 09:00 Thu 19/11 17:00 Fri 20/11 10:00 result
  C4  supplement: clock restarts Fri 06/11 Mon 02/11 09:00 Wed 11/11 17:00 Wed 11/11 15:00 result
      (without the restart it would have been late against Thu 05/11)
  C5  apology, new date Mon 23/11          Mon 16/11 09:00 Thu 19/11 17:00 Mon 23/11 10:00 late
  C6  withdrawn                            Tue 10/11 09:00                 Wed 11/11 09:00 withdrawn
  C7  refused at receipt (Mẫu 03)          Thu 12/11 09:00                 Thu 12/11 10:00 not accepted
  C8  refusal letter after appraisal       Wed 18/11 09:00 Mon 23/11 17:00 Fri 20/11 10:00 early, refused
  C9  carried over from October            Fri 30/10 09:00 Wed 04/11 17:00 Wed 04/11 11:00 on time
  C10 still processing, past the deadline  Wed 25/11 09:00 Mon 30/11 17:00 —
  C11 still processing, within it         Mon 30/11 09:00 Thu 03/12 17:00 —
  C12 waiting for the citizen's supplement Thu 26/11 09:00 (paused)        —
  unit B
  C13 online, late by half an hour         Tue 03/11 09:00 Fri 06/11 17:00 Fri 06/11 17:30 late
  C14 by post, early                       Wed 04/11 09:00 Mon 09/11 17:00 Thu 05/11 10:00 early
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pytest
from sqlalchemy import select

from engine import clock, reports, services
from engine.calendar import VN_TZ
from engine.models import Dossier, Outcome, Task, UnitTarget, rate_result
from tests.factories import create_unit
from tests.procedures.harness import CaseDriver

CODE = "guardianship_registration"
FORM = {
    "guardianship_kind": "statutory", "ward_full_name": "Lê Minh An", "ward_birth_date": "2015-05-10",
    "guardian_full_name": "Phạm Thị Dung", "guardian_id_number": "001199000111", "relationship": "Bà nội",
    "residence": "Thôn Đông, xã An Hòa Thịnh",
}
NOVEMBER = reports.Period.month(2026, 11)
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=VN_TZ)


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=VN_TZ)


@dataclass
class Month:
    unit_a: object
    unit_b: object
    cases: dict[str, Dossier]


def _new(session, unit, received: datetime, *, channel: str = "counter") -> CaseDriver:
    case = CaseDriver(session, CODE, unit=unit)
    case.submit(form=FORM, channel=channel, at=received)
    return case


def _accept(case: CaseDriver, moment: datetime) -> None:
    clock.freeze(moment)
    case.complete("receive", decision="accept")


def _finish(case: CaseDriver, moment: datetime, *, refuse: bool = False) -> None:
    """Appraise, register, approve (the result is signed: end of processing) and hand back, all at
    ``moment``: no step waits, so a step is late only when the whole dossier is."""
    clock.freeze(moment)
    if refuse:
        case.complete("appraise", decision="propose_refuse", note="Không đủ điều kiện giám hộ theo quy định")
    else:
        case.complete("appraise", decision="propose_approve", guardian_eligible=True)
        case.complete("register", decision="propose_approve", guardian_present=True, register_signed=True,
                      register_number="03/2026")
    case.complete("approve", decision="approve")
    case.complete("hand_back", decision="delivered", fee_collected=0, receiver_name="Phạm Thị Dung")


@pytest.fixture
def month(session) -> Month:
    unit_a, unit_b = create_unit(session), create_unit(session)
    cases: dict[str, CaseDriver] = {}

    cases["C9"] = c = _new(session, unit_a, at(30, 9, month=10))
    _accept(c, at(30, 10, month=10))
    _finish(c, at(4, 11))

    cases["C1"] = c = _new(session, unit_a, at(2, 9))
    _accept(c, at(2, 10))
    _finish(c, at(3, 10))

    cases["C4"] = c = _new(session, unit_a, at(2, 9))
    clock.freeze(at(2, 10))
    c.complete("receive", decision="supplement", note="Thiếu giấy khai sinh của người được giám hộ")
    clock.freeze(at(6, 9))
    c.message("supplement_received", {"documents": ["giay_khai_sinh.pdf"]})
    _accept(c, at(6, 9, 30))
    _finish(c, at(11, 15))

    cases["C13"] = c = _new(session, unit_b, at(3, 9), channel="online")
    _accept(c, at(3, 10))
    _finish(c, at(6, 17, 30))

    cases["C14"] = c = _new(session, unit_b, at(4, 9), channel="post")
    _accept(c, at(4, 10))
    _finish(c, at(5, 10))

    cases["C2"] = c = _new(session, unit_a, at(9, 9))
    _accept(c, at(9, 10))
    _finish(c, at(12, 16))

    cases["C6"] = c = _new(session, unit_a, at(10, 9))
    _accept(c, at(10, 10))
    clock.freeze(at(11, 9))
    services.withdraw_dossier(session, c.dossier.code, actor=services.SYSTEM_ACTOR, reason="Không còn nhu cầu")

    cases["C7"] = c = _new(session, unit_a, at(12, 9))
    clock.freeze(at(12, 10))
    c.complete("receive", decision="refuse", note="Không thuộc thẩm quyền giải quyết của xã")

    cases["C3"] = c = _new(session, unit_a, at(16, 9))
    _accept(c, at(16, 10))
    _finish(c, at(20, 10))

    cases["C5"] = c = _new(session, unit_a, at(16, 9))
    _accept(c, at(16, 10))
    clock.freeze(at(18, 9))
    services.request_apology(session, c.dossier.code, actor=services.SYSTEM_ACTOR,
                             reason="Chờ xác minh nơi cư trú của người được giám hộ")
    clock.freeze(at(18, 9, 30))
    c.complete("sign_apology", decision="approve", new_due_date="2026-11-23", reason="Chờ kết quả xác minh")
    _finish(c, at(23, 10))

    cases["C8"] = c = _new(session, unit_a, at(18, 9))
    _accept(c, at(18, 10))
    _finish(c, at(20, 10), refuse=True)

    cases["C10"] = c = _new(session, unit_a, at(25, 9))
    _accept(c, at(25, 10))

    cases["C12"] = c = _new(session, unit_a, at(26, 9))
    clock.freeze(at(26, 10))
    c.complete("receive", decision="supplement", note="Thiếu văn bản cử người giám hộ")

    cases["C11"] = c = _new(session, unit_a, at(30, 9))
    _accept(c, at(30, 10))

    session.add_all([UnitTarget(unit_id=unit_a.id, year=2026, online_rate=30),
                     UnitTarget(unit_id=unit_b.id, year=2026, online_rate=40)])
    session.flush()
    clock.freeze(NOW)
    return Month(unit_a, unit_b, {name: case.dossier for name, case in cases.items()})


def _province(month: Month) -> reports.Scope:
    return reports.Scope(unit_ids=(month.unit_a.id, month.unit_b.id))


def test_each_dossier_is_rated_by_its_own_rule(month):
    outcome = {name: d.outcome for name, d in month.cases.items()}
    assert outcome == {
        "C1": "early", "C2": "on_time", "C3": "late", "C4": "on_time", "C5": "late", "C6": "withdrawn",
        "C7": "not_accepted", "C8": "early", "C9": "on_time", "C10": None, "C11": None, "C12": None,
        "C13": "late", "C14": "early",
    }
    c4 = month.cases["C4"]
    assert c4.supplement_count == 1
    assert c4.appointment_at == at(11, 17)  # the full legal time restarted Fri 06/11
    c5 = month.cases["C5"]
    assert c5.appointment_at == at(19, 17)  # the apology's new date does not move the appointment
    assert c5.due_at == at(23, 17)
    assert month.cases["C8"].refused is True
    assert month.cases["C1"].processed_at == at(3, 10)
    assert month.cases["C6"].closed_at == at(11, 9)


def test_ontime_report_per_procedure_for_the_province(session, month):
    report = reports.ontime_report(session, NOVEMBER, _province(month), by="procedure", now=NOW)
    (row,) = report["rows"]
    expected = {
        "carried_over": 1,                                   # C9
        "received": 13, "received_online": 1, "received_counter": 11, "received_post": 1,
        "finished": 9, "early": 3, "on_time": 3, "late": 3,  # C1 C8 C14 / C2 C4 C9 / C3 C5 C13
        "refused": 1, "not_accepted": 1, "withdrawn": 1, "stopped": 0,
        "processing": 3, "processing_within": 1, "processing_overdue": 1, "waiting_citizen": 1,
        "apologies": 1,
    }
    assert {k: row[k] for k in expected} == expected
    assert row["procedure"] == CODE
    assert row["ontime_rate"] == pytest.approx(6 / 9, abs=1e-4)
    assert report["total"]["ontime_rate"] == row["ontime_rate"]
    # the balance: carried over + received = ended in the period + still processing at its end
    ended = row["finished"] + row["not_accepted"] + row["withdrawn"] + row["stopped"]
    assert row["carried_over"] + row["received"] == ended + row["processing"]


def test_ontime_report_per_unit(session, month):
    report = reports.ontime_report(session, NOVEMBER, _province(month), by="unit", now=NOW)
    rows = {r["unit"]: r for r in report["rows"]}
    a, b = rows[month.unit_a.code], rows[month.unit_b.code]
    assert (a["received"], a["carried_over"], a["early"], a["on_time"], a["late"]) == (11, 1, 2, 3, 2)
    assert a["ontime_rate"] == pytest.approx(5 / 7, abs=1e-4)
    assert (b["received"], b["received_online"], b["received_post"], b["early"], b["late"]) == (2, 1, 1, 1, 1)
    assert b["ontime_rate"] == 0.5
    # a leader sees the own unit only
    only_b = reports.ontime_report(session, NOVEMBER, reports.Scope(unit_ids=(month.unit_b.id,)), by="unit", now=NOW)
    assert [r["unit"] for r in only_b["rows"]] == [month.unit_b.code]


def test_a_period_read_before_its_end_counts_as_of_then(session, month):
    # 1–15 November, read on 2 December: C3 and C5 are not received yet; C6 and C7 ended inside.
    first_half = reports.Period(date(2026, 11, 1), date(2026, 11, 15))
    total = reports.ontime_report(session, first_half, _province(month), now=NOW)["total"]
    assert (total["carried_over"], total["received"]) == (1, 7)  # C9; C1 C2 C4 C6 C7 C13 C14
    assert (total["early"], total["on_time"], total["late"]) == (2, 3, 1)  # C1 C14 / C2 C4 C9 / C13
    assert (total["withdrawn"], total["not_accepted"], total["processing"]) == (1, 1, 0)


def test_index_scores_per_unit(session, month):
    scores = reports.index_scores(session, NOVEMBER, _province(month), by="unit")
    rows = {r["unit"]: r for r in scores["rows"]}
    a, b = rows[month.unit_a.code], rows[month.unit_b.code]
    # unit A, 7 finished: total time 2+1+0+1+0+2+1 = 7 → 1.0.
    # Steps: the appraisal has 2 working days from acceptance and was done on the finishing day:
    #   C1  accepted Mon 02/11 10:00, appraisal due Wed 04/11 17:00, done Tue 03/11 → on time
    #   C2  accepted Mon 09/11, due Wed 11/11 17:00, done Thu 12/11 16:00 → late
    #   C3  due Wed 18/11 17:00, done Fri 20/11 → late (and the later steps past the appointment)
    #   C4  accepted Fri 06/11 09:30, due Tue 10/11 17:00, done Wed 11/11 → late
    #   C5  due Wed 18/11, but the apology moved the open steps to Mon 23/11 17:00; done 23/11 10:00 → on time
    #   C8  accepted Wed 18/11, due Fri 20/11 17:00, done Fri 20/11 10:00 → on time
    #   C9  accepted Fri 30/10, due Tue 03/11 17:00, done Wed 04/11 → late
    # so 3 × 2 points / 7 = 0.86. Supplements: C4 once (1 point), others none (2): 13/7 = 1.86.
    # All at the counter: 0.
    assert a["dossiers"] == 7
    assert (a["total_time"], a["step_time"], a["supplements"], a["online"]) == (1.0, 0.86, 1.86, 0.0)
    # unit B: C13 late in total and in its steps, online partial (1); C14 early, by post (0).
    assert (b["total_time"], b["step_time"], b["supplements"], b["online"]) == (1.0, 1.0, 2.0, 0.5)
    total = scores["total"]
    assert total["dossiers"] == 9
    # step time: (6 + 2) / 9; supplements (13 + 4) / 9; online (0 + 1) / 9
    assert (total["total_time"], total["step_time"], total["supplements"], total["online"]) == (1.0, 0.89, 1.89, 0.11)


def test_online_rate_against_each_units_target(session, month):
    rows = {r["unit"]: r for r in reports.online_rates(session, NOVEMBER, _province(month))}
    a = rows[month.unit_a.code]
    assert (a["received"], a["online"], a["rate"], a["target"], a["met"]) == (11, 0, 0.0, 30.0, False)
    assert (rows[month.unit_b.code]["rate"], rows[month.unit_b.code]["met"]) == (50.0, True)


def test_tracking_register_for_the_year(session, month):
    rows = reports.register_rows(session, month.unit_a.id, 2026)
    assert [r["code"] for r in rows][:2] == [month.cases["C9"].code, month.cases["C1"].code]
    assert len(rows) == 12
    by_code = {r["code"]: r for r in rows}
    c1 = by_code[month.cases["C1"].code]
    assert (c1["result"], c1["handed_to"], c1["finished_at"], c1["returned_at"]) == \
        ("Trước hạn", "Công chức Tư pháp – Hộ tịch", at(3, 10), at(3, 10))
    assert by_code[month.cases["C3"].code]["result"] == "Quá hạn"
    assert by_code[month.cases["C5"].code]["due_at"] == at(19, 17)
    assert "xin lỗi" in by_code[month.cases["C5"].code]["note"]
    assert by_code[month.cases["C6"].code]["note"] == "Rút hồ sơ"
    assert by_code[month.cases["C7"].code]["note"] == "Từ chối tiếp nhận"
    assert by_code[month.cases["C10"].code]["finished_at"] is None
    # a month of the book keeps the year's numbering: C9 (October) is line 1
    november = reports.register_rows(session, month.unit_a.id, 2026, month=11)
    assert [r["sequence"] for r in november] == list(range(2, 13))
    assert november[0]["code"] == month.cases["C1"].code


def test_dashboard_figures(session, month):
    board = reports.dashboard(session, _province(month), now=NOW)
    november = next(m for m in board.trend if m["month"] == "2026-11")
    assert (november["finished"], november["ontime"]) == (9, 6)
    assert board.trend[-1]["month"] == "2026-12"
    # at noon on 2 December only C10's appraisal (due Fri 27/11) is past its deadline
    appraise = session.scalar(select(Task.name).where(Task.dossier_id == month.cases["C10"].id,
                                                      Task.spec_name == "appraise"))
    assert board.overdue == [{"step": appraise, "overdue": 1}]
    # December so far: C10, C11 and C12 carried over, still open; C12 waits for the citizen
    assert (board.month["carried_over"], board.month["processing"], board.month["waiting_citizen"]) == (3, 3, 1)


def test_more_than_one_supplement_is_late_whatever_the_dates():
    appointment = at(20, 17)
    assert rate_result(at(18, 10), appointment) is Outcome.EARLY
    assert rate_result(at(20, 9), appointment) is Outcome.ON_TIME
    assert rate_result(at(20, 17, 1), appointment) is Outcome.LATE
    assert rate_result(at(18, 10), appointment, supplements=1) is Outcome.EARLY
    assert rate_result(at(18, 10), appointment, supplements=2) is Outcome.LATE
