"""The mobile chat world, advanced one simulated day at a time.

Why this shape: SimPy is used for what it is good at - the clock and the coarse per-day state
machine that other models (the IoT fleet, plan enforcement) synchronise with - while the per-user
state machines (sessions, OS sleep/wake, Doze, push wake-ups, calls) and the per-message work are
evaluated in bulk with numpy. Each :meth:`MobileWorld.step` builds the day's connection timeline,
generates the day's messages, routes every recipient copy against its recipient's actual timeline
and meters everything whose outcome has become final. State that crosses midnight (connections
still up, stored messages, unread messages, screen-off times) is carried to the next day, so memory
stays bounded by one day of traffic.

Pipeline of one day ``[cs, ce)``:

1. day-active users, their foreground sessions (:mod:`sessions`), socket linger after backgrounding
   and Doze maintenance windows for Android apps that keep a background socket (:mod:`os_model`);
2. calls (both ends online, :mod:`calls`);
3. union into per-user connection intervals; NAT idle timeouts cut long idle connections when
   heartbeats do not keep them alive (:func:`timeline.split_idle`);
4. messages (:mod:`messaging`); copies that find their recipient offline trigger push wake-ups
   (:mod:`push`), which add short connections;
5. enforcer hooks (rate limits, suspensions, storage caps; no-op by default, :mod:`enforcer`);
   the enforcer sees the day's usage meters at its end (notifications, throttling);
6. routing of new copies and of the pending pool; delivery and read receipts, routed the same way;
7. connections opened and closed (handshakes, heartbeats, concurrency; :mod:`connections`).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import simpy

from sim.meters import MeterBook, month_counts
from sim.rng import Streams
from sim.scenario import Scenario
from sim.world.clock import WorldClock, active_days
from sim.world.connections import DAY_MS, MINUTE_MS, ConnectionMeter
from sim.world.enforcer import REJECT_REASONS, Admission, Enforcer, Shifted, watched_usage
from sim.world.message_meter import MessageMeter
from sim.world.mobile.calls import call_intervals, draw_calls, meter_calls
from sim.world.mobile.messaging import (
    DELIVERED_LATER,
    DELIVERED_NOW,
    DELIVERY_RECEIPT,
    DISCARDED,
    DROPPED,
    MSG,
    PENDING,
    READ_RECEIPT,
    Copies,
    Originated,
    Routed,
    draw_messages,
    fan_out,
    route,
)
from sim.world.mobile.push import PushState, wake_intervals
from sim.world.mobile.sessions import Sessions, diurnal_cdf, draw_sessions
from sim.world.os_model import DozeTemplate, background_windows, linger_ms
from sim.world.population import Population
from sim.world.presence import Presence
from sim.world.timeline import (
    BACKGROUND,
    FOREGROUND,
    KEY,
    NEVER,
    Intervals,
    Sorted,
    apply_suspensions,
    locate,
    split_idle,
    union,
)

DAY_S = 86_400  # the day clock ticks in seconds
PREFIX = {MSG: "", DELIVERY_RECEIPT: "receipts_", READ_RECEIPT: "receipts_"}


class MobileWorld:
    """Mobile clients of one app over one billing period, metered into a :class:`MeterBook`."""

    def __init__(self, sc: Scenario, streams: Streams, book: MeterBook, protocol,
                 enforcer: Enforcer | None = None) -> None:
        self.sc = sc
        self.streams = streams
        self.book = book
        self.protocol = protocol
        self.pop = Population.draw(sc, streams)
        # The world's clock starts warm-up days before the billing period (book.start): the period
        # begins in steady state, and what the warm-up did is cut off the book (MeterBook.tail).
        clock = WorldClock.of(sc)
        self.days, self.warm, self.offset = clock.days, clock.warm, clock.offset
        self.total_days, self.period_end, self.utc_at_zero = clock.total_days, clock.period_end, clock.utc_at_zero
        day_starts = clock.day_starts
        self.cdf = diurnal_cdf(sc.activity.diurnal)
        start = sc.simulation.start
        tls_on = sc.protocol.tls != "off"
        self.conn = ConnectionMeter(book, protocol, sc.network, self.pop.n, day_starts, tls_on,
                                    sc.protocol.resumable, clock.month_starts, social=self.pop.social)
        self._hooks = enforcer is not None and type(enforcer) is not Enforcer
        self.enforcer = Shifted(enforcer, self.offset, self.warm * 1440) if self._hooks else Enforcer()
        # Every active user uses the app on at least one day of the period (so MAU is the active users):
        # a sure day each, plus other days at the rate that keeps P(day-active) = dau_over_mau.
        self.month_starts, self.month_of_day = clock.month_starts, clock.month_of_day
        # a growing app (growth): each user's presence window; None = everyone always (sim/world/presence.py)
        self.presence = Presence.of(sc, self.pop.n, streams, self.offset)
        self.sure_day, self.p_other_day = active_days(sc, self.pop.active_ids, self.pop.n,
                                                      streams.generator("activity_days"), clock, self.presence)
        self._warm_counts: dict[str, int] = {}
        self._month_snaps: list[dict[str, int]] = []   # counts at each billing month's start, and at the end
        self.push_state = PushState(self.pop.n)
        # every run reports these (0 without an enforcer), so that with limits that never bind the
        # usage is identical to the unrestricted run's
        self.counts: dict[str, int] = {"rejected": 0, "discarded": 0}
        self.tl = Intervals.empty()
        self.fg_carry = Intervals.empty()
        self.pending = Copies.empty()
        self.unread = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
        self._to_read: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        n = self.pop.n
        init = streams.generator("init")
        self.screen_off = -(init.random(n) * 8 * 3_600_000).astype(np.int64)
        self.stationary = init.random(n) < sc.os.android.stationary_probability
        horizon = self.period_end + 2 * DAY_MS
        self.tpl_light = DozeTemplate.build(sc.os.android, False, horizon)
        self.tpl_deep = DozeTemplate.build(sc.os.android, True, horizon)
        self.mm = MessageMeter(book, protocol, sc.messaging, self.counts, day_starts)
        self.ttl_ms = None if sc.messaging.ttl_s is None else int(sc.messaging.ttl_s * 1000)
        self.enforcer.begin(start, self.days * 1440)
        self.timings: dict[str, float] = {}
        self._t = time.perf_counter()

    def run(self, on_day=None) -> None:
        """Run the whole clock: SimPy ticks one day at a time and the world steps through it."""
        env = simpy.Environment()

        def clock(env: simpy.Environment):
            for d in range(self.total_days):
                self.step(d)
                if on_day is not None:
                    on_day()
                yield env.timeout(DAY_S)

        env.process(clock(env))
        env.run()

    def _lap(self, name: str) -> None:
        """Accumulate wall time per pipeline stage (reported by the benchmark)."""
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self._t
        self._t = now

    def _count(self, name: str, k: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(k)

    # -- one day ---------------------------------------------------------------------------------------
    def _rng(self, purpose: str, d: int) -> np.random.Generator:
        """The stream of ``purpose`` for world day ``d``, named by the *period* day (warm-up days apart).

        Named so, a day's draws do not depend on how long the warm-up is.
        """
        p = d - self.warm
        return self.streams.generator(purpose, p) if p >= 0 else self.streams.generator(purpose, "warmup", -p)

    def _day_active(self, rng: np.random.Generator, d: int) -> np.ndarray:
        """Users who use the app on world day ``d`` (each active user surely on its sure day)."""
        ids, p = self.pop.active_ids, d - self.warm
        if p < 0:
            return ids[rng.random(ids.size) < self.sc.population.dau_over_mau]
        return ids[(rng.random(ids.size) < self.p_other_day[self.month_of_day[p]]) | (self.sure_row(p)[ids] == p)]

    def sure_row(self, p: int) -> np.ndarray:
        """Each user's sure day in the billing month of period day ``p`` (warm-up days: the first month's)."""
        return self.sure_day[self.month_of_day[p] if p >= 0 else 0]

    def _start_period(self) -> None:
        """End of the warm-up: remember its counts (subtracted at the end) and who is still online."""
        self._warm_counts = {**self.conn.counts, **self.counts}
        pend = self.pending
        # the copies waiting in the store when the period starts: the period's conservation starts from them
        self._count("stored_at_start", int((pend.kind == MSG).sum()))
        self._count("receipts_stored_at_start", int((pend.kind != MSG).sum()))
        tl = self.tl
        self.conn.start_period(tl.user[tl.opened & (tl.start < self.offset) & (tl.end > self.offset)])

    def _start_month(self, m: int) -> None:
        """Billing month ``m`` (> 0) of a multi-month run begins at this midnight: who is online counts in its MAU
        from its first minute, and the counts so far are the earlier months' (:attr:`month_counts`)."""
        self._month_snaps.append(self._snapshot())
        start = int(self.month_starts[m])
        tl = self.tl
        self.conn.start_month(tl.user[tl.opened & (tl.start < start) & (tl.end > start)], m)

    def _snapshot(self) -> dict[str, int]:
        pend = self.pending
        return {**self.conn.counts, **self.counts, "stored": int((pend.kind == MSG).sum()),
                "receipts_stored": int((pend.kind != MSG).sum())}

    @property
    def month_counts(self) -> list[dict[str, int]]:
        """Counts per billing month (after :meth:`finish`): counters' growth within the month, and the copies
        stored at its start (``stored_at_start``) and end (``stored``) - so that each month conserves messages
        on its own, and a copy stored on the 30th and delivered on the 1st is counted once, in the month each
        event happened."""
        return month_counts(self._month_snaps)

    def _idle(self) -> bool:
        """Nothing can happen on the coming day: no active user and nothing carried over (no connection,
        stored copy or unread message). Such a day draws only from its own streams and adds zeros to the
        counts the first day created, so it can be skipped (e.g. the empty app of an IoT-only scenario)."""
        return (not self._hooks and self.pop.active_ids.size == 0 and len(self.tl) == 0 and len(self.pending) == 0
                and self.unread[0].size == 0 and not self._to_read and len(self.fg_carry) == 0)

    def step(self, d: int) -> None:
        sc, pop = self.sc, self.pop
        cs, ce = d * DAY_MS, (d + 1) * DAY_MS
        if d == self.warm:
            self._start_period()
            self._month_snaps = [self._snapshot()]
        elif d > self.warm and self.month_of_day[d - self.warm] != self.month_of_day[d - self.warm - 1]:
            self._start_month(int(self.month_of_day[d - self.warm]))
        if d > 0 and self._idle():
            return
        rng_sess = self._rng("sessions", d)
        rng_os = self._rng("os", d)
        rng_msg = self._rng("messages", d)
        rng_conn = self._rng("connections", d)
        self._t = time.perf_counter()
        hooks = self._hooks and d >= self.warm

        users = self._day_active(rng_sess, d)
        pres = self.presence
        if pres is not None:
            users = users[pres.on_day(users, cs, ce)]
        self._active_today = np.zeros(pop.n, dtype=bool)
        self._active_today[users] = True
        act, mcfg = self._activity(d)
        sess = draw_sessions(rng_sess, pop, users, cs, act, self.cdf, self.utc_at_zero,
                             self.push_state.prompted, self.sure_row(d - self.warm)[users] == d - self.warm)
        if pres is not None:  # a user joining or leaving today uses the app only inside its window
            sess = dataclasses.replace(sess, start=pres.squeeze(sess.user, sess.start, cs, ce))
        self._count("day_active_user_days", users.size)
        self._count("sessions_spontaneous", len(sess.start))
        fg = Intervals.new(sess.user, sess.start, sess.end, FOREGROUND)  # screen-on, sorted by (user, start)
        fg_conn = Intervals.new(sess.user, sess.start, sess.end + linger_ms(rng_os, pop, sess.user, sc.os), FOREGROUND)
        self._lap("sessions")
        bg = self._background(fg, cs, ce, rng_os)
        self._lap("background")
        parts = [self.tl, fg_conn, bg]
        calls = None
        if sc.calls.calls_per_dau_per_day > 0:
            calls = draw_calls(self._rng("calls", d), pop, sess, users, sc.calls, ce)
            if pres is not None:
                calls.callee = pres.redirect(self._rng("presence_calls", d), calls.callee, calls.caller, calls.t,
                                             self._all_day(cs, ce))
            parts.append(call_intervals(calls, int(sc.push.delay_s * 1000)))
        base = self._nat(Intervals.concat(parts), rng_conn)  # Sorted: unmerged, queryable
        self._lap("timeline")

        msgs = draw_messages(rng_msg, pop, sess, users, mcfg, ce)
        if hooks:
            msgs = self._admit(msgs)
        self._lap("messages")
        mc = sc.messaging
        quiet: list[np.ndarray] = []  # copies of muted groups: no push
        copies = fan_out(rng_msg, pop, msgs, sess, mc.live_conversation_fraction,
                         need_sender=mc.delivery_receipts or mc.read_receipts or hooks, timeline=base, cfg=mc, quiet_out=quiet)
        if pres is not None and len(copies):
            copies, quiet = self._redirect(copies, quiet, d, cs, ce)
        self._lap("fan_out")
        base_connected = locate(base, copies.recipient, copies.t).connected
        cand = ~base_connected & copies.store & ~pop.push_off[copies.recipient]
        if quiet:
            cand &= ~quiet[0]
        wakes = wake_intervals(pop, copies.recipient[cand], copies.t[cand], sc.push, self._rng("push", d), sc.activity,
                               self.push_state, self._active_today,
                               sc.activity.sessions_per_dau_per_day * pop.session_mult)
        self._count("push_wakeups", len(wakes))
        tl = base.add(wakes)
        if sc.push.enabled:
            # pushes the server sends: one per copy that finds its recipient offline (a copy that arrives while
            # an earlier push keeps the phone awake is delivered on that connection, with no push of its own)
            ci = np.flatnonzero(cand)
            self._count("push_notifications", int((~locate(tl, copies.recipient[ci], copies.t[ci]).connected).sum()))
        else:
            self._count("push_notifications", 0)
        del cand
        self._lap("push")
        suspended = False
        if hooks:
            n_before = len(copies)
            tl, msgs, copies = self._suspend(tl, msgs, copies, cs, ce, rng_conn)
            suspended = True if len(copies) != n_before or self.counts.get("suspensions") else False
        if calls is not None:
            meter_calls(self.book, self.protocol, calls, sc.calls, self.counts)
        self.mm.meter_uploads(msgs)
        self._lap("uploads")

        # route the copies still pending from earlier days, then today's (both sorted by recipient)
        still = []
        receipts = []
        for batch in (self.pending, copies):
            if not len(batch):
                continue
            known = base_connected if batch is copies and not suspended else None
            routed = route(tl, batch, ce, self.ttl_ms, known)
            if hooks and batch is copies:
                self._storage_cap(batch, routed)
            self.mm.account(batch, routed)
            delivered = (batch.kind == MSG) & ((routed.outcome == DELIVERED_NOW) | (routed.outcome == DELIVERED_LATER))
            receipts.append(self._receipt_copies(batch, routed, delivered))
            still.append(batch.take(routed.outcome == PENDING))
            del routed, delivered
        del copies
        self._lap("routing")
        rc = Copies.concat(receipts + [self._read_receipts(fg, ce)])
        if len(rc):
            rc = rc.sorted()
            rr = route(tl, rc, ce, self.ttl_ms)
            self.mm.meter_uploads_receipts(rc)
            self.mm.account(rc, rr)
            still.append(rc.take(rr.outcome == PENDING))
        self.pending = Copies.concat(still).sorted()
        self.pending.new[:] = False
        self._lap("receipts")

        # connections: open those that started today, close those whose end is final
        tl = tl.merged()
        self.conn.open(tl, np.flatnonzero(~tl.opened & (tl.start < ce)), rng_conn)
        self._lap("conn_open")
        self.conn.sweep(tl, cs, ce)
        self._lap("conn_sweep")
        self.conn.close(tl, np.flatnonzero(tl.end < ce), rng_conn)
        self.conn.day_end(ce)  # the day's connections are all opened and closed (group channels, peak_channels)
        self._lap("conn_close")
        self.tl = tl.take(tl.end >= ce)
        self.fg_carry = fg.take(fg.end > ce) if sc.messaging.read_receipts else Intervals.empty()
        self._count("sessions_prompted", int(self.push_state.today.sum()))
        self.push_state.end_day(users)
        if hooks:
            self.enforcer.day_end(ce, self._usage_so_far)

    # -- pieces ----------------------------------------------------------------------------------------
    def _activity(self, d: int):
        """The day's session and message settings: the scenario's, times ``(1 + growth.activity)^t`` (t in months
        from the start) when per-user activity grows."""
        sc = self.sc
        g = sc.growth
        if g is None or not g.activity:
            return sc.activity, sc.messaging
        from sim.world import growth

        t = growth.seconds_to_months(max(0, d - self.warm) * 86_400.0,
                                     growth.month_lengths_s(sc.simulation.start, sc.simulation.months))
        k = float(growth.activity_multiplier(g, t))
        return (sc.activity.model_copy(update={"sessions_per_dau_per_day": sc.activity.sessions_per_dau_per_day * k}),
                sc.messaging.model_copy(update={"messages_per_dau_per_day": sc.messaging.messages_per_dau_per_day * k}))

    def _all_day(self, cs: int, ce: int) -> np.ndarray:
        """Active users present the whole day (a growing app): who an absent recipient is redirected to."""
        ids = self.pop.active_ids
        return ids[self.presence.all_day(ids, cs, ce)]

    def _redirect(self, copies: Copies, quiet: list[np.ndarray], d: int, cs: int, ce: int):
        """Copies for recipients not present are for users present all day instead (sim/world/presence.py)."""
        rec = self.presence.redirect(self._rng("presence", d), copies.recipient, copies.sender, copies.t,
                                     self._all_day(cs, ce))
        if rec is copies.recipient:
            return copies, quiet
        order = np.argsort(rec * KEY + copies.t, kind="stable")
        copies = dataclasses.replace(copies, recipient=rec).take(order)
        return copies, [q[order] for q in quiet]

    def _background(self, fg: Intervals, cs: int, ce: int, rng: np.random.Generator) -> Intervals:
        """Doze maintenance windows for apps that keep a background socket (see :mod:`os_model`)."""
        keeps = self.pop.keeps_socket
        if not keeps.any():
            return Intervals.empty()
        p_still = self.sc.os.android.stationary_probability
        scr = union(fg.take(keeps[fg.user]), presorted=True)
        u, on, off = scr.user, scr.start, scr.end
        # gaps between screen-on intervals: (previous off, next on); first on of a user pairs with carry
        first = np.ones(u.size, dtype=bool)
        first[1:] = u[1:] != u[:-1]
        last = np.ones(u.size, dtype=bool)
        last[:-1] = u[1:] != u[:-1]
        prev_off = np.where(first, self.screen_off[u], np.roll(off, 1))
        still = np.where(first, self.stationary[u], rng.random(u.size) < p_still)
        gap_user, gap_off, gap_on, gap_still = [u], [prev_off], [on], [still]
        # open gaps: after each user's last screen-off today, and users who did not open the app
        lu, loff = u[last], off[last]
        self.screen_off[lu] = loff
        self.stationary[lu] = rng.random(lu.size) < p_still
        seen_today = np.zeros(self.pop.n, dtype=bool)
        seen_today[lu] = True
        idle = np.flatnonzero(keeps & self.pop.active & ~seen_today)  # a user who never uses the app: silent
        if self.presence is not None:  # not yet joined, or gone: no app on the phone
            idle = idle[self.presence.on_day(idle, cs, ce)]
        open_user = np.concatenate([lu, idle])
        gap_user.append(open_user)
        gap_off.append(self.screen_off[open_user])
        gap_on.append(np.full(open_user.size, NEVER, dtype=np.int64))
        gap_still.append(self.stationary[open_user])
        gu, goff, gon, gst = (np.concatenate(x) for x in (gap_user, gap_off, gap_on, gap_still))
        parts = []
        for tpl, mask in ((self.tpl_light, ~gst), (self.tpl_deep, gst)):
            parts.append(background_windows(tpl, gu[mask], goff[mask], gon[mask], cs, ce, BACKGROUND))
        out = Intervals.concat(parts)
        if self.presence is not None and len(out):  # windows only while the app is installed
            keep = self.presence.at(out.user, out.start)
            out = out.take(keep)
            out.end[:] = np.minimum(out.end, self.presence.leave[out.user])
        return out

    def _nat(self, parts: Intervals, rng: np.random.Generator) -> Sorted:
        """Silent NAT deaths of connections idle longer than the NAT timeout without heartbeats."""
        net = self.sc.network
        nat = int(net.nat_idle_timeout_s * 1000)
        hb = int(net.heartbeat_s * 1000)
        if 0 < hb < nat:
            return Sorted.of(parts)
        tl = union(parts)
        detect = None if hb == 0 else hb - nat
        backoff = (rng.exponential(net.reconnect_backoff_s * 1000, len(tl))).astype(np.int64)
        long_ = int(((tl.end - tl.start) > nat).sum())
        if long_ == 0:
            return Sorted.of(tl, presorted=True)
        self._count("nat_timeouts", long_)
        return Sorted.of(union(split_idle(tl, nat, detect, backoff)), presorted=True)

    def _admit(self, msgs: Originated) -> Originated:
        """Ask the enforcer which originated messages are accepted (rate limits, throttling).

        Accounting (conservation is over final outcomes): a finally rejected message counts all its
        recipient copies in ``messages_sent`` and in ``rejected`` (and ``rejected_<reason>``); it is
        not uploaded as accepted, so it is not in ``messages_originated``. Every refused *attempt*
        (including those later retried successfully) costs its upload inbound and the platform's error
        reply outbound (an application-protocol message of ``receipt_bytes``); ``rejected_attempts``
        counts them and ``message_retries`` the retries among them. A retried message that gets
        through is sent at its accepted attempt's time.
        """
        order = np.argsort(msgs.t, kind="stable")
        res = self.enforcer.admit_messages(msgs.t[order], msgs.sender[order], msgs.fanout[order],
                                           sizes=msgs.size[order])  # payload bytes (a quota counting size units)
        if res is None:
            return msgs
        if isinstance(res, Admission):
            keep_s, reason_s = np.asarray(res.keep, dtype=bool), np.asarray(res.reason)
            att = order[res.attempt_msg]
            att_t = np.asarray(res.attempt_t, dtype=np.int64)
        else:  # a plain mask: one refused attempt per rejected message, no retry
            keep_s = np.asarray(res, dtype=bool)
            reason_s = np.where(keep_s, 0, REJECT_REASONS.index("enforcer") + 1)
            att = order[~keep_s]
            att_t = msgs.t[att]
        keep = np.zeros(len(msgs), dtype=bool)
        keep[order] = keep_s
        reason = np.zeros(len(msgs), dtype=np.int8)
        reason[order] = reason_s
        if att.size:
            self.mm.refused_attempts(msgs.size[att], att_t)
            self._count("message_retries", att.size - int((~keep).sum()))
        if isinstance(res, Admission):
            t = msgs.t.copy()
            t[order] = res.t
            msgs = dataclasses.replace(msgs, t=t)  # keeps every field (a group message keeps its group)
        for code, name in enumerate(REJECT_REASONS, start=1):
            sel = reason == code
            if sel.any():
                self.mm.reject(name, int(sel.sum()), int(msgs.fanout[sel].sum()))
        return msgs.take(keep)

    def _suspend(self, tl, msgs: Originated, copies: Copies, cs: int, ce: int, rng):
        nmin = (ce - cs) // MINUTE_MS
        per_min = np.bincount((msgs.t - cs) // MINUTE_MS, minlength=nmin)[:nmin]
        iv = tl.iv
        starts = iv.start[(iv.start >= cs) & (iv.start < ce) & ~iv.opened]
        conn_min = np.bincount((starts - cs) // MINUTE_MS, minlength=nmin)[:nmin]
        windows = self.enforcer.suspensions(cs, ce, per_min, conn_min)
        if not windows:
            return tl, msgs, copies
        backoff = (rng.exponential(self.sc.network.reconnect_backoff_s * 1000, len(tl))).astype(np.int64)
        tl, closed, rejected = apply_suspensions(tl.merged(), windows, backoff)
        tl = Sorted.of(tl, presorted=True)
        self._count("suspensions", len(windows))
        self._count("suspension_closed_connections", closed)
        self._count("suspension_rejected_connects", rejected)
        ok = locate(tl, msgs.sender, msgs.t).connected
        if not ok.all():
            # the sender's connection is cut: nothing reaches the server, so no bytes are charged
            n_msg, n_copies = int((~ok).sum()), int(msgs.fanout[~ok].sum())
            self.mm.reject("suspended", n_msg, n_copies)
            self.enforcer.note_rejected("suspended", n_msg, n_copies)
            # copies are sorted by recipient, not by message: a copy goes iff its sender was online when sending
            # (under an enforcer the copies carry their sender, see step)
            keep_copy = locate(tl, copies.sender, copies.t).connected
            msgs, copies = msgs.take(ok), copies.take(keep_copy)
        return tl, msgs, copies

    def _storage_cap(self, c: Copies, r: Routed) -> None:
        """Copies the enforcer does not let the store take are *discarded* (buffer full)."""
        stored = c.new & r.offline & c.store & (r.outcome != DROPPED)
        idx = np.flatnonzero(stored)
        mask = self.enforcer.admit_storage(c.t[idx], c.size[idx], self.mm.stored_level)
        if mask is None:
            return
        bad = idx[~np.asarray(mask, dtype=bool)]
        r.outcome[bad] = DISCARDED
        r.when[bad] = c.t[bad]
        if bad.size:
            self._count("discarded_storage", bad.size)

    def _usage_so_far(self, since: int = 0) -> dict[str, np.ndarray]:
        """Per-minute usage meters as known now (see :func:`sim.world.enforcer.watched_usage`)."""
        return watched_usage(self.conn, self.mm, since)

    def _receipt_copies(self, c: Copies, r: Routed, delivered: np.ndarray) -> Copies:
        """Delivery receipts at delivery; delivered copies also wait to be read (read receipts)."""
        mc = self.sc.messaging
        idx = np.flatnonzero(delivered)
        if mc.read_receipts and idx.size:
            self._to_read.append((c.recipient[idx], c.sender[idx], r.when[idx]))
        if not (mc.delivery_receipts and idx.size):
            return Copies.empty()
        return _receipt_copies(c.sender[idx], c.recipient[idx], r.when[idx], int(round(mc.receipt_bytes)),
                               DELIVERY_RECEIPT)

    def _read_receipts(self, fg: Intervals | None, ce: int) -> Copies:
        """Read receipts when the reader has the app on screen at delivery, or next opens it."""
        if not self.sc.messaging.read_receipts:
            return Copies.empty()
        parts = [self.unread, *self._to_read]
        self._to_read = []
        reader, author, td = (np.concatenate([p[i] for p in parts]) for i in range(3))
        lk = locate(union(Intervals.concat([self.fg_carry, fg])), reader, td)
        t_read = np.where(lk.connected, td, lk.next_start)
        done = t_read < ce
        self.unread = (reader[~done], author[~done], td[~done])
        size = int(round(self.sc.messaging.receipt_bytes))
        return _receipt_copies(author[done], reader[done], t_read[done], size, READ_RECEIPT)

    # -- end of run ------------------------------------------------------------------------------------
    def finish(self) -> dict:
        """Close what is still open at the period end; flush series; return world meters."""
        rng = self.streams.generator("connections", "end")
        tl = self.tl
        tl = tl.take(tl.start < self.period_end)
        self.conn.close(tl, np.arange(len(tl)), rng, at_period_end=True)
        pend = self.pending
        self._count("stored", int((pend.kind == MSG).sum()))
        self._count("receipts_stored", int((pend.kind != MSG).sum()))
        self._count("unread_at_end", int(self.unread[0].size))
        if self.warm == 0:
            self._count("stored_at_start", 0)
            self._count("receipts_stored_at_start", 0)
        self._month_snaps.append(self._snapshot())
        book = self.book
        meters = self.conn.flush()
        totals = {**self.conn.counts, **self.counts}
        for k in sorted(set(totals) | set(self._warm_counts)):
            book.count(k, totals.get(k, 0) - self._warm_counts.get(k, 0))
        self.mm.write()
        meters.update(self.mm.meters())  # messages_in/_out and their sizes
        return meters


def _receipt_copies(to: np.ndarray, frm: np.ndarray, t: np.ndarray, size: int, kind: int) -> Copies:
    n = to.size
    return Copies(
        recipient=to.astype(np.int64),
        sender=frm.astype(np.int64),
        t=t.astype(np.int64),
        size=np.full(n, size, dtype=np.int64),
        kind=np.full(n, kind, dtype=np.int8),
        store=np.ones(n, dtype=bool),
        new=np.ones(n, dtype=bool),
    )


__all__ = ["MobileWorld", "Sessions"]
