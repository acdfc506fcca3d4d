"""The project's clock. Every due date, timer and audit time reads it, never ``datetime.now``.

In test mode the clock can be moved (``set_now``); the offset is process-local and is shared
through the ``setting`` table so that web and worker processes agree (``engine.jobs``).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

_lock = threading.Lock()
_offset = timedelta(0)
_frozen: datetime | None = None
SETTING_KEY = "clock_offset_seconds"


def now() -> datetime:
    """The current moment (aware, UTC), shifted by the test offset if one is set."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC) + _offset


def freeze(moment: datetime) -> None:
    """Stop the clock at ``moment`` (tests); ``reset`` lets it run again."""
    global _frozen
    if moment.tzinfo is None:
        raise ValueError("the clock needs an aware datetime")
    _frozen = moment.astimezone(UTC)


def set_now(moment: datetime) -> timedelta:
    """Move the clock so that ``now()`` returns ``moment`` at this instant; returns the offset."""
    if moment.tzinfo is None:
        raise ValueError("the clock needs an aware datetime")
    return set_offset(moment - datetime.now(UTC))


def set_offset(offset: timedelta) -> timedelta:
    global _offset
    with _lock:
        _offset = offset
    return offset


def offset() -> timedelta:
    return _offset


def reset() -> None:
    global _frozen
    _frozen = None
    set_offset(timedelta(0))
