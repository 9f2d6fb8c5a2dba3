"""The IoT platform side of the fleet: device buffers with a TTL and the owner's reads, as array maths.

Each device has a buffer on the platform whose messages expire after a TTL; the owner's application
may read and clear all buffers every K minutes (the seed's storage tip), and storage is snapshotted
every minute (seed: "snapshot the storage ... every minute and calculate the daily average"). A plan
may cap a device's buffer (new messages discarded) and suspend the platform's REST API (reads inside
the suspension rejected).

Why these are pure functions of arrays: they are what happens to messages after the platform received
them, so they need only per-minute arrivals and the read minutes, never the engine that produced them.
Finding *when* a limit is crossed to the second needs the engine's schedule, so that part stays in the
engine (:mod:`sim.world.iot.fleet`), which calls :func:`suspend_reads` and :func:`buffer_fill` with
what it found; this module imports nothing of it.
"""

from __future__ import annotations

import numpy as np

I64 = np.int64


def read_minutes(minutes: int, read_every: int | None) -> np.ndarray:
    """Minutes at whose start the application reads and clears the buffers."""
    m = np.arange(minutes)
    return (m % read_every == 0) if read_every else np.zeros(minutes, bool)


def suspend_reads(is_read: np.ndarray, t: int, suspend_s: int) -> None:
    """A platform suspension from second ``t + 1`` for ``suspend_s`` s: reads starting inside it are rejected."""
    first, last = -(-(t + 1) // 60), (t + suspend_s) // 60  # read minutes starting inside [t+1, t+1+s)
    is_read[first : last + 1] = False


def buffer_fill(arrivals: np.ndarray, cap: int, ttl: int, is_read: np.ndarray) -> np.ndarray:
    """Messages accepted per (device, minute) by buffers holding at most ``cap`` messages.

    ``arrivals`` (devices, minutes): messages reaching each buffer. A read at the start of a minute
    empties the buffers; a message accepted in minute ``m`` expires at the start of ``m + ttl``; the
    arrivals of a minute beyond the free room are discarded (new messages, never old ones).
    """
    M = arrivals.shape[1]
    acc = np.zeros_like(arrivals)
    level = np.zeros(arrivals.shape[0], I64)
    lo = 0
    for m in range(M):
        if is_read[m]:
            level[:] = 0
            lo = m
        if m - ttl >= lo:
            level -= acc[:, m - ttl]
        acc[:, m] = np.minimum(arrivals[:, m], np.maximum(cap - level, 0))
        level += acc[:, m]
    return acc


def buffer(count: np.ndarray, nbytes: np.ndarray, ttl: int, is_read: np.ndarray) -> tuple[np.ndarray, dict]:
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
