"""Unit tests for the Vietnamese working-day calendar (engine/calendar.py) and its seed table."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import holidays
import pytest

from engine.calendar import (
    DAY_OFF,
    HOLIDAY,
    MAKE_UP_DAY,
    VN_TZ,
    CalendarDay,
    WorkingCalendar,
    load_seed_days,
    parse_days,
    parse_iso,
)


def vn(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An aware Vietnam-time datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=VN_TZ)


@pytest.fixture
def cal() -> WorkingCalendar:
    """The calendar built from the shipped seed table (a fresh one per test: nothing is cached)."""
    return WorkingCalendar(load_seed_days())


# -- working days ---------------------------------------------------------------------------


def test_weekdays_work_weekends_and_seed_days_do_not(cal: WorkingCalendar) -> None:
    assert cal.is_working_day(date(2026, 11, 18))  # Wednesday
    assert not cal.is_working_day(date(2026, 11, 21))  # Saturday
    assert not cal.is_working_day(date(2026, 11, 22))  # Sunday
    assert not cal.is_working_day(date(2026, 11, 24))  # Ngày Văn hóa Việt Nam (Tuesday)
    assert not cal.is_working_day(date(2026, 4, 27))  # nghỉ bù Giỗ Tổ (Giỗ Tổ on Sunday 26/4)
    assert not cal.is_working_day(date(2026, 1, 2))  # swapped day off
    assert cal.is_working_day(date(2026, 1, 10))  # its make-up Saturday
    assert cal.is_working_day(date(2025, 4, 26))  # make-up Saturday for 2/5/2025


def test_empty_calendar_is_plain_monday_to_friday() -> None:
    plain = WorkingCalendar()
    assert plain.is_working_day(date(2026, 9, 2))
    assert plain.next_working_day(date(2026, 11, 20)) == date(2026, 11, 23)
    assert plain.add_working_days(date(2026, 11, 20), 3) == date(2026, 11, 25)


def test_next_and_previous_working_day(cal: WorkingCalendar) -> None:
    assert cal.next_working_day(date(2026, 11, 20)) == date(2026, 11, 23)  # Fri -> Mon
    assert cal.next_working_day(date(2026, 11, 23)) == date(2026, 11, 25)  # Mon -> Wed, 24/11 off
    assert cal.next_working_day(date(2026, 2, 13)) == date(2026, 2, 23)  # Tết Bính Ngọ skipped
    assert cal.previous_working_day(date(2026, 2, 23)) == date(2026, 2, 13)
    assert cal.previous_working_day(date(2026, 1, 12)) == date(2026, 1, 10)  # make-up Saturday


def test_add_working_days(cal: WorkingCalendar) -> None:
    assert cal.add_working_days(date(2026, 11, 18), 0) == date(2026, 11, 18)
    assert cal.add_working_days(date(2026, 11, 18), 1) == date(2026, 11, 19)
    # 29/4/2026 + 2: 30/4 and 1/5 holidays, 2–3/5 weekend -> Mon 4/5 (1), Tue 5/5 (2).
    assert cal.add_working_days(date(2026, 4, 29), 2) == date(2026, 5, 5)


def test_working_days_in_matches_day_by_day_count(cal: WorkingCalendar) -> None:
    start = date(2024, 12, 20)
    days = [start + timedelta(days=i) for i in range(0, 800, 7)]
    for a in days:
        for b in (a + timedelta(days=k) for k in (0, 1, 3, 9, 40, 170)):
            expected = sum(cal.is_working_day(a + timedelta(days=i)) for i in range((b - a).days))
            assert cal.working_days_in(a, b) == expected, (a, b)


# -- receipt day ----------------------------------------------------------------------------


def test_receipt_day_outside_hours_counts_from_next_working_day(cal: WorkingCalendar) -> None:
    assert cal.receipt_day(vn(2026, 11, 18, 10)) == date(2026, 11, 18)
    assert cal.receipt_day(vn(2026, 11, 18, 6)) == date(2026, 11, 18)  # before opening: same day
    assert cal.receipt_day(vn(2026, 11, 18, 17)) == date(2026, 11, 19)  # at close: next day
    assert cal.receipt_day(vn(2026, 11, 20, 19)) == date(2026, 11, 23)  # Friday evening -> Monday
    assert cal.receipt_day(vn(2026, 11, 21, 9)) == date(2026, 11, 23)  # Saturday -> Monday
    assert cal.receipt_day(vn(2026, 11, 23, 18)) == date(2026, 11, 25)  # 24/11 is off
    # 2026-11-18T20:30Z is 03:30 on 19/11 in Vietnam.
    assert cal.receipt_day(datetime(2026, 11, 18, 20, 30, tzinfo=UTC)) == date(2026, 11, 19)


# -- due: working days ----------------------------------------------------------------------


def test_friday_plus_three_working_days_is_wednesday(cal: WorkingCalendar) -> None:
    # Fri 13/11/2026 10:00, receipt day not counted: Mon 16 (1), Tue 17 (2), Wed 18 (3).
    assert cal.due(vn(2026, 11, 13, 10), working_days=3) == vn(2026, 11, 18, 17)


def test_friday_before_vietnamese_culture_day_ends_on_thursday(cal: WorkingCalendar) -> None:
    # Fri 20/11/2026 10:00: Mon 23 (1), Tue 24 is Ngày Văn hóa Việt Nam, Wed 25 (2), Thu 26 (3).
    # Without the 2026 holiday it would be Wednesday 25/11.
    assert cal.due(vn(2026, 11, 20, 10), working_days=3) == vn(2026, 11, 26, 17)
    assert WorkingCalendar().due(vn(2026, 11, 20, 10), working_days=3) == vn(2026, 11, 25, 17)


def test_due_result_is_aware_vietnam_time(cal: WorkingCalendar) -> None:
    result = cal.due(vn(2026, 11, 13, 10), working_days=3)
    assert result.utcoffset() == timedelta(hours=7)
    assert result.isoformat() == "2026-11-18T17:00:00+07:00"


def test_received_after_close_counts_from_next_working_day(cal: WorkingCalendar) -> None:
    # Tue 17/11/2026 17:30: receipt day Wed 18, +1 working day -> Thu 19.
    assert cal.due(vn(2026, 11, 17, 17, 30), working_days=1) == vn(2026, 11, 19, 17)
    # Saturday 21/11: receipt day Mon 23; +1 skips Tue 24 -> Wed 25.
    assert cal.due(vn(2026, 11, 21, 9), working_days=1) == vn(2026, 11, 25, 17)


def test_reunification_and_labour_day_are_skipped_2026(cal: WorkingCalendar) -> None:
    # Wed 29/4/2026 10:00, 2 working days. Thu 30/4 and Fri 1/5 holidays, Sat 2 and Sun 3/5
    # weekend; Mon 4/5 is day 1, Tue 5/5 is day 2.
    assert cal.due(vn(2026, 4, 29, 10), working_days=2) == vn(2026, 5, 5, 17)


def test_reunification_swap_2025_with_make_up_saturday(cal: WorkingCalendar) -> None:
    # Tue 29/4/2025, 2 working days: 30/4, 1/5 holidays, Fri 2/5 swapped off, 3–4/5 weekend;
    # Mon 5/5 (1), Tue 6/5 (2).
    assert cal.due(vn(2025, 4, 29, 9), working_days=2) == vn(2025, 5, 6, 17)
    # Fri 25/4/2025, 1 working day: the make-up Saturday 26/4 counts.
    assert cal.due(vn(2025, 4, 25, 9), working_days=1) == vn(2025, 4, 26, 17)
    # Received on the make-up Saturday itself: it is a working day, so same-day is that day.
    assert cal.due(vn(2025, 4, 26, 9), same_day=True) == vn(2025, 4, 26, 17)


def test_tet_is_skipped(cal: WorkingCalendar) -> None:
    # Fri 13/2/2026, 3 working days: 14–15 weekend, 16–20 Tết, 21–22 weekend;
    # Mon 23 (1), Tue 24 (2), Wed 25 (3).
    assert cal.due(vn(2026, 2, 13, 10), working_days=3) == vn(2026, 2, 25, 17)
    # Tết Ất Tỵ 2025: Fri 24/1/2025 + 1 -> 25–26 weekend, 27–31 Tết, 1–2/2 weekend -> Mon 3/2.
    assert cal.due(vn(2025, 1, 24, 10), working_days=1) == vn(2025, 2, 3, 17)


def test_make_up_saturday_counts_as_working_day_2026(cal: WorkingCalendar) -> None:
    # Thu 8/1/2026 + 2: Fri 9 (1), Sat 10 make-up day (2).
    assert cal.due(vn(2026, 1, 8, 10), working_days=2) == vn(2026, 1, 10, 17)
    # The swapped Friday 2/1/2026 is off: Wed 31/12/2025 + 1 -> 1/1 and 2/1 off -> Mon 5/1.
    assert cal.due(vn(2025, 12, 31, 10), working_days=1) == vn(2026, 1, 5, 17)


def test_deadline_landing_on_holiday_moves_on(cal: WorkingCalendar) -> None:
    # 5 calendar days from Wed 26/8/2026 lands on Mon 31/8 (swapped off); 1/9 and 2/9 are
    # Quốc khánh -> Thu 3/9/2026.
    assert cal.due(vn(2026, 8, 26, 10), calendar_days=5) == vn(2026, 9, 3, 17)


def test_supplement_pause_then_restart_counts_full_time_again(cal: WorkingCalendar) -> None:
    received = vn(2026, 11, 2, 9)  # Monday
    before = cal.due(received, working_days=3)
    assert before == vn(2026, 11, 5, 17)  # Tue 3 (1), Wed 4 (2), Thu 5 (3)
    # Supplement asked on Wed 4/11; the complete dossier arrives Fri 20/11 10:00. The full legal
    # time counts again from then: Mon 23 (1), Tue 24 off, Wed 25 (2), Thu 26 (3).
    resumed_at = vn(2026, 11, 20, 10)
    after = cal.due(resumed_at, working_days=3)
    assert after == vn(2026, 11, 26, 17)
    assert after > before


# -- due: same day --------------------------------------------------------------------------


def test_same_day_before_cutoff_is_due_today(cal: WorkingCalendar) -> None:
    assert cal.due(vn(2026, 11, 18, 14), same_day=True) == vn(2026, 11, 18, 17)
    assert cal.due(vn(2026, 11, 18, 15), same_day=True) == vn(2026, 11, 18, 17)  # 15:00 sharp


def test_same_day_after_cutoff_is_due_next_working_day(cal: WorkingCalendar) -> None:
    assert cal.due(vn(2026, 11, 18, 16), same_day=True) == vn(2026, 11, 19, 17)
    assert cal.due(vn(2026, 11, 18, 15, 1), same_day=True) == vn(2026, 11, 19, 17)
    assert cal.due(vn(2026, 11, 20, 16), same_day=True) == vn(2026, 11, 23, 17)  # Fri -> Mon
    assert cal.due(vn(2026, 11, 23, 16), same_day=True) == vn(2026, 11, 25, 17)  # 24/11 off


def test_same_day_received_on_saturday_is_due_monday(cal: WorkingCalendar) -> None:
    assert cal.due(vn(2026, 11, 14, 9), same_day=True) == vn(2026, 11, 16, 17)


def test_same_day_cutoff_uses_vietnam_time(cal: WorkingCalendar) -> None:
    # 08:30Z is 15:30 in Vietnam: after the cutoff.
    received = datetime(2026, 11, 18, 8, 30, tzinfo=UTC)
    assert cal.due(received, same_day=True) == vn(2026, 11, 19, 17)
    # A naive datetime is Vietnam local time: 14:00 is before the cutoff.
    assert cal.due(datetime(2026, 11, 18, 14), same_day=True) == vn(2026, 11, 18, 17)


# -- due: hours -----------------------------------------------------------------------------


def test_hours_cross_lunch_and_night(cal: WorkingCalendar) -> None:
    # Wed 18/11/2026 10:00, 8 working hours: 10:00–11:30 = 1.5 h, 13:00–17:00 = 4 h (5.5 h),
    # Thu 19/11 07:30 + 2.5 h = 10:00.
    assert cal.due(vn(2026, 11, 18, 10), hours=8) == vn(2026, 11, 19, 10)


def test_hours_cross_weekend_and_holiday(cal: WorkingCalendar) -> None:
    # Fri 20/11 15:00, 4 h: 2 h until 17:00, Mon 23/11 07:30 + 2 h = 09:30.
    assert cal.due(vn(2026, 11, 20, 15), hours=4) == vn(2026, 11, 23, 9, 30)
    # Mon 23/11 16:00, 4 h: 1 h until 17:00, Tue 24/11 off, Wed 25/11 07:30 + 3 h = 10:30.
    assert cal.due(vn(2026, 11, 23, 16), hours=4) == vn(2026, 11, 25, 10, 30)


def test_hours_start_outside_office_hours(cal: WorkingCalendar) -> None:
    assert cal.due(vn(2026, 11, 18, 12), hours=2) == vn(2026, 11, 18, 15)  # lunch: from 13:00
    assert cal.due(vn(2026, 11, 18, 6), hours=1) == vn(2026, 11, 18, 8, 30)  # before opening
    assert cal.due(vn(2026, 11, 21, 8), hours=1) == vn(2026, 11, 23, 8, 30)  # Saturday
    assert cal.due(vn(2026, 11, 18, 18), hours=1) == vn(2026, 11, 19, 8, 30)  # evening


def test_hours_ending_exactly_at_window_end_stay_there(cal: WorkingCalendar) -> None:
    assert cal.due(vn(2026, 11, 18, 9, 30), hours=2) == vn(2026, 11, 18, 11, 30)
    assert cal.due(vn(2026, 11, 18, 13), hours=4) == vn(2026, 11, 18, 17)
    # Half an hour from 11:15: 15 min before lunch, 15 min after -> 13:15.
    assert cal.due(vn(2026, 11, 18, 11, 15), hours=0.5) == vn(2026, 11, 18, 13, 15)


# -- due: calendar days ---------------------------------------------------------------------


def test_calendar_days_weekend_landing_moves_to_monday(cal: WorkingCalendar) -> None:
    # Mon 2/11/2026 + 5 calendar days = Sat 7/11 -> Mon 9/11 17:00.
    assert cal.due(vn(2026, 11, 2, 10), calendar_days=5) == vn(2026, 11, 9, 17)
    # Landing on a working day stays: Mon 2/11 + 3 = Thu 5/11.
    assert cal.due(vn(2026, 11, 2, 10), calendar_days=3) == vn(2026, 11, 5, 17)


# -- working days left ----------------------------------------------------------------------


def test_working_days_left(cal: WorkingCalendar) -> None:
    now = vn(2026, 11, 18, 9)  # Wednesday
    assert cal.working_days_left(now, vn(2026, 11, 18, 17)) == 0  # due today
    assert cal.working_days_left(vn(2026, 11, 18, 18), vn(2026, 11, 18, 17)) == 0  # still today
    assert cal.working_days_left(now, vn(2026, 11, 19, 17)) == 1  # tomorrow
    assert cal.working_days_left(now, vn(2026, 11, 23, 17)) == 3  # Thu, Fri, Mon
    assert cal.working_days_left(now, vn(2026, 11, 25, 17)) == 4  # 24/11 not counted


def test_working_days_left_across_weekend(cal: WorkingCalendar) -> None:
    assert cal.working_days_left(vn(2026, 11, 13, 9), vn(2026, 11, 16, 17)) == 1  # Fri -> Mon
    assert cal.working_days_left(vn(2026, 11, 13, 9), vn(2026, 11, 17, 17)) == 2
    assert cal.working_days_left(vn(2026, 11, 14, 9), vn(2026, 11, 16, 17)) == 1  # Sat -> Mon


def test_working_days_left_overdue_is_negative(cal: WorkingCalendar) -> None:
    due_thursday = vn(2026, 11, 19, 17)
    assert cal.working_days_left(vn(2026, 11, 20, 9), due_thursday) == -1
    due_friday = vn(2026, 11, 20, 17)
    assert cal.working_days_left(vn(2026, 11, 21, 9), due_friday) == -1  # Saturday
    assert cal.working_days_left(vn(2026, 11, 23, 9), due_friday) == -1  # Monday
    assert cal.working_days_left(vn(2026, 11, 25, 9), due_friday) == -2  # 24/11 not counted


def test_working_days_left_reads_both_moments_in_vietnam_time(cal: WorkingCalendar) -> None:
    # 2026-11-18T18:00Z is 01:00 on Thu 19/11 in Vietnam: a due at 17:00 that day is today.
    assert cal.working_days_left(datetime(2026, 11, 18, 18, tzinfo=UTC), vn(2026, 11, 19, 17)) == 0


# -- warning moment -------------------------------------------------------------------------


def test_warning_moment_is_one_working_day_before(cal: WorkingCalendar) -> None:
    assert cal.warning_moment(vn(2026, 11, 19, 17)) == vn(2026, 11, 18, 17)
    assert cal.warning_moment(vn(2026, 11, 23, 17)) == vn(2026, 11, 20, 17)  # Mon -> Fri
    assert cal.warning_moment(vn(2026, 11, 25, 17)) == vn(2026, 11, 23, 17)  # skips 24/11
    assert cal.warning_moment(vn(2026, 5, 4, 17)) == vn(2026, 4, 29, 17)  # skips 30/4–3/5
    result = cal.warning_moment(datetime(2026, 11, 19, 10, tzinfo=UTC))  # 17:00 in Vietnam
    assert result == vn(2026, 11, 18, 17)
    assert result.utcoffset() == timedelta(hours=7)


def test_warning_moment_of_same_day_dossier_may_be_in_the_past(cal: WorkingCalendar) -> None:
    received = vn(2026, 11, 18, 9)
    due = cal.due(received, same_day=True)
    assert cal.warning_moment(due) < received


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # no limit at all
        {"working_days": 0},
        {"working_days": 3, "same_day": True},
        {"working_days": 3, "hours": 4},
        {"same_day": True, "calendar_days": 5},
        {"working_days": -1},
        {"working_days": 2.5},
        {"working_days": True},
        {"hours": -1},
        {"hours": 0},
        {"hours": float("nan")},
        {"hours": float("inf")},
        {"calendar_days": -3},
        {"calendar_days": 0},
    ],
)
def test_due_rejects_invalid_limits(cal: WorkingCalendar, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        cal.due(vn(2026, 11, 18, 10), **kwargs)


def test_due_error_message_names_the_problem(cal: WorkingCalendar) -> None:
    with pytest.raises(ValueError, match="exactly one time limit"):
        cal.due(vn(2026, 11, 18, 10), working_days=3, same_day=True)
    with pytest.raises(ValueError, match="working_days must be >= 0"):
        cal.due(vn(2026, 11, 18, 10), working_days=-2)


def test_add_working_days_rejects_negative(cal: WorkingCalendar) -> None:
    with pytest.raises(ValueError, match="n must be >= 0"):
        cal.add_working_days(date(2026, 11, 18), -1)


def test_calendar_day_validation() -> None:
    with pytest.raises(ValueError, match="kind"):
        CalendarDay(date(2026, 11, 24), "public", "Ngày Văn hóa Việt Nam")
    with pytest.raises(ValueError, match="Saturday or Sunday"):
        CalendarDay(date(2026, 11, 25), MAKE_UP_DAY, "Làm bù")
    with pytest.raises(ValueError, match="name"):
        CalendarDay(date(2026, 11, 24), HOLIDAY, " ")
    with pytest.raises(ValueError, match="date"):
        CalendarDay(datetime(2026, 11, 24, 0, 0), HOLIDAY, "x")


def test_calendar_rejects_duplicate_days_and_bad_hours() -> None:
    twice = [
        CalendarDay(date(2026, 11, 24), HOLIDAY, "Ngày Văn hóa Việt Nam"),
        CalendarDay(date(2026, 11, 24), DAY_OFF, "Nghỉ"),
    ]
    with pytest.raises(ValueError, match="appears twice"):
        WorkingCalendar(twice)
    with pytest.raises(ValueError, match="ordered"):
        WorkingCalendar(morning=(time(11, 30), time(7, 30)))
    with pytest.raises(ValueError, match="ordered"):
        WorkingCalendar(afternoon=(time(11, 0), time(17, 0)))
    with pytest.raises(ValueError, match="cutoff"):
        WorkingCalendar(cutoff=time(18, 0))


def test_parse_days_rejects_malformed_rows() -> None:
    with pytest.raises(ValueError, match="'days' list"):
        parse_days([])
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_days({"days": [{"day": "24/11/2026", "kind": "holiday", "name": "x"}]})
    with pytest.raises(ValueError, match="unknown keys"):
        parse_days({"days": [{"day": "2026-11-24", "kind": "holiday", "name": "x", "paid": 1}]})
    with pytest.raises(ValueError, match="provisional"):
        parse_days({"days": [{"day": "2026-11-24", "kind": "holiday", "name": "x", "provisional": "y"}]})
    rows = parse_days({"days": [{"day": "2026-11-24", "kind": "holiday", "name": "Ngày Văn hóa"}]})
    assert rows == [CalendarDay(date(2026, 11, 24), HOLIDAY, "Ngày Văn hóa")]


# -- office hours are configurable ----------------------------------------------------------


def test_custom_office_hours() -> None:
    custom = WorkingCalendar(
        cutoff=time(16, 0),
        morning=(time(8, 0), time(12, 0)),
        afternoon=(time(13, 30), time(17, 30)),
    )
    assert custom.due(vn(2026, 11, 18, 15, 30), same_day=True) == vn(2026, 11, 18, 17, 30)
    assert custom.due(vn(2026, 11, 18, 11), hours=2) == vn(2026, 11, 18, 14, 30)


# -- parse_iso ------------------------------------------------------------------------------


def test_parse_iso() -> None:
    assert parse_iso("2026-11-18T14:00:00") == vn(2026, 11, 18, 14)
    assert parse_iso("2026-11-18T14:00:00").utcoffset() == timedelta(hours=7)
    assert parse_iso("2026-11-18T07:00:00Z") == vn(2026, 11, 18, 14)
    assert parse_iso("2026-11-18T07:00:00+00:00").utcoffset() == timedelta(0)
    assert parse_iso("2026-11-18T14:00+07:00") == vn(2026, 11, 18, 14)
    assert parse_iso("2026-11-18") == vn(2026, 11, 18)
    with pytest.raises(ValueError):
        parse_iso("18/11/2026 14:00")
    with pytest.raises(ValueError):
        parse_iso("")


# -- seed table -----------------------------------------------------------------------------

# Labour Code 2019 art. 112 days plus 24/11 (Resolution 28/2026/QH16, from 1/7/2026), with the
# five Tết days the government schedule gave civil servants each year.
STATUTORY_2025 = [
    date(2025, 1, 1),
    *(date(2025, 1, d) for d in range(27, 32)),  # Tết Ất Tỵ: 27–31/1 (nghỉ 25/1–2/2)
    date(2025, 4, 7),  # Giỗ Tổ Hùng Vương, 10/3 âm lịch
    date(2025, 4, 30),
    date(2025, 5, 1),
    date(2025, 9, 1),
    date(2025, 9, 2),
]
STATUTORY_2026 = [
    date(2026, 1, 1),
    *(date(2026, 2, d) for d in range(16, 21)),  # Tết Bính Ngọ: 16–20/2 (nghỉ 14/2–22/2)
    date(2026, 4, 26),  # Giỗ Tổ Hùng Vương (Sunday; nghỉ bù 27/4)
    date(2026, 4, 30),
    date(2026, 5, 1),
    date(2026, 9, 1),
    date(2026, 9, 2),
    date(2026, 11, 24),  # Ngày Văn hóa Việt Nam
]


def test_seed_loads_without_duplicates() -> None:
    days = load_seed_days()
    assert len(days) >= 40
    counts = Counter(d.day for d in days)
    assert [d for d, n in counts.items() if n > 1] == []
    assert {d.day.year for d in days} == {2025, 2026, 2027}
    assert {d.kind for d in days} == {HOLIDAY, DAY_OFF, MAKE_UP_DAY}


def test_seed_has_every_statutory_holiday_2025_2026() -> None:
    by_day = {d.day: d for d in load_seed_days()}
    for day in [*STATUTORY_2025, *STATUTORY_2026]:
        assert day in by_day, day
        assert by_day[day].kind == HOLIDAY, day
    # Eleven statutory days in 2025, twelve from 2026 (24/11 added).
    assert sum(1 for d in by_day.values() if d.day.year == 2025 and d.kind == HOLIDAY) == 11
    assert sum(1 for d in by_day.values() if d.day.year == 2026 and d.kind == HOLIDAY) == 12


def test_seed_swaps_are_balanced_and_on_weekends() -> None:
    days = load_seed_days()
    make_up = sorted(d.day for d in days if d.kind == MAKE_UP_DAY)
    assert make_up == [date(2025, 4, 26), date(2026, 1, 10), date(2026, 8, 22)]
    assert all(d.weekday() >= 5 for d in make_up)
    swapped_off = sorted(d.day for d in days if d.kind == DAY_OFF and "hoán đổi" in d.name)
    assert swapped_off == [date(2025, 5, 2), date(2026, 1, 2), date(2026, 8, 31)]


def test_seed_2027_is_provisional_and_published_years_are_not() -> None:
    days = load_seed_days()
    assert all(d.provisional for d in days if d.day.year == 2027)
    assert not any(d.provisional for d in days if d.day.year in (2025, 2026))
    assert all(d.source for d in days)


def test_every_holidays_package_day_is_a_non_working_day() -> None:
    """Cross-check with the `holidays` package: each day it lists for VN must be off in our calendar.

    The reverse is not required: the package models the Labour Code and a few published swaps,
    not every civil-servant schedule. Known extra days off in our seed that it lacks are listed.
    """
    cal = WorkingCalendar(load_seed_days())
    listed = holidays.country_holidays("VN", years=(2025, 2026, 2027))
    assert listed, "holidays package returned nothing for VN"
    working = {day: name for day, name in listed.items() if cal.is_working_day(day)}
    assert working == {}

    all_days = {
        date(2025, 1, 1) + timedelta(days=i) for i in range((date(2027, 1, 1) - date(2025, 1, 1)).days)
    }
    extra = sorted(d for d in all_days if d.weekday() < 5 and not cal.is_working_day(d) and d not in listed)
    # 2/1/2026: New Year swap (12729/VPCP-KGVX, 25/12/2025), not in holidays 0.109.
    assert extra == [date(2026, 1, 2)]
