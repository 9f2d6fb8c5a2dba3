"""Timeline primitives: union, lookups, NAT splitting, suspensions, routing outcomes, Doze template."""

from __future__ import annotations

import numpy as np

from sim.scenario import Android
from sim.world.mobile.messaging import (
    DELIVERED_LATER,
    DELIVERED_NOW,
    DROPPED,
    EXPIRED,
    PENDING,
    Copies,
    route,
)
from sim.world.os_model import DozeTemplate, background_windows
from sim.world.timeline import NEVER, Intervals, apply_suspensions, locate, merge_sorted, split_idle, union


def iv(rows, cause=0):
    u, s, e = (np.array(x, dtype=np.int64) for x in zip(*rows, strict=True))
    return Intervals.new(u, s, e, cause)


def rows(tl):
    return list(zip(tl.user.tolist(), tl.start.tolist(), tl.end.tolist(), strict=True))


def test_union_merges_overlapping_and_touching_per_user():
    tl = union(iv([(1, 50, 60), (0, 10, 20), (0, 15, 30), (0, 30, 40), (0, 41, 45), (1, 0, 5)]))
    assert rows(tl) == [(0, 10, 40), (0, 41, 45), (1, 0, 5), (1, 50, 60)]


def test_merge_sorted_equals_union_of_concat():
    rng = np.random.default_rng(0)
    a = union(iv([(int(u), int(s), int(s) + 7) for u, s in zip(rng.integers(0, 20, 200), rng.integers(0, 1000, 200), strict=True)]))
    b = union(iv([(int(u), int(s), int(s) + 3) for u, s in zip(rng.integers(0, 20, 100), rng.integers(0, 1000, 100), strict=True)], 2))
    assert rows(union(merge_sorted(a, b), presorted=True)) == rows(union(Intervals.concat([a, b])))


def test_locate_connected_and_next_start():
    tl = union(iv([(0, 10, 20), (0, 30, 40), (2, 5, 6)]))
    lk = locate(tl, np.array([0, 0, 0, 0, 1, 2, 2]), np.array([10, 20, 25, 45, 3, 5, 6]))
    assert lk.connected.tolist() == [True, False, False, False, False, True, False]
    assert lk.next_start.tolist() == [30, 30, 30, NEVER, NEVER, NEVER, NEVER]
    # unsorted queries give the same answers as sorted ones
    q = np.array([6, 0, 3, 1, 5, 2, 4])
    lk2 = locate(tl, np.array([0, 0, 0, 0, 1, 2, 2])[q], np.array([10, 20, 25, 45, 3, 5, 6])[q])
    assert lk2.connected.tolist() == lk.connected[q].tolist()


def test_split_idle_cuts_at_nat_timeout_and_reconnects_after_detection():
    tl = iv([(0, 0, 10_000)])
    out = union(split_idle(tl, limit_ms=3000, detect_ms=1000, backoff_ms=np.array([500])))
    # pieces every 3000 + 1000 + 500 = 4500 ms, each alive 3000 ms
    assert rows(out) == [(0, 0, 3000), (0, 4500, 7500), (0, 9000, 10_000)]
    no_hb = split_idle(tl, limit_ms=3000, detect_ms=None, backoff_ms=None)
    assert rows(no_hb) == [(0, 0, 3000)]


def test_suspension_closes_and_storms_back():
    tl = union(iv([(0, 0, 100), (1, 50, 70), (2, 55, 200), (3, 0, 40)]))
    out, closed, rejected = apply_suspensions(tl, [(50, 60)], np.full(10, 5, dtype=np.int64))
    assert rows(out) == [(0, 0, 50), (0, 65, 100), (1, 65, 70), (2, 65, 200), (3, 0, 40)]
    assert (closed, rejected) == (1, 2)


def copies(recipient, t, store=None):
    n = len(t)
    return Copies(np.array(recipient, dtype=np.int64), np.zeros(n, np.int64), np.array(t, dtype=np.int64),
                  np.full(n, 10, np.int64), np.zeros(n, np.int8),
                  np.ones(n, bool) if store is None else np.array(store), np.ones(n, bool))


def test_route_outcomes_against_recipient_state():
    tl = union(iv([(0, 100, 200), (0, 500, 600), (1, 0, 10)]))
    c = copies([0, 0, 0, 0, 1, 0], [150, 250, 250, 650, 20, 260], store=[True, True, False, True, True, True])
    r = route(tl, c, day_end=1000, ttl_ms=None)
    assert r.outcome.tolist() == [DELIVERED_NOW, DELIVERED_LATER, DROPPED, PENDING, PENDING, DELIVERED_LATER]
    assert r.when.tolist()[:3] == [150, 500, 250]
    r = route(tl, c, day_end=1000, ttl_ms=240)  # 250 + 240 = 490 < 500: expires before the reconnect
    assert r.outcome.tolist() == [DELIVERED_NOW, EXPIRED, DROPPED, EXPIRED, EXPIRED, DELIVERED_LATER]
    assert r.when[1] == 490
    r = route(tl, c, day_end=400, ttl_ms=None)  # the reconnect at 500 is not simulated yet: pending
    assert r.outcome[1] == PENDING


def test_doze_template_follows_aosp_constants():
    a = Android()
    light = DozeTemplate.build(a, stationary=False, horizon_ms=3 * 3_600_000)
    s = light.start[:5] / 1000
    # pre-Doze 240 s; light idle 300, 600, 900, 900 s, each followed by a 60-s maintenance window
    assert s.tolist() == [0, 540, 1200, 2160, 3120]
    assert (light.end[1:5] - light.start[1:5]).tolist() == [60_000] * 4
    deep = DozeTemplate.build(a, stationary=True, horizon_ms=20 * 3_600_000)
    d = deep.start[deep.start >= 3_600_000] / 1000
    # deep entry at 3600 s; idle 1, 2, 4, 6 h; windows 5, 10, 10 min
    assert d[:4].tolist() == [7200, 7200 + 300 + 7200, 7200 + 300 + 7200 + 600 + 14400,
                              7200 + 300 + 7200 + 600 + 14400 + 600 + 21600]
    w = background_windows(light, np.array([3]), np.array([1000]), np.array([1000 + 1_300_000]), 0, 10**9, 1)
    assert rows(w) == [(3, 1000, 241_000), (3, 541_000, 601_000), (3, 1_201_000, 1_261_000)]
