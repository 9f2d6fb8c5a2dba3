"""What the mobile OS lets the app do when it is off screen.

* iOS suspends the app ``bg_socket_lifetime_s`` (5 s) after backgrounding, or after a background task
  (~30 s); the socket then dies silently. Only pushes wake it (PF §4.2).
* Android: most apps are frozen 10 s after becoming cached (Android 14+ freezer); the socket dies.
  A share of apps keep a background socket (foreground service, older OS): they stay connected with
  heartbeats until Doze cuts the network, then reconnect in every maintenance window. Light Doze
  starts 4 min after screen-off with idle periods 5, 10, 15, 15 ... min and 1-min windows; if the
  device lies still, deep Doze starts after 60 min with idle periods 1, 2, 4, 6, 6 ... h and windows
  of 5 then 10 min (AOSP DeviceIdleController defaults, PF §4.1).

The Doze schedule after a screen-off is deterministic, so it is precomputed once as a *template* of
windows relative to screen-off; a day's background connections are the template windows that start
in that day, clipped at the next screen-on. No per-device process is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.scenario import Android, OsModel
from sim.world.population import IOS, Population
from sim.world.timeline import NEVER, Intervals

S = 1000


def linger_ms(rng: np.random.Generator, pop: Population, users: np.ndarray, osm: OsModel) -> np.ndarray:
    """How long each backgrounding user's socket survives after the screen goes off."""
    ios = pop.platform[users] == IOS
    out = np.full(users.size, int(osm.android.bg_socket_lifetime_s * S), dtype=np.int64)
    ios_ms = int(osm.ios.bg_socket_lifetime_s * S)
    if osm.ios.background_task_fraction > 0:
        task = rng.random(users.size) < osm.ios.background_task_fraction
        ios_ms_arr = np.where(task, int(max(osm.ios.background_task_s, osm.ios.bg_socket_lifetime_s) * S), ios_ms)
        out = np.where(ios, ios_ms_arr, out)
    else:
        out = np.where(ios, ios_ms, out)
    # apps that keep a background socket are covered by the Doze template (window 0 = pre-Doze)
    return np.where(pop.keeps_socket[users], 0, out)


@dataclass(frozen=True)
class DozeTemplate:
    """Windows (ms relative to screen-off) in which a background-socket app is connected."""

    start: np.ndarray
    end: np.ndarray

    @classmethod
    def build(cls, a: Android, stationary: bool, horizon_ms: int) -> DozeTemplate:
        starts: list[float] = [0.0]
        ends: list[float] = [a.light_after_inactive_s]
        t = a.light_after_inactive_s
        idle = a.light_idle_s
        deep_at = a.deep_after_inactive_s if stationary else float("inf")
        horizon = horizon_ms / S
        while t < min(deep_at, horizon):
            t += idle
            if t >= deep_at:
                break
            starts.append(t)
            ends.append(min(t + a.light_maintenance_s, deep_at))
            t += a.light_maintenance_s
            idle = min(idle * a.light_idle_factor, a.light_max_idle_s)
        if stationary:
            t = deep_at
            idle, maint = a.deep_idle_s, a.deep_maintenance_s
            while t < horizon:
                t += idle
                starts.append(t)
                ends.append(t + maint)
                t += maint
                idle = min(idle * a.deep_idle_factor, a.deep_max_idle_s)
                maint = min(maint * 2, a.deep_max_maintenance_s)
        st = np.round(np.array(starts) * S).astype(np.int64)
        en = np.round(np.array(ends) * S).astype(np.int64)
        keep = en > st
        return cls(st[keep], en[keep])


def background_windows(tpl: DozeTemplate, user: np.ndarray, off: np.ndarray, on: np.ndarray,
                       lo: int, hi: int, cause: int) -> Intervals:
    """Template windows after each screen-off ``off`` that start in ``[lo, hi)`` and before ``on``.

    Windows are clipped at the next screen-on ``on`` (``NEVER`` if not known yet: a later screen-on
    that falls inside the window simply merges with it).
    """
    if user.size == 0:
        return Intervals.empty()
    rel_lo = np.maximum(lo, off) - off
    rel_hi = np.minimum(hi, on) - off
    i0 = np.searchsorted(tpl.start, rel_lo, side="left")
    i1 = np.searchsorted(tpl.start, np.maximum(rel_hi, 0), side="left")
    n = np.maximum(i1 - i0, 0)
    rep = np.repeat(np.arange(user.size), n)
    k = np.arange(rep.size) - np.repeat(np.cumsum(n) - n, n) + i0[rep]
    st = off[rep] + tpl.start[k]
    en = np.minimum(off[rep] + tpl.end[k], np.where(on[rep] == NEVER, NEVER, on[rep]))
    return Intervals.new(user[rep], st, en, cause)
