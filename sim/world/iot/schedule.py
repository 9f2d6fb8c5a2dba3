"""Telemetry schedule of a tracker fleet in closed form: no event per message.

Why closed form: 10,000 trackers reporting every 30 s for 30 days send ~860 M messages. Each device's
timeline is cut into *segments* (parked / moving) on minute boundaries; inside a segment the device
reports at ``o + k*I`` (bi-infinite arithmetic progression, restricted to the segment) and, when the
report interval ``I`` is longer than the MQTT keep-alive ``K``, sends PINGREQs at ``r + K, r + 2K, ...``
after each report ``r`` while no other packet was sent (MQTT 3.1.1 §3.1.2.10: a control packet within
each keep-alive interval). Counting the points of a progression in ``[a, b)`` is two ceil-divisions,
so per-minute counts for a whole fleet are a handful of numpy operations, and so are exact counts in
arbitrary windows (a dropped connection, the seconds of a minute before a channel is suspended).

Rules (all times integer seconds from the period start, all intervals integer seconds):

* a state change (trip start or end) happens on a minute boundary and the tracker reports at once
  (the ignition-on / ignition-off event message trackers send), then every ``I`` of the new state;
* the first segment of the period continues a schedule that started before it: reports at ``phi + k*I``
  with a per-device phase ``phi`` in ``[0, I)``, and the keep-alive grid continues from the report at
  ``phi - I`` (steady state, not a cold start).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

I64 = np.int64


def ceil_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact integer ceil(a / b) for b > 0 (numpy's // floors towards -inf)."""
    return -((-a) // b)


@dataclass(frozen=True)
class Segments:
    """Per-device piecewise-constant report schedule, device-major and time-ordered.

    ``start``/``end`` are minutes; ``origin`` (seconds) is a report instant of the progression;
    ``interval`` the report period (s); ``pings`` the PINGREQs per report gap (``ceil(I/K) - 1``, >= 0).
    """

    dev: np.ndarray
    start: np.ndarray
    end: np.ndarray
    moving: np.ndarray
    origin: np.ndarray
    interval: np.ndarray
    pings: np.ndarray
    keepalive: int
    minutes: int

    @property
    def key(self) -> np.ndarray:
        return self.dev * self.minutes + self.start

    def lookup(self, dev: np.ndarray, minute: np.ndarray) -> np.ndarray:
        """Index of the segment holding ``minute`` of ``dev``."""
        return np.searchsorted(self.key, dev * self.minutes + minute, side="right") - 1

    def reports_upto(self, seg: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Reports of the progression before ``t`` (relative count; differences are exact counts)."""
        return ceil_div(t - self.origin[seg], self.interval[seg])

    def packets_upto(self, seg: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Reports + PINGREQs before ``t`` (relative count). In gap ``g`` the packets are at
        ``o + g*I + j*K`` for ``j = 0..J``; those before ``t`` number ``min(J+1, ceil(w/K))``."""
        interval = self.interval[seg]
        rel = t - self.origin[seg]
        gap = rel // interval
        w = rel - gap * interval
        per_gap = self.pings[seg] + 1
        return gap * per_gap + np.minimum(per_gap, ceil_div(w, I64(self.keepalive)))

    def window_counts(self, dev: np.ndarray, t0: np.ndarray, t1: np.ndarray, minute: np.ndarray):
        """(reports, pings) of ``dev`` in ``[t0, t1)``, a window inside ``minute``."""
        seg = self.lookup(dev, minute)
        rep = self.reports_upto(seg, t1) - self.reports_upto(seg, t0)
        pk = self.packets_upto(seg, t1) - self.packets_upto(seg, t0)
        return rep, pk - rep

    def grid(self, m0: int, m1: int, n_dev: int) -> tuple[np.ndarray, np.ndarray]:
        """(reports, pings) per device per minute for minutes ``[m0, m1)``, arrays ``(n_dev, m1 - m0)``.

        Float64 arithmetic on integer-valued times (< 2^31 s) and intervals: quotients that are whole
        are exact and others are at least 1/I away from a whole number, so floor/ceil are exact.
        """
        ov = (self.start < m1) & (self.end > m0)
        idx = np.flatnonzero(ov)
        lengths = np.minimum(self.end[idx], m1) - np.maximum(self.start[idx], m0)
        seg = np.repeat(idx, lengths)
        t0 = np.tile(np.arange(m0, m1, dtype=np.float64) * 60.0, n_dev) - self.origin[seg]
        interval = self.interval[seg].astype(np.float64)
        per_gap = self.pings[seg].astype(np.float64) + 1.0
        k = float(self.keepalive)

        def counts(rel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            gap = np.floor(rel / interval)
            w = rel - gap * interval
            return gap + (w > 0), gap * per_gap + np.minimum(per_gap, np.ceil(w / k))

        r0, p0 = counts(t0)
        r1, p1 = counts(t0 + 60.0)
        shape = (n_dev, m1 - m0)
        rep = (r1 - r0).astype(I64)
        return rep.reshape(shape), (p1 - p0).astype(I64).reshape(shape) - rep.reshape(shape)


def split_by_minute(t0: np.ndarray, t1: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut windows ``[t0, t1)`` (seconds, t0 < t1) into per-minute pieces.

    Returns ``(parent, minute, a, b)``: piece ``[a, b)`` of window ``parent`` lies in ``minute``.
    """
    t0 = np.asarray(t0, dtype=I64)
    t1 = np.asarray(t1, dtype=I64)
    keep = t1 > t0
    parent0 = np.flatnonzero(keep)
    lo = t0[keep] // 60
    hi = (t1[keep] - 1) // 60
    n = hi - lo + 1
    parent_rel = np.repeat(np.arange(len(lo)), n)
    first = np.repeat(np.cumsum(n) - n, n)
    minute = lo[parent_rel] + (np.arange(int(n.sum()), dtype=I64) - first)
    a = np.maximum(t0[keep][parent_rel], minute * 60)
    b = np.minimum(t1[keep][parent_rel], minute * 60 + 60)
    return parent0[parent_rel], minute, a, b


def trips(
    rng: np.random.Generator,
    n_dev: int,
    days: int,
    moving_fraction: float,
    trip_minutes_mean: float,
    hour_weights: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merged, non-overlapping trips ``(dev, start_min, end_min)`` sorted by device then time.

    Trip starts are Poisson with an hourly (local-time) shape; durations exponential. For an
    M/G/inf-style overlay the chance of being moving is ``1 - exp(-rate * mean_duration)``, so the
    daily start rate ``-ln(1 - f) / D`` makes the long-run moving fraction ``f`` (diurnally shaped).
    """
    minutes = days * 1440
    if moving_fraction <= 0.0:
        empty = np.zeros(0, dtype=I64)
        return empty, empty, empty
    if moving_fraction >= 1.0:
        dev = np.arange(n_dev, dtype=I64)
        return dev, np.zeros(n_dev, dtype=I64), np.full(n_dev, minutes, dtype=I64)
    per_day = -np.log1p(-moving_fraction) / trip_minutes_mean * 1440.0
    n = rng.poisson(per_day, size=(n_dev, days))
    total = int(n.sum())
    dev = np.repeat(np.repeat(np.arange(n_dev, dtype=I64), days), n.ravel())
    day = np.repeat(np.tile(np.arange(days, dtype=I64), n_dev), n.ravel())
    p = hour_weights / hour_weights.sum()
    hour = rng.choice(24, size=total, p=p)
    start = day * 1440 + hour * 60 + rng.integers(0, 60, size=total)
    dur = np.maximum(1, np.ceil(rng.exponential(trip_minutes_mean, size=total))).astype(I64)
    end = np.minimum(start + dur, minutes)
    order = np.lexsort((start, dev))
    dev, start, end = dev[order], start[order], end[order]
    if total == 0:
        return dev, start, end
    # Merge overlapping or touching trips of the same device: running max of ends per device.
    big = I64(minutes + 1)
    run_end = np.maximum.accumulate(dev * big + end) - dev * big
    prev_end = np.concatenate(([-1], run_end[:-1]))
    new = np.ones(total, dtype=bool)
    new[1:] = (dev[1:] != dev[:-1]) | (start[1:] > prev_end[1:])
    grp = np.cumsum(new) - 1
    m_dev = dev[new]
    m_start = start[new]
    m_end = np.zeros(int(new.sum()), dtype=I64)
    np.maximum.at(m_end, grp, run_end)
    return m_dev, m_start, m_end


def build_segments(
    n_dev: int,
    minutes: int,
    trip_dev: np.ndarray,
    trip_start: np.ndarray,
    trip_end: np.ndarray,
    moving_interval: np.ndarray,
    parked_interval: int,
    keepalive: int,
    phase_u: np.ndarray,
) -> Segments:
    """Segments from merged trips. ``moving_interval`` per device (s); ``phase_u`` in [0, 1) per device."""
    devs = np.arange(n_dev, dtype=I64)
    # Boundary points: period start (parked), trip starts (moving), trip ends inside the period (parked).
    inside = trip_end < minutes
    p_dev = np.concatenate((devs, trip_dev, trip_dev[inside]))
    p_t = np.concatenate((np.zeros(n_dev, dtype=I64), trip_start, trip_end[inside]))
    p_mov = np.concatenate(
        (np.zeros(n_dev, bool), np.ones(len(trip_dev), bool), np.zeros(int(inside.sum()), bool))
    )
    p_pri = np.concatenate((np.zeros(n_dev, I64), np.ones(len(trip_dev) + int(inside.sum()), I64)))
    order = np.lexsort((p_pri, p_t, p_dev))
    p_dev, p_t, p_mov = p_dev[order], p_t[order], p_mov[order]
    # A trip starting at minute 0 replaces the default parked start: keep the last point per (dev, t).
    last = np.ones(len(p_dev), dtype=bool)
    last[:-1] = (p_dev[1:] != p_dev[:-1]) | (p_t[1:] != p_t[:-1])
    p_dev, p_t, p_mov = p_dev[last], p_t[last], p_mov[last]
    end = np.empty_like(p_t)
    end[:-1] = np.where(p_dev[1:] == p_dev[:-1], p_t[1:], minutes)
    end[-1] = minutes
    interval = np.where(p_mov, moving_interval[p_dev], I64(parked_interval)).astype(I64)
    first = p_t == 0
    phase = np.floor(phase_u[p_dev] * interval).astype(I64)
    origin = np.where(first, phase, p_t * 60)
    pings = np.maximum(0, ceil_div(interval, I64(keepalive)) - 1)
    return Segments(p_dev, p_t, end, p_mov, origin, interval, pings, int(keepalive), int(minutes))
