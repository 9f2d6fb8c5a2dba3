"""The world's clock and calendar, the same for both engines.

Times are int milliseconds from the clock's zero, ``warmup_days`` before the billing period starts (the
period begins in steady state; the warm-up is cut off the book). ``day_starts`` are the period's calendar
days in its time zone on that clock; ``utc_at_zero`` is the UTC time of day at zero, so that users' local
clocks fall on the right hours whatever minute and offset the period starts at.

Who uses the app on which day is part of the calendar too: every active user surely on one day of each
billing month (so each month's MAU is the active users), and on each other day with the probability that
keeps ``dau_over_mau``.

A run of ``simulation.months`` is one clock over all the months: ``month_starts`` marks where each billing
month begins (its MAU starts afresh there, sim/world/connections.py), and nothing else in the world sees
the boundary - connections, stored messages and sessions carry across it as across any midnight.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from sim.pricing.period import Period
from sim.scenario import Scenario

DAY_MS = 86_400_000


@dataclass(frozen=True)
class WorldClock:
    days: int                # days of the billing period
    warm: int                # warm-up days before it
    offset: int              # ms of the period start on the clock
    total_days: int
    period_end: int          # ms
    utc_at_zero: int         # ms of the UTC day at clock zero
    day_starts: np.ndarray   # int64 ms of each calendar day of the period (its zone)
    month_starts: np.ndarray  # int64 ms of each billing month's start, and the period end (two values: one period)
    month_of_day: np.ndarray  # int64: the billing month of each period day (24 h from the start)

    @classmethod
    def of(cls, sc: Scenario) -> WorldClock:
        s = sc.simulation
        days, warm = s.days, s.warmup_days
        start = s.start
        offset = warm * DAY_MS
        utc0 = ((start.hour * 60 + start.minute) * 60 + start.second) * 1000 + start.microsecond // 1000
        period = Period.create(start, start + timedelta(days=days), s.tz or "UTC")
        day_starts = offset + np.array([round((d - period.start).total_seconds() * 1000) for d in period.day_starts],
                                       dtype=np.int64)
        bounds = month_bounds(start, s.months, s.tz) if s.months else [period.start, period.end]
        month_starts = offset + np.array([round((b - period.start).total_seconds() * 1000) for b in bounds],
                                         dtype=np.int64)
        month_of_day = np.searchsorted(month_starts, offset + np.arange(days) * DAY_MS, side="right") - 1
        return cls(days, warm, offset, warm + days, (warm + days) * DAY_MS, utc0, day_starts, month_starts,
                   month_of_day.astype(np.int64))


def month_bounds(start: datetime, months: int, tz: str | None) -> list[datetime]:
    """``months + 1`` instants: ``start`` and the same day and time of each following month (in ``tz``).

    Each is a whole number of days after ``start``, so every simulated day lies in one billing month (a zone
    whose clocks change between them does not allow that: the error says to use a fixed offset)."""
    from sim.pricing.period import parse_zone

    zone = parse_zone(tz or "UTC")
    local = start.astimezone(zone)
    if local.day > 28:
        raise ValueError(f"months: start {local.date()} is on day {local.day}; calendar months need a start on "
                         "day 1-28")
    out = []
    for k in range(months + 1):
        y, m = divmod(local.month - 1 + k, 12)
        out.append(local.replace(year=local.year + y, month=m + 1))
    for b in out[1:]:
        if (b - out[0]).total_seconds() % 86_400:
            raise ValueError(f"months: the month starting {b.isoformat()} is not a whole number of days after start in "
                             f"zone {tz} (a daylight-saving change); give a fixed offset such as +01:00")
    return out


def active_days(sc: Scenario, active_ids: np.ndarray, n_users: int, rng: np.random.Generator,
                clock: WorldClock | None = None, presence=None) -> tuple[np.ndarray, np.ndarray]:
    """Each active user's sure day of each billing month, ``(months, users)`` (-1 for the others), and the
    probability of each other day in each month (``(months,)``: with the sure day, a share ``dau_over_mau`` of
    the month's days, whatever its length; so a month of a longer run is the same as that month run alone).

    One period: row 0 holds the draws of ``rng.integers(0, days, active)``, as it always did. A growing app
    (``presence``, sim/world/presence.py): the sure day is one of the days the user is present in the month (-1
    when it is not present at all), drawn from a uniform so that presence changes only whose day moves."""
    days = sc.simulation.days
    clock = clock or WorldClock.of(sc)
    firsts = np.flatnonzero(np.r_[True, np.diff(clock.month_of_day) != 0])
    lengths = np.diff(np.r_[firsts, days])
    sure = np.full((firsts.size, n_users), -1, dtype=np.int64)
    if presence is not None:
        first_day = _day_index(presence.join[active_ids], clock, 0)
        last_day = _day_index(presence.leave[active_ids] - 1, clock, days - 1)
    for m, (first, length) in enumerate(zip(firsts, lengths, strict=True)):
        if presence is None:
            sure[m, active_ids] = first + rng.integers(0, length, active_ids.size)
            continue
        lo = np.maximum(first_day, first)
        hi = np.minimum(last_day, first + length - 1)
        pick = lo + np.floor(rng.random(active_ids.size) * np.maximum(hi - lo + 1, 0)).astype(np.int64)
        sure[m, active_ids] = np.where(hi >= lo, pick, -1)
    q = sc.population.dau_over_mau
    p_other = np.array([1.0 if n == 1 else max(0.0, (q - 1.0 / n) / (1.0 - 1.0 / n)) for n in lengths])
    return sure, p_other


def _day_index(t_ms: np.ndarray, clock: WorldClock, default: int) -> np.ndarray:
    """The period day (24 h from the start) holding world time ``t_ms``, clipped to the period."""
    d = np.floor_divide(np.asarray(t_ms, dtype=np.int64) - clock.offset, DAY_MS)
    return np.clip(d, 0, clock.days - 1) if default == 0 else np.clip(d, -1, clock.days - 1)
