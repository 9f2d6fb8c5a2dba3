"""The IoT platform side of the fleet: device buffers, the owner's reads, platform limits.

Each device has a buffer on the platform whose messages expire after a TTL; the owner's application
may read and clear all buffers every K minutes (the seed's storage tip), and storage is snapshotted
every minute (seed: "snapshot the storage ... every minute and calculate the daily average"). A plan
may cap a device's buffer (new messages discarded) and suspend the platform's REST API (reads inside
the suspension rejected). These are what happens to messages after the platform received them, so
they live here, apart from the fleet engine (:mod:`sim.world.iot.fleet`) that decides what is received.

``platform_reads`` and ``device_buffer_discards`` run on a finished :class:`sim.world.iot.fleet._Fleet` (its
per-minute arrivals, outages and enforcer); ``_buffer`` turns deliveries into the storage level and
message fates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.world.iot.fleet import _Fleet

I64 = np.int64


def platform_reads(fleet: _Fleet) -> np.ndarray:
    """Platform messages/traffic limits: a crossing suspends the REST API for ``suspend_s``, so the
    application's buffer reads inside it are rejected. Returns the minutes a read happens."""
    M = fleet.minutes
    is_read = _read_minutes(M, fleet.cfg.read_every_min)
    fleet.platform_suspensions = 0
    limit, attr = fleet._msg_limit("platform")
    if limit is None:
        return is_read
    t_from = 0
    over = np.flatnonzero(fleet.arrivals > limit)
    all_devs = np.arange(fleet.n, dtype=I64)
    for m in over:
        if m * 60 + 59 < t_from:
            continue
        cum = np.cumsum(fleet._per_second(all_devs, int(m)).sum(axis=0))
        ok = (cum > limit) & (np.arange(60) + m * 60 >= t_from)
        if not ok.any():
            continue
        t = int(m * 60 + np.argmax(ok))
        fleet._cross(attr, "platform", t)
        if fleet.dry:
            break
        s = int(fleet.enforcer.suspend_s)
        t_from = t + 1 + s
        first, last = -(-(t + 1) // 60), (t + s) // 60  # read minutes starting inside [t+1, t+1+s)
        is_read[first : last + 1] = False
        fleet.platform_suspensions += 1
        if fleet.recorder is not None:
            fleet.recorder.suspension(attr, "platform", t + 1, s / 60)
    return is_read


def device_buffer_discards(fleet: _Fleet, is_read: np.ndarray, failed: np.ndarray) -> np.ndarray:
    """Messages discarded per minute by full device buffers (cap in messages of the mean payload)."""
    M = fleet.minutes
    out = np.zeros(M, I64)
    if fleet.buf_cap is None or len(fleet.cand) == 0:
        return out
    pos = {int(d): i for i, d in enumerate(fleet.cand)}
    dm = fleet.cand_arr.astype(I64)
    for devs, minute, rej in fleet.rej_dev:  # rejected at a crossing: never reached the buffer
        for d, n in zip(devs[rej > 0], rej[rej > 0], strict=True):
            if int(d) in pos:
                dm[pos[int(d)], minute] -= n
    cap, ttl = fleet.buf_cap, fleet.cfg.buffer_ttl_min
    acc = np.zeros_like(dm)
    level = np.zeros(len(fleet.cand), I64)
    lo = 0
    for m in range(M):
        if is_read[m]:
            level[:] = 0
            lo = m
        if m - ttl >= lo:
            level -= acc[:, m - ttl]
        acc[:, m] = np.minimum(dm[:, m], np.maximum(cap - level, 0))
        level += acc[:, m]
    disc = dm - acc
    out = disc.sum(axis=0)
    hit = np.argwhere(disc.T > 0)  # (minute, device) minute-major
    if len(hit):
        m, i = (int(x) for x in hit[0])
        d = fleet.cand[i : i + 1]
        cum = np.cumsum(fleet._per_second(d, m)[0])
        t = m * 60 + int(np.argmax(cum > acc[i, m]))
        fleet._cross("device_buffer_bytes", f"device {int(d[0])}", t)
    if fleet.dry:
        return np.zeros(M, I64)
    return out


def _read_minutes(minutes: int, read_every: int | None) -> np.ndarray:
    """Minutes at whose start the application reads and clears the buffers."""
    m = np.arange(minutes)
    return (m % read_every == 0) if read_every else np.zeros(minutes, bool)


def _buffer(count: np.ndarray, nbytes: np.ndarray, ttl: int, is_read: np.ndarray) -> tuple[np.ndarray, dict]:
    """Buffer level (end of each minute) and message fates for per-minute deliveries.

    A message delivered in minute ``m`` expires at the start of minute ``m + ttl``; a read at the start
    of minute ``r`` (a multiple of ``read_every``) takes everything delivered before ``r`` still
    there. So the level at the end of minute ``m`` holds minutes ``max(m - ttl + 1, last read) .. m``,
    and a constant arrival of ``b`` bytes/minute settles at exactly ``b * ttl`` (Little's law).
    """
    M = len(count)
    m = np.arange(M)
    last_read, next_read = _read_marks(is_read)
    lo = np.maximum(np.maximum(m - ttl + 1, last_read), 0)
    cb = np.concatenate(([0.0], np.cumsum(nbytes)))
    stored = cb[m + 1] - cb[lo]
    read = next_read <= np.minimum(m + ttl - 1, M - 1)
    expired = ~read & (m + ttl <= M - 1)
    n_read, n_exp = int(count[read].sum()), int(count[expired].sum())
    return stored, {"read": n_read, "expired": n_exp, "in_buffer": int(count.sum()) - n_read - n_exp}


def _read_marks(is_read: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per minute: the last read at or before it (0 if none) and the next read after it (M + big if none)."""
    M = len(is_read)
    m = np.arange(M)
    last = np.maximum.accumulate(np.where(is_read, m, 0)) if M else m
    nxt_at = np.where(is_read, m, 2 * M + 10)
    nxt = np.concatenate((np.minimum.accumulate(nxt_at[::-1])[::-1][1:], [2 * M + 10])) if M else m
    return last, nxt
