"""Per-second message caps with client retries, decided exactly and mostly in bulk.

The rule (messaging seed, "Message Rate Limit"; clients retry with back-off): in each wall-clock second
at most ``cap[s]`` attempts get through, first come first served (by time, then message index). A
refused attempt is retried ``backoff_ms x 2^k`` later (k = 0, 1, ... ``retries - 1``) unless that falls
after the day; after its last refusal the message is rejected.

Why not simply loop: a throttled app of 100K users offers ~4 M messages a day to a cap of one per
second, so nearly every attempt is refused and retried. A Python loop over attempts takes ~15 s per
simulated day. The decision is sequential only through retries, and one fact makes most of it bulk
work: *adding candidates to a second can only push an attempt's rank up*. So an attempt whose rank
among the candidates already known to exist is ``>= cap`` is surely refused, whatever else arrives,
and its retry is surely a candidate. Passes over the retry levels collect these sure candidates with
sorts; what remains uncertain is at most ``cap`` attempts per second (the ``cap`` earliest sure
candidates), and only those, with the retries they spawn, go through the sequential loop. The result
is the same, attempt for attempt, as the plain loop (``tests/test_rate_limit.py`` checks it against one).
"""

from __future__ import annotations

import heapq

import numpy as np

SECOND_MS = 1000


def _ranks(t: np.ndarray, msg: np.ndarray, cs: int) -> tuple[np.ndarray, np.ndarray]:
    """Second of each attempt and its rank in that second, by (time, message index)."""
    sec = (t - cs) // SECOND_MS
    bits = max(1, int(msg.max(initial=0)).bit_length())
    order = np.argsort(((t - cs) << bits) | msg, kind="stable")
    s_sorted = sec[order]
    first = np.searchsorted(s_sorted, s_sorted, side="left")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size) - first
    return sec, rank


def admit_per_second(t: np.ndarray, cs: int, ce: int, cap: np.ndarray, retries: int, backoff_ms: int):
    """Decide the day's attempts. ``t``: time-sorted ms of the day's messages; ``cap``: per-second caps.

    Returns ``(keep, when, final_second, attempt_msg, attempt_t)`` or None when no second is over its
    cap: ``keep`` bool per message, ``when`` the time of the attempt that got through (else the first),
    ``final_second`` the second of a rejected message's last refusal (-1 if kept), and every refused
    attempt's message index and time.
    """
    n = t.size
    nsec = cap.size
    counts = np.bincount((t - cs) // SECOND_MS, minlength=nsec)[:nsec]
    if not np.any(counts > cap):
        return None

    # 1. sure candidates, level by level (level k = the k-th retry)
    msg_l, t_l, k_l = [np.arange(n, dtype=np.int64)], [t.astype(np.int64)], [np.zeros(n, dtype=np.int64)]
    spawned_l: list[np.ndarray] = []
    for level in range(retries + 1):
        msg, tt = np.concatenate(msg_l), np.concatenate(t_l)
        sec, rank = _ranks(tt, msg, cs)
        lo = tt.size - t_l[-1].size                       # this level's block is last
        sure = rank[lo:] >= cap[sec[lo:]]
        nxt = t_l[-1] + (backoff_ms << level)
        spawn = sure & (nxt < ce) if level < retries else np.zeros(sure.size, dtype=bool)
        spawned_l.append(spawn)
        if level == retries or not spawn.any():
            break
        msg_l.append(msg_l[-1][spawn])
        t_l.append(nxt[spawn])
        k_l.append(np.full(int(spawn.sum()), level + 1, dtype=np.int64))

    msg, tt, kk = np.concatenate(msg_l), np.concatenate(t_l), np.concatenate(k_l)
    spawned = np.concatenate(spawned_l)
    sec, rank = _ranks(tt, msg, cs)
    refused = rank >= cap[sec]                            # final: every sure candidate ranked >= cap

    keep = np.zeros(n, dtype=bool)
    when = t.astype(np.int64).copy()
    final_second = np.full(n, -1, dtype=np.int64)
    att_msg = [msg[refused]]
    att_t = [tt[refused]]

    # refused sure candidates: retried (already a sure candidate, or seeded below), or finally rejected
    nxt = tt + (backoff_ms << kk)
    can_retry = (kk < retries) & (nxt < ce)
    seed = refused & ~spawned & can_retry
    last = refused & ~can_retry
    final_second[msg[last]] = sec[last]
    heap: list[tuple[int, int, int]] = list(zip(nxt[seed].tolist(), msg[seed].tolist(), (kk[seed] + 1).tolist(),
                                                strict=True))
    heapq.heapify(heap)

    # 2. the uncertain (at most cap per second) and the retries they spawn, in time order
    unc = np.flatnonzero(~refused)
    unc = unc[np.lexsort((msg[unc], tt[unc]))]
    u_t, u_m, u_k, u_s = tt[unc].tolist(), msg[unc].tolist(), kk[unc].tolist(), sec[unc].tolist()
    i, nu = 0, len(u_t)
    extra_m: list[int] = []
    extra_t: list[int] = []
    while i < nu or heap:
        s = min(u_s[i] if i < nu else nsec, (heap[0][0] - cs) // SECOND_MS if heap else nsec)
        cand = []
        while i < nu and u_s[i] == s:
            cand.append((u_t[i], u_m[i], u_k[i]))
            i += 1
        while heap and (heap[0][0] - cs) // SECOND_MS == s:
            cand.append(heapq.heappop(heap))
        cand.sort()
        c = int(cap[s])
        for tm, m, _k in cand[:c]:
            keep[m] = True
            when[m] = tm
        for tm, m, k in cand[c:]:
            extra_m.append(m)
            extra_t.append(tm)
            nt = tm + (backoff_ms << k)
            if k < retries and nt < ce:
                heapq.heappush(heap, (nt, m, k + 1))
            else:
                final_second[m] = s
    att_msg.append(np.asarray(extra_m, dtype=np.int64))
    att_t.append(np.asarray(extra_t, dtype=np.int64))
    return keep, when, final_second, np.concatenate(att_msg), np.concatenate(att_t)
