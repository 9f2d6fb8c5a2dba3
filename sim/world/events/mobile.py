"""The default mobile chat client of the events engine: the scenario's behaviour, one user at a time.

Each world day the client decides whether its user uses the app (every active user surely on one day
of the period, otherwise at the rate that keeps ``dau_over_mau``), draws the day's foreground sessions
on the diurnal curve of its time zone (``1 + Poisson`` launches, fewer by the launches notifications
prompted on earlier days), the messages it writes in them (in proportion to the time on screen) and
the calls it places, and then lives through them on the SimPy clock:

* on screen: connected (TCP + TLS, full or resumed by ticket age), reading what arrives (read
  receipts), writing messages into the session's conversation thread (a reply to whoever wrote in the
  last ``reply_window_s``, a live chat with an online favourite, or a favourite contact; or its group);
* screen off: the socket survives the OS's grace (iOS 5 s or a ~30 s background task, Android freezer
  10 s), or, for an app that keeps a background socket, the Doze schedule: connected in each
  maintenance window until the next screen-on (light Doze; deep Doze when the phone lies still);
* asleep: a push wakes the app (iOS: one wake per throttle slot; Android: every push, and messages
  arriving while woken keep it awake), which connects for ``wake_s`` and may open the app;
* calls: both ends online, the callee after its VoIP push delay.

Model choices shared with the fast engine (so that the two can be compared): a launch a notification
prompted holds the connection but is not a screen session (no reads, no messages). Left different, below
what tests/test_engines_agree.py resolves: messages of a session are spread over the whole session here
(the fast engine: over its part before midnight), and an iOS copy that arrives while an earlier push keeps
the phone awake sends no push here, so it does not use up the throttle slot (the fast engine decides push
candidates before wake-ups exist, so it does).
"""

from __future__ import annotations

import heapq

import numpy as np

from sim.world.distributions import launches, message_sizes, session_lengths
from sim.world.diurnal import local_times
from sim.world.events.client import Client, later
from sim.world.population import IOS
from sim.world.timeline import BACKGROUND, FOREGROUND, PUSH

DAY_MS = 86_400_000
MINUTE_MS = 60_000
NO_GROUP = -1


class MobileClient(Client):
    """The scenario's mobile chat user (see the module docstring)."""

    def __init__(self, world, user: int, rng, params=None) -> None:
        super().__init__(world, user, rng, params)
        pop, sc, u = world.pop, world.sc, self.user
        self.ios = bool(pop.platform[u] == IOS)
        self.keeps = bool(pop.keeps_socket[u])
        self.tz = int(pop.tz_ms[u])
        self.smult = float(pop.session_mult[u])
        self.mmult = float(pop.msg_mult[u])
        self.phase = int(pop.push_phase_ms[u])
        push = sc.push
        wake = int(push.wake_s * 1000)
        self.wake = wake
        self.delay = int(push.delay_s * 1000)
        lim = push.min_interval_ios_s if self.ios else push.min_interval_android_s
        self.throttled = self.ios or push.min_interval_android_s * 1000 > wake
        self.slot_len = int(max(lim * 1000, wake))
        self.last_slot = -1
        self.last_push = -(1 << 60)
        self.wake_until = -1
        self.screen = 0
        self.unread: list[tuple[int, int]] = []
        self.active_today = False
        self.prompted_today = 0
        self.prompted_total = 0.0
        self.active_days = 0
        self.prompted_mean = 0.0
        self.budget = sc.activity.sessions_per_dau_per_day * self.smult
        self.doze_epoch = 0
        self.still = False
        self.agenda: list = []
        self._today = None
        self.reads = sc.messaging.read_receipts
        self._seq = 0
        self.last_in: tuple[int, int] | None = None  # (sender, time) of the last 1:1 message written to us

    # -- the process ---------------------------------------------------------------------------------
    def run(self):
        w, env = self.world, self.env
        if self.keeps:
            off = -int(self.rng.random() * 8 * 3_600_000)  # the last screen-off before the clock starts
            self.still = bool(self.rng.random() < w.sc.os.android.stationary_probability)
            self._doze(off, 0)
        for d in range(w.total_days):
            self._plan(d)
            end = (d + 1) * DAY_MS
            ag = self.agenda
            pop = heapq.heappop
            while ag and ag[0][0] < end:
                t, _, fn, arg = pop(ag)
                if t > env._now:
                    yield env.timeout(t - env._now)
                fn(arg)
            if env._now < end:
                yield env.timeout(end - env._now)

    def _at(self, t: int, fn, arg) -> None:
        self._seq += 1
        heapq.heappush(self.agenda, (t, self._seq, fn, arg))

    # -- a day's plan ----------------------------------------------------------------------------------
    def draw_day(self, d: int) -> None:
        """Decide whether the user uses the app on world day ``d`` and draw the day's sessions.

        The world asks every client at the day's start (before any of them plans its messages), so
        that the day's message rate per foreground ms is known from the day's own sessions.
        """
        w, sc, rng = self.world, self.world.sc, self.rng
        if self.active_today:  # fold yesterday's prompted launches into the mean per active day
            self.active_days += 1
            self.prompted_total += self.prompted_today
            self.prompted_mean = self.prompted_total / self.active_days
        self.prompted_today = 0
        self._today = None
        p = d - w.warm
        if p < 0:
            act = rng.random() < sc.population.dau_over_mau
        else:
            act = rng.random() < w.p_other_day[w.month_of_day[p]] or w.sure_row(p)[self.user] == p
        self.active_today = bool(act)
        if not act:
            return
        w.count("day_active_user_days")
        a = sc.activity
        n = int(launches(rng, a, np.array([self.smult]), np.array([self.prompted_mean]),
                         bool(w.sure_row(p)[self.user] == p))[0])
        w.count("sessions_spontaneous", n)
        if n == 0:
            w.note_day(0.0)
            return
        start = d * DAY_MS + np.mod(local_times(rng, w.cdf, n) - self.tz - w.utc_at_zero, DAY_MS)
        dur = session_lengths(rng, a, n)
        w.note_day(float(dur.sum()))
        self._today = (start, dur)

    def _plan(self, d: int) -> None:
        """Put the day's sessions, messages and calls on the agenda."""
        if self._today is None:
            return
        w, sc, rng = self.world, self.world.sc, self.rng
        start, dur = self._today
        n = start.size
        linger = w.linger(self, n)
        k = rng.poisson(w.msg_rate_ms * self.mmult * dur)
        starts, durs = start.tolist(), dur.tolist()
        for i in range(n):
            self._at(starts[i], self._session_start, (starts[i] + durs[i] + linger[i]))
            self._at(starts[i] + durs[i], self._session_end, None)
        total = int(k.sum())
        if total:
            self._plan_messages(start, dur, k, total)
        c = sc.calls
        if c.calls_per_dau_per_day > 0:
            nc = int(rng.poisson(c.calls_per_dau_per_day))
            for _ in range(nc):
                i = int(rng.random() * n)
                inside = min(durs[i], (d + 1) * DAY_MS - starts[i])
                t = starts[i] + int(rng.random() * inside)
                self._at(t, self._call, None)

    def _plan_messages(self, start, dur, k, total: int) -> None:
        """The day's messages: times in their sessions, sizes, and who they go to (drawn now, resolved
        at send time where the state of the world decides: replies and live partners)."""
        w, rng, mc = self.world, self.rng, self.world.sc.messaging
        sess = np.repeat(np.arange(k.size), k)
        t = start[sess] + (rng.random(total) * dur[sess]).astype(np.int64)
        order = np.argsort(t, kind="stable")
        t, sess = t[order], sess[order]
        size = message_sizes(rng, w.sc.messaging, total)
        group = rng.random(total) < mc.group_fraction if mc.group_fraction > 0 else np.zeros(total, bool)
        store = rng.random(total) >= mc.no_store_fraction if mc.no_store_fraction > 0 else np.ones(total, bool)
        plan = w.recipients_plan(self, sess, group, k.size)
        tl, sl, zl, gl, stl = t.tolist(), sess.tolist(), size.tolist(), group.tolist(), store.tolist()
        for j in range(total):
            self._at(tl[j], self._message, (sl[j], zl[j], gl[j], stl[j], plan, j))

    # -- agenda actions ----------------------------------------------------------------------------------
    def _session_start(self, until: int) -> None:
        self.world.recent_starters.append(self.user)
        self.screen += 1
        if self.screen == 1:
            self.doze_epoch += 1
            if self.unread:
                now = self.env.now
                srv = self.world.server
                for author, _td in self.unread:
                    srv.receipt(self.user, author, now)
                self.unread = []
        self.hold_until(until, FOREGROUND)

    def _session_end(self, _arg) -> None:
        self.screen -= 1
        if self.screen == 0 and self.keeps:
            self.still = bool(self.rng.random() < self.world.sc.os.android.stationary_probability)
            self._doze(self.env.now, 0)

    def _message(self, arg) -> None:
        sess, size, is_group, store, plan, j = arg
        rcpts, quiet = plan.resolve(self, sess, is_group, j)
        if rcpts:
            self.world.server.originate(self, self.env.now, size, store, rcpts, quiet)

    def _call(self, _arg) -> None:
        self.world.place_call(self)

    # -- Doze: background-socket apps ------------------------------------------------------------------
    def _doze(self, off: int, k: int) -> None:
        """Maintenance window ``k`` after the screen-off at ``off`` (if the screen stayed off)."""
        tpl = self.world.tpl_deep if self.still else self.world.tpl_light
        epoch = self.doze_epoch
        now = self.env.now
        n = tpl.start.size
        while k < n and off + int(tpl.end[k]) <= now:
            k += 1  # windows already over (the run's first screen-off lies before the clock starts)
        if k >= n:
            return
        st, en = off + int(tpl.start[k]), off + int(tpl.end[k])

        def window() -> None:
            if self.doze_epoch != epoch:
                return
            self.hold_until(en, BACKGROUND)
            self._doze(off, k + 1)

        later(self.env, max(0, st - now), window)

    # -- push -------------------------------------------------------------------------------------------
    def push(self, t: int) -> None:
        if self.throttled:
            slot = (t + self.phase) // self.slot_len
            if slot == self.last_slot:
                return  # this slot had its wake: the copy waits for the next one
            self.last_slot = slot
            head = True
        else:
            head = t - self.last_push > self.wake
            self.last_push = t
        if head:
            self.world.count("push_wakeups")
        later(self.env, self.delay, lambda: self._woken(head))

    def _woken(self, head: bool) -> None:
        now = self.env.now
        end = now + self.wake
        self.wake_until = max(self.wake_until, end)
        self.hold_until(end, PUSH)
        if not head:
            return
        pr = self.world.sc.push.open_probability
        if pr > 0 and self.rng.random() < pr and self.active_today and self.prompted_today < self.budget:
            self.prompted_today += 1
            self.world.count("sessions_prompted")
            self.hold_until(now + self.world.session_ms(self.rng), PUSH)

    def on_delivered(self, sender: int, sent: int, t: int, loud: bool) -> None:
        if self.screen == 0:
            if loud and t < self.wake_until and not self.throttled:
                # a woken Android app stays awake wake_s after the last message it is notified of: the push for
                # it would have come delay_s after it was sent (messages of muted groups do not count)
                end = sent + self.delay + self.wake
                if end > self.wake_until:
                    self.wake_until = end
                    self.last_push = sent
                    self.hold_until(end, PUSH)
            if self.reads:
                self.unread.append((sender, t))
        elif self.reads:
            self.world.server.receipt(self.user, sender, t)
