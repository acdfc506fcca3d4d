"""Vietnamese working-day calendar: legal due moments for dossiers (hồ sơ) and tasks.

Pure Python, no database and no Flask. The holiday table is data: `load_seed_days()` reads the
seed shipped in `engine/data/holidays_vn.yaml`; in a deployment the admin-edited table is passed
to `WorkingCalendar(days)` instead.

Rules implemented here (see DESIGN.md, "Law the engine must follow"):
- Working days are Monday to Friday, minus public holidays (Labour Code 2019 art. 112),
  compensatory days off (art. 111(3)) and days off granted by the government's yearly schedule,
  plus Saturdays or Sundays that the schedule makes working days (ngày làm bù).
- The day of receipt is not counted; a deadline on a non-working day moves to the next working day.
- Online dossiers received outside office hours or on a day off count from the next working day.
- Same-day procedures received after 15:00 are due the next working day.

Vietnam has had no daylight saving time since 1975, so a fixed UTC+07:00 offset is exact.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from importlib import resources
from typing import Any

import yaml

VN_TZ: tzinfo = timezone(timedelta(hours=7), "ICT")

HOLIDAY = "holiday"
DAY_OFF = "day_off"
MAKE_UP_DAY = "make_up_day"
KINDS = frozenset({HOLIDAY, DAY_OFF, MAKE_UP_DAY})

SEED_RESOURCE = "data/holidays_vn.yaml"

# A calendar with no working day for ten years is a data error, not a reason to loop forever.
_MAX_SCAN_DAYS = 3660
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class CalendarDay:
    """One exception to the Monday–Friday week: a day off or a make-up working day.

    `kind` is "holiday" (public holiday, Labour Code 2019 art. 112), "day_off" (ngày nghỉ bù or a
    day off granted by the government's schedule) or "make_up_day" (ngày làm bù: a Saturday or
    Sunday that is a working day because of a swap). `provisional` marks rows computed before the
    government published the year's schedule; `source` says where the row comes from.
    """

    day: date
    kind: str
    name: str
    source: str = ""
    provisional: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.day, datetime) or not isinstance(self.day, date):
            raise ValueError(f"CalendarDay.day must be a date, got {self.day!r}")
        if self.kind not in KINDS:
            raise ValueError(f"CalendarDay.kind must be one of {sorted(KINDS)}, got {self.kind!r}")
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"CalendarDay for {self.day.isoformat()} needs a name")
        if self.kind == MAKE_UP_DAY and self.day.weekday() < 5:
            raise ValueError(
                f"make_up_day {self.day.isoformat()} is a weekday; a make-up day must be a Saturday or Sunday"
            )


def parse_days(raw: Any) -> list[CalendarDay]:
    """Turn the parsed YAML document (a mapping with a `days` list) into validated CalendarDay rows."""
    if not isinstance(raw, dict) or not isinstance(raw.get("days"), list):
        raise ValueError("holiday table must be a mapping with a 'days' list")
    result: list[CalendarDay] = []
    for index, entry in enumerate(raw["days"]):
        if not isinstance(entry, dict):
            raise ValueError(f"days[{index}] must be a mapping, got {entry!r}")
        unknown = set(entry) - {"day", "kind", "name", "source", "provisional"}
        if unknown:
            raise ValueError(f"days[{index}] has unknown keys {sorted(unknown)}")
        value = entry.get("day")
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value)
            except ValueError as exc:
                raise ValueError(f"days[{index}].day is not YYYY-MM-DD: {value!r}") from exc
        provisional = entry.get("provisional", False)
        if not isinstance(provisional, bool):
            raise ValueError(f"days[{index}].provisional must be true or false")
        result.append(
            CalendarDay(
                day=value,  # type: ignore[arg-type]  # validated in __post_init__
                kind=entry.get("kind"),  # type: ignore[arg-type]
                name=entry.get("name"),  # type: ignore[arg-type]
                source=str(entry.get("source") or ""),
                provisional=provisional,
            )
        )
    return result


def load_seed_days() -> list[CalendarDay]:
    """Read the seed holiday table shipped with the engine (engine/data/holidays_vn.yaml)."""
    text = resources.files("engine").joinpath(SEED_RESOURCE).read_text(encoding="utf-8")
    return parse_days(yaml.safe_load(text))


def to_vn(moment: datetime) -> datetime:
    """Return `moment` in Vietnam time; a naive datetime is taken to be Vietnam local time already."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=VN_TZ)
    return moment.astimezone(VN_TZ)


def parse_iso(value: str) -> datetime:
    """Parse an ISO-8601 date-time; without an offset it is Vietnam time. Always returns an aware datetime.

    An explicit offset (including "Z") is kept as given; compare or convert with `to_vn` as needed.
    """
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError(f"not an ISO-8601 date-time: {value!r}") from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return parsed.replace(tzinfo=VN_TZ)
    return parsed


def _weekdays_before(d: date) -> int:
    """Number of Monday–Friday dates strictly before `d`, counted from date.min (an arbitrary epoch)."""
    ordinal = d.toordinal() - 1  # date(1, 1, 1) is a Monday and has ordinal 1
    weeks, rest = divmod(ordinal, 7)
    return weeks * 5 + min(rest, 5)


class WorkingCalendar:
    """Working days and office hours of a Vietnamese state agency, with the legal due-date rules."""

    def __init__(
        self,
        days: Iterable[CalendarDay] = (),
        *,
        cutoff: time = time(15, 0),
        morning: tuple[time, time] = (time(7, 30), time(11, 30)),
        afternoon: tuple[time, time] = (time(13, 0), time(17, 0)),
    ) -> None:
        bounds = (morning[0], morning[1], afternoon[0], afternoon[1], cutoff)
        if any(t.tzinfo is not None for t in bounds):
            raise ValueError("office hours and cutoff are Vietnam wall-clock times: pass naive times")
        if not (morning[0] < morning[1] <= afternoon[0] < afternoon[1]):
            raise ValueError(
                "office hours must be ordered: morning start < morning end <= afternoon start < afternoon end"
            )
        if not (morning[0] <= cutoff <= afternoon[1]):
            raise ValueError("the same-day cutoff must fall inside office hours")
        self.cutoff = cutoff
        self.morning = morning
        self.afternoon = afternoon
        self.office_close = afternoon[1]

        self._entries: dict[date, CalendarDay] = {}
        self._override: dict[date, bool] = {}
        removed: list[date] = []  # weekdays that are not working days
        added: list[date] = []  # weekend days that are working days
        for entry in days:
            if entry.day in self._entries:
                raise ValueError(f"day {entry.day.isoformat()} appears twice in the holiday table")
            self._entries[entry.day] = entry
            working = entry.kind == MAKE_UP_DAY
            self._override[entry.day] = working
            if working:
                added.append(entry.day)
            elif entry.day.weekday() < 5:
                removed.append(entry.day)
        self._removed = sorted(removed)
        self._added = sorted(added)

    # -- days ---------------------------------------------------------------------------------

    def entry(self, d: date) -> CalendarDay | None:
        """The holiday-table row for `d` (to show "Nghỉ bù Quốc khánh" and the like), or None."""
        return self._entries.get(d)

    def is_working_day(self, d: date) -> bool:
        """Monday–Friday minus holidays and days off, plus make-up days."""
        if isinstance(d, datetime):
            d = to_vn(d).date()
        override = self._override.get(d)
        if override is not None:
            return override
        return d.weekday() < 5

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after `d`."""
        for _ in range(_MAX_SCAN_DAYS):
            d += _ONE_DAY
            if self.is_working_day(d):
                return d
        raise ValueError(f"no working day within {_MAX_SCAN_DAYS} days after {d.isoformat()}")

    def previous_working_day(self, d: date) -> date:
        """The last working day strictly before `d`."""
        for _ in range(_MAX_SCAN_DAYS):
            d -= _ONE_DAY
            if self.is_working_day(d):
                return d
        raise ValueError(f"no working day within {_MAX_SCAN_DAYS} days before {d.isoformat()}")

    def working_days_in(self, start: date, end: date) -> int:
        """Number of working days in the half-open range [start, end); 0 when end <= start."""
        if end <= start:
            return 0
        count = _weekdays_before(end) - _weekdays_before(start)
        count -= bisect_left(self._removed, end) - bisect_left(self._removed, start)
        count += bisect_left(self._added, end) - bisect_left(self._added, start)
        return count

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after `start` (start itself not counted); n=0 returns start."""
        _check_count("n", n, minimum=0)
        d = start
        for _ in range(n):
            d = self.next_working_day(d)
        return d

    # -- moments ------------------------------------------------------------------------------

    def receipt_day(self, received: datetime) -> date:
        """The day a dossier counts as received, in Vietnam time.

        Decree 61/2018 (as amended by Decree 107/2021) and Decree 45/2020: a dossier submitted
        online outside office hours, on a weekend or on a holiday counts from the next working day.
        Before opening on a working day it counts for that same day.
        """
        local = to_vn(received)
        d = local.date()
        # The office is closed from afternoon end onwards: 17:00:00 sharp is already outside hours.
        if not self.is_working_day(d) or local.time() >= self.office_close:
            return self.next_working_day(d)
        return d

    def due(
        self,
        received: datetime,
        *,
        working_days: int = 0,
        same_day: bool = False,
        hours: float | None = None,
        calendar_days: int | None = None,
    ) -> datetime:
        """The legal due moment (aware, Vietnam time) for a dossier or step received at `received`.

        Exactly one limit applies: `working_days` > 0, `same_day`, `hours` or `calendar_days`.
        A supplement request stops the clock and the full legal time counts again from the moment
        the complete dossier arrives (Decree 61/2018), so a restart is `due(resumed_at, ...)`.
        """
        chosen = _check_limits(working_days, same_day, hours, calendar_days)
        local = to_vn(received)
        if chosen == "working_days":
            # Decree 61/2018: counted in working days, the day of receipt not counted.
            d = self.add_working_days(self.receipt_day(local), working_days)
            return self._close_of(d)
        if chosen == "same_day":
            d = local.date()
            # Same-day procedures (Decree 23/2015 art. 7 for certification; the published civil-status
            # procedures): received after 15:00, due the next working day. A day off counts as the next.
            if not self.is_working_day(d) or local.time() > self.cutoff:
                d = self.next_working_day(d)
            return self._close_of(d)
        if chosen == "hours":
            assert hours is not None
            return self._add_office_hours(local, timedelta(hours=hours))
        assert calendar_days is not None
        d = local.date() + timedelta(days=calendar_days)
        if not self.is_working_day(d):
            # A deadline falling on a non-working day moves to the next working day.
            d = self.next_working_day(d)
        return self._close_of(d)

    def working_days_left(self, now: datetime, due: datetime) -> int:
        """Whole working days from `now`'s Vietnam date to `due`'s (0 today, 1 next working day, < 0 overdue).

        A due date on a non-working day is read as the next working day (that is when it really
        falls due). Overdue counts the working days already used up since the due day, so −1 is
        "due the previous working day", also when `now` is a weekend day.
        """
        today = to_vn(now).date()
        due_day = to_vn(due).date()
        if not self.is_working_day(due_day):
            due_day = self.next_working_day(due_day)
        if due_day == today:
            return 0
        if due_day > today:
            return self.working_days_in(today + _ONE_DAY, due_day + _ONE_DAY)
        return -self.working_days_in(due_day, today)

    def warning_moment(self, due: datetime) -> datetime:
        """The apology deadline: the same clock time one working day before `due`.

        Decree 61/2018 art. 19: a late processing side must issue the apology (Mẫu 04) no later
        than 1 working day before the deadline. For a same-day dossier this can be in the past.
        """
        local = to_vn(due)
        previous = self.previous_working_day(local.date())
        return datetime.combine(previous, local.timetz())

    # -- helpers ------------------------------------------------------------------------------

    def _close_of(self, d: date) -> datetime:
        return datetime.combine(d, self.office_close, tzinfo=VN_TZ)

    def _add_office_hours(self, start: datetime, remaining: timedelta) -> datetime:
        """Walk forward from `start`, spending `remaining` only inside office windows of working days."""
        windows = (self.morning, self.afternoon)
        day = start.date()
        clock = start.timetz().replace(tzinfo=None)
        for _ in range(_MAX_SCAN_DAYS * 2):
            if self.is_working_day(day):
                for opens, closes in windows:
                    if clock >= closes:
                        continue
                    begin = datetime.combine(day, max(clock, opens), tzinfo=VN_TZ)
                    end = datetime.combine(day, closes, tzinfo=VN_TZ)
                    available = end - begin
                    if remaining <= available:
                        return begin + remaining
                    remaining -= available
                    clock = closes
            day = self.next_working_day(day)
            clock = time.min
        raise ValueError("hour limit does not fit in the calendar")  # pragma: no cover


def _check_count(label: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{label} must be a whole number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{label} must be >= {minimum}, got {value}")


def _check_limits(working_days: int, same_day: bool, hours: float | None, calendar_days: int | None) -> str:
    """Validate the keyword limits of `WorkingCalendar.due` and name the one that applies."""
    _check_count("working_days", working_days, minimum=0)
    if not isinstance(same_day, bool):
        raise ValueError(f"same_day must be True or False, got {same_day!r}")
    if hours is not None:
        if isinstance(hours, bool) or not isinstance(hours, int | float):
            raise ValueError(f"hours must be a number, got {hours!r}")
        if not math.isfinite(hours) or hours <= 0:
            raise ValueError(f"hours must be a positive number, got {hours!r}")
    if calendar_days is not None:
        _check_count("calendar_days", calendar_days, minimum=1)
    chosen = [
        name
        for name, applies in (
            ("working_days", working_days > 0),
            ("same_day", same_day),
            ("hours", hours is not None),
            ("calendar_days", calendar_days is not None),
        )
        if applies
    ]
    if len(chosen) != 1:
        given = ", ".join(chosen) if chosen else "none"
        raise ValueError(
            "give exactly one time limit: working_days > 0, same_day=True, hours or calendar_days "
            f"(given: {given})"
        )
    return chosen[0]
