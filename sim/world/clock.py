"""The world's clock and calendar, the same for both engines.

Times are int milliseconds from the clock's zero, ``warmup_days`` before the billing period starts (the
period begins in steady state; the warm-up is cut off the book). ``day_starts`` are the period's calendar
days in its time zone on that clock; ``utc_at_zero`` is the UTC time of day at zero, so that users' local
clocks fall on the right hours whatever minute and offset the period starts at.

Who uses the app on which day is part of the calendar too: every active user surely on one day of the
period (so MAU is the active users), and on each other day with the probability that keeps
``dau_over_mau``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

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
        return cls(days, warm, offset, warm + days, (warm + days) * DAY_MS, utc0, day_starts)


def active_days(sc: Scenario, active_ids: np.ndarray, n_users: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Each active user's sure day of the period (-1 for the others), and the probability of each other day."""
    days = sc.simulation.days
    sure = np.full(n_users, -1, dtype=np.int64)
    sure[active_ids] = rng.integers(0, days, active_ids.size)
    q = sc.population.dau_over_mau
    p_other = 1.0 if days == 1 else max(0.0, (q - 1.0 / days) / (1.0 - 1.0 / days))
    return sure, p_other
