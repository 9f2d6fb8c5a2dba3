"""Foreground sessions: when users have the app on screen.

Each day every *day-active* user (probability ``dau_over_mau``) opens the app ``1 + Poisson((m - 1) x)``
times (mean ``sessions_per_dau_per_day`` = m; at least once, so DAU is exactly the day-active count), or
``Poisson(m x)`` times with ``min_one_session: false`` (then, for ``session_rate_sigma: 0``, session
starts are a Poisson process). ``x`` is the user's own log-normal multiplier with mean 1
(``session_rate_sigma``), drawn once per run: Falaki et al. found the mean number of phone interactions
per day to differ by a factor of ~20 between users (10-200, PF §4.4), so some users open the app a
couple of times a day and others a hundred times - the right tail of connections per user.
Start times follow the local-time diurnal curve shifted by the user's UTC offset and folded onto the
world's day (24 h from the period's start time), so every session of day d starts inside day d and a
day can be processed on its own. The fold is seamless: the rate of session starts is the same
just before and just after the world's midnight (tests/test_day_boundaries.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.scenario import Activity
from sim.world.distributions import launches, session_lengths
from sim.world.diurnal import diurnal_cdf, diurnal_weights, local_times  # noqa: F401 - re-exported
from sim.world.population import Population
from sim.world.timeline import KEY

DAY_MS = 86_400_000
MINUTE_MS = 60_000


@dataclass
class Sessions:
    """Foreground sessions of one day, sorted by (user, start)."""

    user: np.ndarray
    start: np.ndarray  # int64 ms
    dur: np.ndarray  # int64 ms (>= 1)

    @property
    def end(self) -> np.ndarray:
        return self.start + self.dur

    def first_index(self, n_users: int) -> tuple[np.ndarray, np.ndarray]:
        """Per user: index of the first session and number of sessions."""
        counts = np.bincount(self.user, minlength=n_users)
        first = np.cumsum(counts) - counts
        return first, counts


def draw_sessions(rng: np.random.Generator, pop: Population, users: np.ndarray, day_start: int,
                  act: Activity, cdf: np.ndarray, utc_at_zero_ms: int = 0,
                  prompted: np.ndarray | None = None, must: np.ndarray | None = None) -> Sessions:
    """Sessions starting in ``[day_start, day_start + 1 day)`` for the day-active ``users``.

    ``utc_at_zero_ms``: UTC time of day at world time 0 (a period may start at any minute), so that a
    user's local evening falls on the right UTC hours whatever the period's start. ``prompted``: per
    user, launches a day that notifications prompt (:class:`sim.world.mobile.push.PushState`); they are part
    of the user's launch rate, so the spontaneous ones drawn here are fewer by as many. ``must`` (bool per
    user of ``users``): users who surely open the app today (their sure day), whatever notifications prompt.
    """
    mult = pop.session_mult[users]  # per-user habit (log-normal, mean 1): light and heavy users
    less = np.zeros(users.size) if prompted is None else prompted[users]
    counts = launches(rng, act, mult, less, False if must is None else must)
    user = np.repeat(users, counts)
    m = user.size
    local = local_times(rng, cdf, m)
    start = day_start + np.mod(local - pop.tz_ms[user] - utc_at_zero_ms, DAY_MS)
    # sort by (user, start) on the packed key itself (cheaper than argsort + gathers); durations are
    # drawn afterwards, i.i.d., so they need no reordering
    key = np.sort(user * KEY + start)
    user = key // KEY
    start = key - user * KEY
    return Sessions(user, start, session_lengths(rng, act, m))
