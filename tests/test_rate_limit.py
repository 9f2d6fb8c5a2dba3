"""The bulk per-second rate limiter decides exactly what the plain attempt-by-attempt loop decides."""

from __future__ import annotations

import heapq

import numpy as np
import pytest

from sim.world.rate_limit import SECOND_MS, admit_per_second


def reference(t, cs, ce, cap, retries, backoff_ms):
    """The plain loop (the first implementation): every attempt in time order, FCFS per second."""
    nsec = cap.size
    sec = (t - cs) // SECOND_MS
    counts = np.bincount(sec, minlength=nsec)[:nsec]
    over = np.flatnonzero(counts > cap)
    if over.size == 0:
        return None
    n = t.size
    keep = np.ones(n, dtype=bool)
    when = t.copy()
    final_second = np.full(n, -1, dtype=np.int64)
    att = []
    bounds = np.searchsorted(sec, np.arange(nsec + 1))
    heap: list = []
    over_l, oi = over.tolist(), 0
    while oi < len(over_l) or heap:
        s_over = over_l[oi] if oi < len(over_l) else nsec
        s_heap = (heap[0][0] - cs) // SECOND_MS if heap else nsec
        s = min(s_over, s_heap)
        if s == s_over:
            oi += 1
        lo, hi = int(bounds[s]), int(bounds[s + 1])
        cand = [(int(t[j]), j, 0) for j in range(lo, hi)]
        while heap and (heap[0][0] - cs) // SECOND_MS == s:
            cand.append(heapq.heappop(heap))
        cand.sort()
        c = int(cap[s])
        for tm, i, k in cand[:c]:
            if k:
                keep[i] = True
                when[i] = tm
        for tm, i, k in cand[c:]:
            att.append((i, tm))
            keep[i] = False
            nxt = tm + backoff_ms * (1 << k)
            if k < retries and nxt < ce:
                heapq.heappush(heap, (nxt, i, k + 1))
            else:
                final_second[i] = s
    return keep, when, final_second, sorted(att)


CASES = [(seed, retries, cap_kind) for seed in range(12) for retries in (0, 1, 3) for cap_kind in ("flat", "step")]


@pytest.mark.parametrize(("seed", "retries", "cap_kind"), CASES)
def test_bulk_limiter_equals_the_plain_loop(seed, retries, cap_kind):
    rng = np.random.default_rng(seed)
    nsec = 600
    cs, ce = 5_000_000, 5_000_000 + nsec * SECOND_MS
    n = int(rng.integers(200, 4000))
    # bursts and quiet stretches, many same-millisecond ties
    t = np.sort(cs + rng.integers(0, nsec * SECOND_MS // 7, n) * 7)
    if cap_kind == "flat":
        cap = np.full(nsec, int(rng.integers(1, 6)), dtype=np.int64)
    else:   # a throttle part way through the period, as PlanEnforcer builds it
        cap = np.full(nsec, int(rng.integers(3, 12)), dtype=np.int64)
        cap[int(rng.integers(0, nsec)):] = 1
    backoff = int(rng.choice([1000, 1500, 2000]))
    got = admit_per_second(t, cs, ce, cap, retries, backoff)
    want = reference(t, cs, ce, cap, retries, backoff)
    assert (got is None) == (want is None)
    if want is None:
        return
    keep, when, final_second, att_m, att_t = got
    assert np.array_equal(keep, want[0])
    assert np.array_equal(when, want[1])
    assert np.array_equal(final_second, want[2])
    assert sorted(zip(att_m.tolist(), att_t.tolist(), strict=True)) == want[3]
    # the cap holds in every second, counting accepted first attempts and accepted retries
    accepted = np.bincount((when[keep] - cs) // SECOND_MS, minlength=nsec)
    assert np.all(accepted <= cap)


def test_no_second_over_its_cap_means_nothing_to_decide():
    t = np.arange(0, 10_000, 500, dtype=np.int64)          # two a second
    assert admit_per_second(t, 0, 10_000, np.full(10, 2, dtype=np.int64), 3, 1000) is None
