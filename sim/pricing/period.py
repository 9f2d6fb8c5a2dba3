"""Billing periods and series intervals.

A period is ``[start, end)`` in a time zone (UTC unless one is given). Series carry one value per
interval from the period's start. Two kinds of interval exist because the seeds need both:

* fixed ones (``30s``, ``1min``, ``15min``, ``1h``): a whole number of them must fit the period;
* ``1d``: one value per *calendar day* in the period's time zone (a day with a daylight-saving
  change is 23 or 25 hours long, and is still one day). Billing conventions: "averages per day use
  the calendar days of the period; a month of 30 days has 30 daily figures".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

_INTERVAL = re.compile(r"^\s*(\d+)\s*(s|sec|min|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Interval:
    """A series interval: ``seconds`` long, or one calendar day when ``daily`` is true."""

    text: str
    seconds: int
    daily: bool

    @staticmethod
    def parse(text: str) -> Interval:
        match = _INTERVAL.match(str(text))
        if not match:
            raise ValueError(f"interval {text!r} is not one of the forms 30s, 1min, 15min, 1h, 1d")
        n, unit = int(match.group(1)), match.group(2)
        if n <= 0:
            raise ValueError(f"interval {text!r} must be positive")
        if unit == "d":
            if n != 1:
                raise ValueError(f"interval {text!r}: only 1d (one calendar day) is supported")
            return Interval(text.strip(), 86400, True)
        return Interval(text.strip(), n * _UNIT_SECONDS[unit], False)


def parse_time(value, tz: ZoneInfo, what: str) -> datetime:
    """A date or datetime (object or ISO string) as an aware datetime; naive ones are in ``tz``."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime.combine(value, time())
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{what}: {value!r} is not an ISO date or date-time") from None
    else:
        raise ValueError(f"{what}: expected an ISO date or date-time, got {type(value).__name__}")
    return dt.replace(tzinfo=tz) if dt.tzinfo is None else dt


_OFFSET = re.compile(r"^(?:UTC)?([+-])(\d{2}):?(\d{2})$")


def parse_zone(name: str | None) -> tzinfo:
    """An IANA zone (``Europe/Berlin``) or a fixed UTC offset (``+01:00``, ``-0800``, ``UTC+05:30``)."""
    m = _OFFSET.match(name or "")
    if m:
        sign, hh, mm = m.groups()
        if int(hh) > 23 or int(mm) > 59:
            raise ValueError(f"unknown time zone {name!r}")
        off = timedelta(hours=int(hh), minutes=int(mm)) * (1 if sign == "+" else -1)
        return timezone(off, name) if off else UTC
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def zone_name(tz: tzinfo) -> str:
    """What a usage file's ``period.tz`` says for ``tz`` (``parse_zone`` reads it back)."""
    return getattr(tz, "key", None) or tz.tzname(None) or "UTC"


def _elapsed(a: datetime, b: datetime) -> float:
    """Seconds from ``a`` to ``b``. Through UTC: Python subtracts datetimes that share a tzinfo as wall-clock
    times, which is an hour off across a daylight-saving change."""
    return (b.astimezone(UTC) - a.astimezone(UTC)).total_seconds()


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in time zone ``tz``. All arithmetic on it is done in UTC."""

    start: datetime
    end: datetime
    tz: tzinfo

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"end {self.end.isoformat()} is not after start {self.start.isoformat()}")

    @staticmethod
    def create(start, end, tz: str | None = None) -> Period:
        zone = parse_zone(tz)
        return Period(parse_time(start, zone, "start"), parse_time(end, zone, "end"), zone)

    @property
    def seconds(self) -> float:
        return _elapsed(self.start, self.end)

    @cached_property
    def day_starts(self) -> list[datetime]:
        """Start of each calendar day (local midnight, or the period start for the first day)."""
        local_start = self.start.astimezone(self.tz)
        starts = [self.start]
        day = local_start.date() + timedelta(days=1)
        while True:
            midnight = datetime.combine(day, time(), tzinfo=self.tz)
            if midnight >= self.end:
                return starts
            starts.append(midnight)
            day += timedelta(days=1)

    @property
    def days(self) -> int:
        return len(self.day_starts)

    def length(self, interval: Interval) -> int:
        """How many values a series with ``interval`` must have; ValueError if it does not fit."""
        if interval.daily:
            return self.days
        n, rest = divmod(self.seconds, interval.seconds)
        if rest:
            raise ValueError(
                f"a {interval.text} interval does not divide the period ({self.seconds:.0f} s) evenly"
            )
        return int(n)

    def interval_start(self, interval: Interval, index: int) -> datetime:
        if interval.daily:
            return self.day_starts[index]
        return self.at(interval.seconds * index)

    def interval_end(self, interval: Interval, index: int) -> datetime:
        if interval.daily:
            starts = self.day_starts
            return starts[index + 1] if index + 1 < len(starts) else self.end
        return min(self.end, self.at(interval.seconds * (index + 1)))

    def at(self, seconds: float) -> datetime:
        """The instant ``seconds`` after the start, in the period's time zone."""
        return (self.start.astimezone(UTC) + timedelta(seconds=seconds)).astimezone(self.tz)

    def day_bounds(self, interval: Interval) -> np.ndarray:
        """Index of the first value of each calendar day in a series with ``interval``.

        For ``1d`` series this is simply ``0..days-1``. For fixed intervals, a value belongs to the
        day in which its interval starts.
        """
        if interval.daily:
            return np.arange(self.days)
        offsets = np.array([_elapsed(self.start, d) for d in self.day_starts])
        return np.ceil(offsets / interval.seconds).astype(np.int64)
