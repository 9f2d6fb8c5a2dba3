"""Push wake-ups: an offline recipient's phone is woken by FCM/APNs and the app connects briefly.

Platform limits only (PF §4.1-4.2): iOS delivers at most 2-3 background pushes per hour to an app, so a
recipient is woken at most once per *slot* of ``max(min_interval_ios_s, wake_s)`` (slots phase-shifted
per user): the first copy that finds the recipient offline in a slot triggers a connection
``[t + delay, t + delay + wake)``, and copies after it wait for the next wake or connection. FCM high
priority is not rate-limited for active Android apps (``min_interval_android_s`` 0, PF §4.1): every
push wakes the app, so a burst of copies less than ``wake_s`` apart keeps one connection up, from the
first copy to ``wake_s`` after the last: a conversation burst costs one wake.

With ``open_probability`` the user opens the app after the wake: the foreground session starts at the
wake and the connection lasts ``max(wake, session)``, one connection rather than a wake plus a later,
separate session connection. Such a launch is one of the user's ``sessions_per_dau_per_day`` (the
measured launch counts include those notifications prompt): :class:`PushState` keeps each user's
mean of prompted launches per active day, and its next active day's spontaneous sessions are fewer
by as many.
"""

from __future__ import annotations

import numpy as np

from sim.scenario import Activity, Push
from sim.world.distributions import lognormal_mean_one
from sim.world.population import IOS, Population
from sim.world.timeline import KEY, PUSH, Intervals, union


class PushState:
    """What the throttle remembers from one day to the next: each user's last slot that had a wake.

    Why: the world decides a day's wakes in one batch. A slot that straddles midnight already had its
    wake yesterday; forgetting that woke every recipient woken late in the evening again at the first
    copy after 00:00 (a jump in connects at every midnight, tests/test_day_boundaries.py).
    """

    def __init__(self, n_users: int) -> None:
        self.last_slot = np.full(n_users, -1, dtype=np.int64)
        self.prompted = np.zeros(n_users)  # mean launches a notification prompted, per active day so far
        self.today = np.zeros(n_users)
        self._total = np.zeros(n_users)
        self._days = np.zeros(n_users)

    def forget(self) -> None:
        """Lose the memory (what the model did before; the day-boundary test injects it as a fault)."""
        self.last_slot[:] = -1

    def note_prompted(self, users: np.ndarray) -> None:
        self.today += np.bincount(users, minlength=self.today.size)

    def end_day(self, day_active: np.ndarray) -> None:
        """Fold the day's prompted launches of the day-active users into their mean per active day, which
        their next active day's spontaneous sessions subtract."""
        u = day_active
        self._total[u] += self.today[u]
        self._days[u] += 1
        self.prompted[u] = self._total[u] / self._days[u]
        self.today[:] = 0


def wake_intervals(pop: Population, recipient: np.ndarray, t: np.ndarray, cfg: Push,
                   rng: np.random.Generator | None = None, act: Activity | None = None,
                   state: PushState | None = None, day_active: np.ndarray | None = None,
                   launch_budget: np.ndarray | None = None) -> Intervals:
    """Connections opened by push wake-ups for copies that found their recipient offline.

    Sorted by (recipient, start) and disjoint per recipient (one interval per wake connection).
    ``rng``/``act`` draw the sessions a share ``open_probability`` of wakes prompts (none without them).
    ``state`` carries the throttle across days (slots woken on an earlier day get no second wake).
    ``day_active`` (bool per user): only users who use the app today open it after a wake, and at most
    ``launch_budget`` times (per user: their expected launches a day; a light user does not open the app
    for each of fifteen notifications).
    """
    if not cfg.enabled or recipient.size == 0:
        return Intervals.empty()
    wake = int(cfg.wake_s * 1000)
    ios = pop.platform[recipient] == IOS
    slot_len = np.where(ios, int(max(cfg.min_interval_ios_s * 1000, wake)),
                        int(max(cfg.min_interval_android_s * 1000, wake))).astype(np.int64)
    slot = (t + pop.push_phase_ms[recipient]) // slot_len
    key = recipient * KEY + t
    if key.size > 1 and not bool(np.all(key[1:] >= key[:-1])):
        order = np.argsort(key)  # slots grow with t, so (recipient, t) orders slots too
        r, s, ts, ios = recipient[order], slot[order], t[order], ios[order]
    else:  # the world hands copies sorted by (recipient, time)
        r, s, ts = recipient, slot, t
    new_r = np.ones(r.size, dtype=bool)
    new_r[1:] = r[1:] != r[:-1]
    # a throttled recipient (iOS; Android with a debounce): the first copy of each slot wakes the app for wake_s
    first = new_r.copy()
    first[1:] |= s[1:] != s[:-1]
    throttled = ios | (cfg.min_interval_android_s * 1000 > wake)
    if state is not None:
        first &= ~throttled | (s != state.last_slot[r])   # the slot's wake happened on an earlier day
        hit = first & throttled
        state.last_slot[r[hit]] = s[hit]                   # ascending per recipient: the last write is the latest
    # an unthrottled one (Android, FCM high priority): each push extends the woken app's connection, so copies less
    # than wake_s apart are one burst and one connection, from the first copy to wake_s after the last
    burst = new_r.copy()
    burst[1:] |= ts[1:] - ts[:-1] > wake
    head = np.where(throttled, first, burst)
    heads = np.flatnonzero(head)
    if heads.size == 0:
        return Intervals.empty()
    # the last copy of each burst (a burst ends where the next burst, or the next recipient, begins: not at the
    # next head, which may be another recipient's row after a throttled slot that had its wake yesterday)
    burst_end = np.ones(r.size, dtype=bool)
    burst_end[:-1] = burst[1:]
    ends = np.flatnonzero(burst_end)
    last = ends[np.searchsorted(ends, heads)]
    delay = int(cfg.delay_s * 1000)
    st = ts[heads] + delay
    en = np.where(throttled[heads], st + wake, ts[last] + delay + wake)
    iv = _disjoint(Intervals(r[heads], st, en, np.full(heads.size, PUSH, dtype=np.int8),
                             np.zeros(heads.size, dtype=bool)))
    if rng is not None and act is not None and cfg.open_probability > 0 and len(iv):
        opens = rng.random(len(iv)) < cfg.open_probability
        if day_active is not None:
            opens &= day_active[iv.user]
        mean_ms = act.session_mean_s * 1000.0
        if act.session_distribution == "exponential":
            dur = rng.exponential(mean_ms, len(iv))
        else:
            dur = mean_ms * lognormal_mean_one(rng, act.session_sigma, len(iv))
        end = np.where(opens, np.maximum(iv.end, iv.start + np.round(dur).astype(np.int64)), iv.end)
        opens = _prompted(iv.user, iv.start, end, opens, launch_budget)
        opened = np.flatnonzero(opens)
        if state is not None:
            state.note_prompted(iv.user[opened])
        iv.end[opened] = end[opened]
        iv = _disjoint(iv)  # a longer session may reach the next wake
    return iv


def _prompted(user: np.ndarray, start: np.ndarray, end: np.ndarray, cand: np.ndarray,
              budget: np.ndarray | None) -> np.ndarray:
    """Which wakes (sorted by user, start) prompt a launch: a candidate (``cand``: the user opens the app after
    it) does unless it falls inside a launch an earlier wake prompted (the user is in the app: the server saw
    them online and sent no push, as in the events engine) or the user's launches today reached ``budget``.

    A wake is surely outside every earlier launch if it starts after the ends of all earlier *candidates*'
    launches (a superset); only users with a wake inside one of those are decided one wake at a time.
    """
    prev = _previous_max(user, np.where(cand, end, -1))
    inside = cand & (start < prev)
    opens = cand & ~inside
    if budget is not None:
        opens &= _rank_within_user(user, opens) < budget[user]
    if not inside.any():
        return opens
    who = np.zeros(int(user.max()) + 1, dtype=bool)
    who[user[inside]] = True
    rows = np.flatnonzero(cand & who[user])
    opens[rows] = False
    last_user, reach, count = -1, -1, 0
    users = user[rows]
    caps = [None] * rows.size if budget is None else budget[users].tolist()
    for i, u, st, en, cap in zip(rows.tolist(), users.tolist(), start[rows].tolist(), end[rows].tolist(), caps,
                                 strict=True):
        if u != last_user:
            last_user, reach, count = u, -1, 0
        if st >= reach and (cap is None or count < cap):
            opens[i] = True
            reach = max(reach, en)
            count += 1
    return opens


def _previous_max(user: np.ndarray, value: np.ndarray) -> np.ndarray:
    """For rows sorted by user: the largest ``value`` among the same user's earlier rows (-1 if none)."""
    key = user * KEY + value
    run = np.maximum.accumulate(key)
    prev = np.empty_like(run)
    prev[0] = -1
    prev[1:] = run[:-1] - user[1:] * KEY
    first = np.ones(user.size, dtype=bool)
    first[1:] = user[1:] != user[:-1]
    return np.where(first, -1, prev)


def _rank_within_user(user: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For rows sorted by user: how many rows of the same user with ``mask`` come before each row."""
    c = np.cumsum(mask) - mask
    first = np.ones(user.size, dtype=bool)
    first[1:] = user[1:] != user[:-1]
    start = np.maximum.accumulate(np.where(first, np.arange(user.size), 0))
    return c - c[start]


def _disjoint(iv: Intervals) -> Intervals:
    """``iv`` (sorted by user, start) merged where intervals overlap or touch; as it is when none do.

    If any interval overlaps an earlier one of its user, the first such interval overlaps its direct
    predecessor (whose start lies between), so comparing neighbours tells whether a union is needed.
    """
    if len(iv) < 2:
        return iv
    same = iv.user[1:] == iv.user[:-1]
    if not bool((same & (iv.start[1:] <= iv.end[:-1])).any()):
        return iv
    return union(iv, presorted=True)
