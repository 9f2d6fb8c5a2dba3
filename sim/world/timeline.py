"""Connection timelines: per-user sets of disjoint intervals, queried in bulk.

Why: a month of a 100K-user app has ~10^7 connections and ~10^8 messages. Scheduling one SimPy
event per message or per reconnect is far too slow, so the world builds each user's connection
intervals ``[start, end)`` with numpy and decides every message's fate against them with one
:func:`numpy.searchsorted` over a (user, time) key. The answers are exact: a copy is delivered at
once iff its recipient has an interval covering the send time, otherwise at the start of the
recipient's next interval.

Times are int64 milliseconds from the period start; keys are ``user * KEY + time`` (int64), which
orders intervals by user, then by start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Key multiplier: times must stay below 2^37 ms (~1,590 days); users below 2^26 (67 M).
KEY = np.int64(1) << np.int64(37)
NEVER = np.int64(np.iinfo(np.int64).max // 4)

# Causes of a connection (why its first component opened).
FOREGROUND, BACKGROUND, PUSH, CALL, RECONNECT = 0, 1, 2, 3, 4
CAUSES = ("foreground", "background", "push", "call", "reconnect")


@dataclass
class Intervals:
    """Column arrays of intervals; ``opened`` marks intervals already metered as connections."""

    user: np.ndarray
    start: np.ndarray
    end: np.ndarray
    cause: np.ndarray
    opened: np.ndarray

    @classmethod
    def empty(cls) -> Intervals:
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z.copy(), z.copy(), np.zeros(0, dtype=np.int8), np.zeros(0, dtype=bool))

    @classmethod
    def new(cls, user, start, end, cause: int) -> Intervals:
        user = np.asarray(user, dtype=np.int64)
        start = np.asarray(start, dtype=np.int64)
        end = np.asarray(end, dtype=np.int64)
        keep = end > start
        return cls(user[keep], start[keep], end[keep], np.full(int(keep.sum()), cause, dtype=np.int8),
                   np.zeros(int(keep.sum()), dtype=bool))

    def __len__(self) -> int:
        return int(self.user.size)

    def take(self, idx) -> Intervals:
        return Intervals(self.user[idx], self.start[idx], self.end[idx], self.cause[idx], self.opened[idx])

    @staticmethod
    def concat(parts: list[Intervals]) -> Intervals:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Intervals.empty()
        return Intervals(*(np.concatenate([getattr(p, f) for p in parts])
                           for f in ("user", "start", "end", "cause", "opened")))


def union(iv: Intervals, presorted: bool = False) -> Intervals:
    """Merge overlapping or touching intervals per user; the result is sorted by (user, start).

    A merged interval keeps the cause of its earliest component and is ``opened`` if that component
    was (components that start later are extensions of a connection that is already up).
    ``presorted``: ``iv`` is already sorted by (user, start) (skips the sort).
    """
    if len(iv) == 0:
        return iv
    skey = iv.user * KEY + iv.start
    if presorted:
        ekey = iv.user * KEY + iv.end
        src = iv
    else:
        order = np.argsort(skey, kind="stable")  # inputs are concatenations of sorted runs: timsort merges them
        skey = skey[order]
        src = iv.take(order)
        ekey = src.user * KEY + src.end
    run_end = np.maximum.accumulate(ekey)
    first = np.empty(skey.size, dtype=bool)
    first[0] = True
    np.greater(skey[1:], run_end[:-1], out=first[1:])
    heads = np.flatnonzero(first)
    if heads.size == skey.size:  # nothing overlaps: already a union
        return src
    # the end of each group is the running max at the group's last element
    last = np.empty_like(heads)
    last[:-1] = heads[1:] - 1
    last[-1] = skey.size - 1
    user = src.user[heads]
    return Intervals(
        user=user,
        start=src.start[heads],
        end=run_end[last] - user * KEY,
        cause=src.cause[heads],
        opened=src.opened[heads],
    )


def merge_sorted(a: Intervals, b: Intervals) -> Intervals:
    """Interleave two timelines sorted by (user, start) into one sorted timeline (no sort needed)."""
    if len(b) == 0:
        return a
    if len(a) == 0:
        return b
    akey = a.user * KEY + a.start
    bkey = b.user * KEY + b.start
    bpos = np.searchsorted(akey, bkey, side="right") + np.arange(bkey.size)
    n = akey.size + bkey.size
    amask = np.ones(n, dtype=bool)
    amask[bpos] = False
    cols = []
    for f in ("user", "start", "end", "cause", "opened"):
        x, y = getattr(a, f), getattr(b, f)
        out = np.empty(n, dtype=x.dtype)
        out[amask] = x
        out[bpos] = y
        cols.append(out)
    return Intervals(*cols)


@dataclass
class Sorted:
    """Intervals sorted by (user, start) that may still overlap, with the running maximum of ends.

    Why: routing only needs "is the user connected at t" and "when does the next interval start", and
    both can be answered on sorted, *unmerged* intervals: the user is connected iff the running max of
    (user, end) keys up to the last interval starting at or before t exceeds t. This saves a full
    union (and its gathers) for every batch of intervals added during a day; :meth:`merged` produces
    the union once, for connection metering.
    """

    iv: Intervals
    skey: np.ndarray
    run_end: np.ndarray

    @classmethod
    def of(cls, iv: Intervals, presorted: bool = False) -> Sorted:
        skey = iv.user * KEY + iv.start
        if not presorted and skey.size > 1 and not bool(np.all(skey[1:] >= skey[:-1])):
            order = np.argsort(skey, kind="stable")
            iv = iv.take(order)
            skey = skey[order]
        return cls(iv, skey, np.maximum.accumulate(iv.user * KEY + iv.end) if skey.size else skey.copy())

    def add(self, extra: Intervals) -> Sorted:
        """Interleave intervals that are themselves sorted by (user, start)."""
        return Sorted.of(merge_sorted(self.iv, extra), presorted=True) if len(extra) else self

    def merged(self) -> Intervals:
        return union(self.iv, presorted=True)

    def __len__(self) -> int:
        return len(self.iv)


@dataclass
class Lookup:
    """Answers for a batch of (user, time) queries."""

    connected: np.ndarray  # bool: an interval of the user covers the time
    next_start: np.ndarray  # int64: start of the user's next interval after the time (NEVER if none)
    index: np.ndarray  # int64: index of the covering interval (-1 if not connected)


def locate(tl: Intervals | Sorted, user: np.ndarray, t: np.ndarray) -> Lookup:
    """For each query: is ``user`` connected at ``t``, else when does its next interval start.

    ``tl`` is a union (disjoint intervals) or a :class:`Sorted` (overlaps allowed).
    """
    if isinstance(tl, Sorted):
        return _locate_sorted(tl, user, t)
    n = len(tl)
    if n == 0:
        k = user.size
        return Lookup(np.zeros(k, bool), np.full(k, NEVER, np.int64), np.full(k, -1, np.int64))
    skey = tl.user * KEY + tl.start
    q = user.astype(np.int64) * KEY + t.astype(np.int64)
    if q.size > 1 and not bool(np.all(q[1:] >= q[:-1])):
        # sorted queries make searchsorted cache-friendly (~10x faster on 10^6+ queries)
        order = np.argsort(q, kind="stable")
        i = np.empty_like(q)
        i[order] = np.searchsorted(skey, q[order], side="right") - 1
    else:
        i = np.searchsorted(skey, q, side="right") - 1
    ic = np.maximum(i, 0)
    same = (i >= 0) & (tl.user[ic] == user)
    connected = same & (tl.end[ic] > t)
    j = i + 1
    jc = np.minimum(j, n - 1)
    has_next = (j < n) & (tl.user[jc] == user)
    next_start = np.where(has_next, tl.start[jc], NEVER)
    return Lookup(connected, next_start, np.where(connected, i, -1))


def _locate_sorted(s: Sorted, user: np.ndarray, t: np.ndarray) -> Lookup:
    n = len(s)
    k = user.size
    if n == 0:
        return Lookup(np.zeros(k, bool), np.full(k, NEVER, np.int64), np.full(k, -1, np.int64))
    q = user.astype(np.int64) * KEY + t.astype(np.int64)
    if q.size > 1 and not bool(np.all(q[1:] >= q[:-1])):
        order = np.argsort(q, kind="stable")
        i = np.empty_like(q)
        i[order] = np.searchsorted(s.skey, q[order], side="right") - 1
    else:
        i = np.searchsorted(s.skey, q, side="right") - 1
    ic = np.maximum(i, 0)
    # run_end is a max over this user's intervals up to i (earlier users' keys are all smaller)
    connected = (i >= 0) & (s.run_end[ic] > q)
    j = np.minimum(i + 1, n - 1)
    has_next = (i + 1 < n) & (s.iv.user[j] == user)
    next_start = np.where(has_next, s.iv.start[j], NEVER)
    return Lookup(connected, next_start, np.where(connected, i, -1))


def split_idle(tl: Intervals, limit_ms: int, detect_ms: int | None, backoff_ms: np.ndarray | None) -> Intervals:
    """Cut intervals longer than ``limit_ms`` (a NAT idle timeout not covered by heartbeats).

    The socket dies silently ``limit_ms`` after it opened; the client notices ``detect_ms`` later (its
    next heartbeat write fails) and reconnects after ``backoff_ms``; a client without heartbeats
    (``detect_ms`` None) stays offline for the rest of the interval. The pieces after the first are
    new connections (cause RECONNECT).
    """
    long_ = (tl.end - tl.start) > limit_ms
    if not long_.any():
        return tl
    keep = tl.take(~long_)
    lng = tl.take(long_)
    first = Intervals(lng.user, lng.start, lng.start + limit_ms, lng.cause, lng.opened)
    if detect_ms is None:
        return Intervals.concat([keep, first])
    backoff = np.zeros(len(lng), dtype=np.int64) if backoff_ms is None else backoff_ms[: len(lng)]
    period = np.int64(limit_ms + detect_ms) + backoff
    # pieces k = 1, 2, ...: start = s + k * period, end = start + limit (clipped to the interval end)
    n_more = np.maximum(0, -(-(lng.end - lng.start - period) // period)).astype(np.int64)
    n_more = np.where(lng.end - lng.start > period, n_more, 0)
    rep = np.repeat(np.arange(len(lng)), n_more)
    k = np.arange(rep.size) - np.repeat(np.cumsum(n_more) - n_more, n_more) + 1
    st = lng.start[rep] + k * period[rep]
    en = np.minimum(st + limit_ms, lng.end[rep])
    more = Intervals.new(lng.user[rep], st, en, RECONNECT)
    return Intervals.concat([keep, first, more])


def apply_suspensions(tl: Intervals, windows: list[tuple[int, int]], backoff_ms: np.ndarray) -> tuple[Intervals, int, int]:
    """Close every connection during each suspension window ``[a, b)`` and reject new ones.

    A connection up at ``a`` is closed by the server at ``a``; a client that still wants to be online
    after ``b`` reconnects at ``b + backoff`` (the reconnect storm). Returns the new timeline, the number
    of connections closed and the number of connection attempts rejected.
    """
    closed = rejected = 0
    for a, b in windows:
        ov = (tl.start < b) & (tl.end > a)
        if not ov.any():
            continue
        rest = tl.take(~ov)
        hit = tl.take(ov)
        closed += int((hit.start < a).sum())
        rejected += int((hit.start >= a).sum())
        before = Intervals(hit.user, hit.start, np.minimum(hit.end, a), hit.cause, hit.opened)
        before = before.take(before.start < a)
        re_start = np.int64(b) + backoff_ms[: len(hit)]
        after = Intervals.new(hit.user, np.maximum(hit.start, re_start), hit.end, RECONNECT)
        tl = union(Intervals.concat([rest, before, after]))
    return tl, closed, rejected


def connected_at(tl: Sorted, user: np.ndarray, t: np.ndarray, n_users: int, bucket_ms: int = 600_000) -> np.ndarray:
    """``locate(tl, user, t).connected`` for many scattered queries, most of which are offline.

    Why: an exact lookup sorts its queries (random users at random times): the cost of the day's live
    conversation checks (sim/world/conversations.py). A coarse bitmap of which users have an interval
    in each ``bucket_ms`` of the queried span (one byte per user and bucket) answers "surely offline" for
    most queries at the cost of a gather; only the others are looked up exactly. Same answers.
    """
    out = np.zeros(user.size, dtype=bool)
    if user.size == 0 or len(tl) == 0:
        return out
    lo, hi = int(t.min()) // bucket_ms, int(t.max()) // bucket_ms + 1
    width = hi - lo
    iv = tl.iv
    near = (iv.end > lo * bucket_ms) & (iv.start < hi * bucket_ms)
    a = np.clip(iv.start[near] // bucket_ms, lo, hi - 1) - lo
    b = np.clip((iv.end[near] - 1) // bucket_ms, lo, hi - 1) - lo
    n = b - a + 1
    rows = np.repeat(iv.user[near] * width + a, n) + (np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n))
    busy = np.zeros(n_users * width, dtype=bool)
    busy[rows] = True
    maybe = np.flatnonzero(busy[user * width + (t // bucket_ms - lo)])
    if maybe.size:
        out[maybe] = locate(tl, user[maybe], t[maybe]).connected
    return out
