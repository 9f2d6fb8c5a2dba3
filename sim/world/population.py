"""The user population: static per-user attributes drawn once per run.

Why separate: everything that does not change during the period (platform, time zone, how chatty a
user is, how often they open the app, whether the app keeps a background socket) is drawn here from its own random stream, so
that changing, say, the message model does not reshuffle who is on iOS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.rng import Streams
from sim.scenario import Scenario

ANDROID, IOS = 0, 1
MS = 1000


def lognormal_mean_one(rng: np.random.Generator, sigma: float, size: int) -> np.ndarray:
    """Log-normal multipliers with mean exactly 1 in expectation (mu = -sigma^2 / 2)."""
    if sigma == 0:
        return np.ones(size)
    return rng.lognormal(-0.5 * sigma * sigma, sigma, size)


@dataclass
class Population:
    n: int
    active: np.ndarray  # bool: uses the app in this period at all
    active_ids: np.ndarray  # int64 ids of active users (recipients are drawn from these)
    platform: np.ndarray  # int8: ANDROID / IOS
    tz_ms: np.ndarray  # int64: UTC offset in ms
    msg_mult: np.ndarray  # float64: per-user message-rate multiplier, mean 1
    keeps_socket: np.ndarray  # bool: Android app keeps a background socket until Doze
    push_phase_ms: np.ndarray  # int64: phase of the user's push-throttle slots
    session_mult: np.ndarray  # float64: per-user foreground-session-rate multiplier, mean 1

    @classmethod
    def draw(cls, sc: Scenario, streams: Streams) -> Population:
        rng = streams.generator("population")
        n = sc.population.users
        active = rng.random(n) < sc.population.monthly_active_fraction
        mix = sc.population.device_mix
        platform = (rng.random(n) < mix["ios"]).astype(np.int8)
        tz = sc.population.timezones
        offsets = np.array(list(tz.keys()), dtype=np.float64)
        weights = np.array(list(tz.values()), dtype=np.float64)
        tz_h = rng.choice(offsets, size=n, p=weights / weights.sum())
        tz_ms = np.round(tz_h * 3600 * MS).astype(np.int64)
        msg_mult = lognormal_mean_one(rng, sc.messaging.rate_sigma, n)
        keeps = (platform == ANDROID) & (rng.random(n) < sc.os.android.keeps_background_socket)
        phase = (rng.random(n) * 86_400 * MS).astype(np.int64)
        # drawn last so that adding it left every earlier attribute of a seed unchanged
        sess_mult = lognormal_mean_one(rng, sc.activity.session_rate_sigma, n)
        return cls(n, active, np.flatnonzero(active).astype(np.int64), platform, tz_ms, msg_mult, keeps, phase,
                   sess_mult)
