"""The events engine's world: a SimPy environment with one process per client and the server.

Why this shape: it is the plain reference model. Every client lives its day on the SimPy clock
(:mod:`sim.world.events.mobile`, or a custom behaviour: :mod:`sim.world.events.custom`); the server
(:mod:`sim.world.events.server`) decides each copy as it is sent. Nothing is decided in bulk, so no
day boundary, batch or sort order can shape the result; ``tests/test_engines_agree.py`` holds the
fast engine against it.

What the two engines share rather than copy: the population and its social graph
(:mod:`sim.world.population`, drawn from the same streams, so a seed gives both engines the same
users), the OS timing (:mod:`sim.world.os_model`'s Doze templates), the diurnal curve, the
distributions, the enforcer interface, and all metering: connections go through
:class:`~sim.world.connections.ConnectionMeter` (``record_open``/``record_close``) and copies through
:class:`~sim.world.message_meter.MessageMeter`, into the same :class:`~sim.meters.MeterBook`, once per
simulated midnight (so a plan's notifications and throttling see the day's usage, as in the fast
engine). Behavioural draws come from per-user streams of their own (``events``, ``user``, id).

Times are int ms on the world's clock, which starts ``warmup_days`` before the billing period.
"""

from __future__ import annotations

import time
from collections import deque
from itertools import chain

import numpy as np
import simpy

from sim.meters import MeterBook, month_counts
from sim.rng import Streams
from sim.scenario import Scenario
from sim.world.clock import WorldClock, active_days
from sim.world.connections import DAY_MS, ConnectionMeter
from sim.world.copies import MSG, PENDING, Copies, Routed
from sim.world.distributions import lognormal_mean_one, session_lengths
from sim.world.diurnal import diurnal_cdf
from sim.world.enforcer import Enforcer, Shifted, watched_usage
from sim.world.events.client import Client, client_class
from sim.world.events.conversation import RecipientsPlan
from sim.world.events.mobile import MobileClient
from sim.world.events.server import Server
from sim.world.message_meter import MessageMeter
from sim.world.mobile.calls import CallBatch, meter_calls
from sim.world.os_model import DozeTemplate, linger_ms
from sim.world.population import IOS, Population
from sim.world.timeline import NEVER


class EventsWorld:
    """Clients of one app over one billing period as SimPy processes, metered into a :class:`MeterBook`."""

    def __init__(self, sc: Scenario, streams: Streams, book: MeterBook, protocol,
                 enforcer: Enforcer | None = None) -> None:
        self.sc, self.streams, self.book, self.protocol = sc, streams, book, protocol
        self.pop = pop = Population.draw(sc, streams)
        clock = WorldClock.of(sc)
        self.days, self.warm, self.offset = clock.days, clock.warm, clock.offset
        self.total_days, self.period_end, self.utc_at_zero = clock.total_days, clock.period_end, clock.utc_at_zero
        day_starts = clock.day_starts
        self.cdf = diurnal_cdf(sc.activity.diurnal)
        start = sc.simulation.start
        net = sc.network
        tls_on = sc.protocol.tls != "off"
        self.tickets_on = sc.protocol.resumable  # tickets, or TLS 1.2 session IDs
        self.ticket_ms = int(net.ticket_lifetime_s * 1000)
        self.p_resume, self.p_graceful = net.tls_resumption_probability, net.graceful_close_fraction
        self.nat_timeout_ms = int(net.nat_idle_timeout_s * 1000)
        self.counts: dict[str, int] = {"rejected": 0, "discarded": 0}
        self.conn = ConnectionMeter(book, protocol, net, pop.n, day_starts, tls_on, self.tickets_on,
                                    clock.month_starts, social=pop.social)
        self.month_starts, self.month_of_day = clock.month_starts, clock.month_of_day
        self.mm = MessageMeter(book, protocol, sc.messaging, self.counts, day_starts)
        self._hooks = self.hooks = enforcer is not None and type(enforcer) is not Enforcer
        self.enforcer = Shifted(enforcer, self.offset, self.warm * 1440) if self._hooks else Enforcer()
        self.dry_run = bool(getattr(enforcer, "dry_run", False))
        inner = type(enforcer) if self._hooks else Enforcer
        # an enforcer written only for the fast engine's day batches: asked message by message, and (with
        # suspensions) at the end of every minute with the day's per-minute counts so far
        self.batch_admit = (inner.admit_messages is not Enforcer.admit_messages
                            and inner.message_cap is Enforcer.message_cap)
        self.ticks = inner.suspensions is not Enforcer.suspensions
        self.minute_counts = (np.zeros(1440), np.zeros(1440)) if self.ticks else None
        self.enforcer.begin(start, self.days * 1440)
        # every active user uses the app on at least one day of the period (MAU = active users)
        self.sure_day, self.p_other_day = active_days(sc, pop.active_ids, pop.n,
                                                      streams.generator("events", "activity_days"))
        horizon = self.period_end + 2 * DAY_MS
        self.tpl_light = DozeTemplate.build(sc.os.android, False, horizon)
        self.tpl_deep = DozeTemplate.build(sc.os.android, True, horizon)
        self.push_off = pop.push_off.tolist()
        a = sc.activity
        # messages per foreground ms, set each day from the day's sessions (_new_day)
        self.msg_rate_ms = sc.messaging.messages_per_dau_per_day / (a.sessions_per_dau_per_day * a.session_mean_s * 1000.0)
        self._fg_today = 0.0
        self._dau_today = 0
        self.env = simpy.Environment()
        self.clients: list[Client | None] = [None] * pop.n
        self._reset_logs()
        self.server = Server(self)
        self._custom_hb = False
        self.active_list = pop.active_ids.tolist()
        self._build_clients(streams)
        self.recent_starters: deque[int] = deque(maxlen=8)  # users whose sessions started last (live partners)
        self._groups: dict[int, tuple[list[int], list[bool]]] = {}
        self.ccu_level = 0
        self.ccu_ev = np.zeros(book.minutes)
        self._warm_counts: dict[str, int] = {}
        # counts at each billing month's start, and at the end
        self._month_snaps: list[dict[str, int]] = [{}] if self.warm == 0 else []
        self.timings: dict[str, float] = {}

    def _build_clients(self, streams: Streams) -> None:
        pop = self.pop
        kind = np.full(pop.n, -1, dtype=np.int64)          # -1: the default mobile client
        specs = self.sc.clients
        if specs:
            from sim.world.events.custom import resolve_behaviour

            u = streams.generator("events", "clients").random(pop.n)
            lo = 0.0
            for i, spec in enumerate(specs):
                kind[(u >= lo) & (u < lo + spec.share)] = i
                lo += spec.share
        classes = [client_class(resolve_behaviour(s.behaviour)) for s in specs] if specs else []
        active = pop.active
        for user in range(pop.n):
            k = int(kind[user])
            if k < 0 and not active[user]:
                continue  # never uses the app: no process, never a recipient
            rng = streams.generator("events", "user", user)
            if k < 0:
                self.clients[user] = MobileClient(self, user, rng)
            else:
                self.clients[user] = classes[k](self, user, rng, specs[k].params)
        self.n_custom = int((kind >= 0).sum())
        #: users per behaviour (the usage's ``run.clients``): the default client and each custom one
        self.client_counts = {"default": int(sum(1 for c in self.clients if isinstance(c, MobileClient)))}
        for i, spec in enumerate(specs):
            self.client_counts[spec.behaviour] = self.client_counts.get(spec.behaviour, 0) + int((kind == i).sum())
        default_hb = int(round(self.sc.network.heartbeat_s * 1000))
        # clients with their own heartbeat: keep-alives are metered per connection from each one's period
        self._custom_hb = any(c is not None and c.hb_ms != default_hb for c in self.clients)

    def _reset_logs(self) -> None:
        """Empty the day logs (cleared in place: the server holds their bound ``append`` methods)."""
        for name in ("opens", "closes", "finals", "fresh", "uploads", "receipt_uploads", "refused", "calls"):
            lst = getattr(self, name, None)
            if lst is None:
                setattr(self, name, [])
            else:
                lst.clear()

    # -- running ------------------------------------------------------------------------------------
    def run(self, on_day=None) -> None:
        """Run the whole clock: clients, the midnight flushes, and (with suspensions) the minute ticks."""
        t0 = time.perf_counter()
        env = self.env
        for c in self.clients:
            if c is not None:
                env.process(c.run())
        self.mobile_clients = [c for c in self.clients if isinstance(c, MobileClient)]
        self._new_day(0)
        env.process(self._clock(on_day))
        if self.ticks:
            env.process(self._minutes())
        env.run()  # the clock stops it at the period end (_clock), before anything else happens at that instant
        self.timings["events"] = time.perf_counter() - t0

    def _clock(self, on_day):
        env = self.env
        for d in range(self.total_days):
            ev = simpy.Event(env)
            ev._ok, ev._value = True, None
            env.schedule(ev, 0, (d + 1) * DAY_MS - env.now)  # URGENT: before anything else at midnight
            if d == self.total_days - 1:
                # then stop: [start, end) is the period, and what clients would do at its end is not in it
                stop = simpy.Event(env)
                stop._ok, stop._value = True, None
                stop.callbacks.append(simpy.core.StopSimulation.callback)
                env.schedule(stop, 0, (d + 1) * DAY_MS - env.now)
            yield ev
            self._midnight(d)
            if on_day is not None:
                on_day()

    def _minutes(self):
        """At the end of every minute of the period: the enforcer's suspensions, from the day's per-minute
        messages and connects so far (the fast engine asks once a day with the whole day's)."""
        env = self.env
        for m in range(self.warm * 1440, self.total_days * 1440):
            yield env.timeout((m + 1) * 60_000 - env.now)
            cs = m // 1440 * DAY_MS
            msgs, conns = self.minute_counts
            windows = self.enforcer.suspensions(cs, cs + DAY_MS, msgs.copy(), conns.copy())
            if windows:
                self.server.suspension_windows(windows)
            if (m + 1) % 1440 == 0:
                msgs[:], conns[:] = 0, 0

    def _midnight(self, d: int) -> None:
        ce = (d + 1) * DAY_MS
        self.server.expire_until(ce)
        self._flush()
        self.conn.day_end(ce)  # every connection of the day is opened and, if over, closed (peak_channels)
        if d + 1 == self.warm:
            self._start_period()
        p = d + 1 - self.warm
        if p == 0:
            self._month_snaps = [self._snapshot()]
        elif 0 < p < self.days and self.month_of_day[p] != self.month_of_day[p - 1]:
            self._start_month(int(self.month_of_day[p]))
        if self._hooks and d >= self.warm:
            self.enforcer.day_end(ce, lambda since=0: watched_usage(self.conn, self.mm, since))
        if d + 1 < self.total_days:
            self._new_day(d + 1)

    def _new_day(self, d: int) -> None:
        """Every default client draws day ``d``'s sessions; the message rate per foreground ms follows:
        ``messages_per_dau_per_day`` over the day's mean foreground time of a day-active user."""
        self._fg_today, self._dau_today = 0.0, 0
        for c in self.mobile_clients:
            c.draw_day(d)
        if self._dau_today and self._fg_today > 0:
            self.msg_rate_ms = self.sc.messaging.messages_per_dau_per_day / (self._fg_today / self._dau_today)

    def _start_month(self, m: int) -> None:
        """Billing month ``m`` (> 0) begins at this midnight: who is online counts in its MAU from its first minute
        (as at the period start); counts so far are the earlier months' (:attr:`month_counts`)."""
        self._month_snaps.append(self._snapshot())
        online = [c.user for c in self.clients if c is not None and c.connected]
        self.conn.start_month(np.asarray(online, dtype=np.int64), m)

    def _snapshot(self) -> dict[str, int]:
        waiting = self.server.waiting()
        return {**self.conn.counts, **self.counts, "stored": sum(1 for c in waiting if c.kind == MSG),
                "receipts_stored": sum(1 for c in waiting if c.kind != MSG)}

    @property
    def month_counts(self) -> list[dict[str, int]]:
        """Counts per billing month, as :attr:`sim.world.mobile.world.MobileWorld.month_counts`."""
        return month_counts(self._month_snaps)

    def sure_row(self, p: int) -> np.ndarray:
        """Each user's sure day in the billing month of period day ``p`` (warm-up days: the first month's)."""
        return self.sure_day[self.month_of_day[p] if p >= 0 else 0]

    def _start_period(self) -> None:
        self._warm_counts = {**self.conn.counts, **self.counts}
        waiting = self.server.waiting()
        self.count("stored_at_start", sum(1 for c in waiting if c.kind == MSG))
        self.count("receipts_stored_at_start", sum(1 for c in waiting if c.kind != MSG))
        online = [c.user for c in self.clients if c is not None and c.connected]
        self.conn.start_period(np.asarray(online, dtype=np.int64))

    # -- what clients and the server report ------------------------------------------------------------
    def count(self, name: str, k: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(k)

    def on_open(self, client: Client, now: int, cause: int, resumed: bool) -> None:
        self.opens.append((client.user, now, cause, resumed))
        if self.minute_counts is not None:
            self.minute_counts[1][(now // 60_000) % 1440] += 1
        self.ccu_level += 1
        m = now // 60_000
        if m < self.ccu_ev.size and self.ccu_level > self.ccu_ev[m]:
            self.ccu_ev[m] = self.ccu_level
        self.server.on_connect(client, now)

    def on_close(self, client: Client, start: int, end: int, graceful: bool) -> None:
        hb = client.hb_ms
        self.closes.append((client.user, start, end, graceful, (end - start) // hb if hb > 0 else 0))
        self.ccu_level -= 1

    def final(self, c, outcome: int, when: int, offline: bool) -> None:
        c.done = True
        self.finals.append((c.recipient, c.sender, c.t, c.size, c.kind, c.store, c.new, outcome, when, offline))

    def log_refused(self, t: int, size: int) -> None:
        self.refused.append((t, size))

    def reject(self, reason: str, copies: int, notify: bool = True) -> None:
        self.mm.reject(reason, 1, copies)
        if notify:
            self.enforcer.note_rejected(reason, 1, copies)

    def storage_refused(self, c) -> bool:
        mask = self.enforcer.admit_storage(np.array([c.t]), np.array([c.size]), self.mm.stored_level)
        return mask is not None and not bool(np.asarray(mask)[0])

    def backoff_ms(self, rng) -> int:
        return int(rng.exponential(self.sc.network.reconnect_backoff_s * 1000))

    # -- draws the default client asks for -------------------------------------------------------------
    def note_day(self, fg_ms: float) -> None:
        self._fg_today += fg_ms
        self._dau_today += 1

    def linger(self, client: MobileClient, n: int) -> list[int]:
        """How long the socket survives each of ``n`` screen-offs (:func:`sim.world.os_model.linger_ms`)."""
        return linger_ms(client.rng, self.pop, np.full(n, client.user, dtype=np.int64), self.sc.os).tolist()

    def session_ms(self, rng) -> int:
        """One foreground session length (a launch a notification prompted)."""
        return int(session_lengths(rng, self.sc.activity, 1)[0])


    def recipients_plan(self, client: MobileClient, sess: np.ndarray, group: np.ndarray, n_sessions: int):
        return RecipientsPlan(self, client, sess, group, n_sessions)

    def group_members(self, g: int, me: int) -> tuple[list[int], list[bool]]:
        """Recipients of a message by ``me`` to group ``g`` and whether each muted it: the group's first
        ``cap + 1`` members other than ``me`` (the last dropped if ``me`` is not among them), as
        :meth:`sim.world.conversations.Social.group_recipients` does in bulk."""
        ent = self._groups.get(g)
        if ent is None:
            soc = self.pop.social
            lo, hi = int(soc.groups.off[g]), int(soc.groups.off[g + 1])
            take = min(hi - lo, soc.cap + 1)
            ent = (soc.groups.items[lo:lo + take].tolist(), soc.muted[lo:lo + take].tolist())
            self._groups[g] = ent
        members, muted = ent
        if me in members:
            keep = [i for i, x in enumerate(members) if x != me]
        else:
            keep = range(len(members) - 1)
        return [members[i] for i in keep], [muted[i] for i in keep]

    def pick_contact(self, client: Client) -> int | None:
        social = self.pop.social
        if social is not None:
            cache = client.__dict__.setdefault("_contact_draws", [])
            if not cache:  # draw contacts 256 at a time: one numpy call, not one per message
                cache.extend(social.partner(client.rng, np.full(256, client.user, dtype=np.int64)).tolist()[::-1])
            r = cache.pop()
            if r >= 0:
                return r
        ids = self.active_list  # no contacts (a user outside the graph): anyone who uses the app
        if len(ids) < 2:
            return None
        pos = int(client.rng.random() * len(ids))
        r = ids[pos]
        return r if r != client.user else ids[(pos + 1) % len(ids)]

    def place_call(self, caller: Client) -> None:
        cfg, rng, ids = self.sc.calls, caller.rng, self.active_list
        now = self.env.now
        pos = int(rng.random() * len(ids))
        callee = ids[pos]
        if callee == caller.user and len(ids) > 1:
            callee = ids[(pos + 1) % len(ids)]
        dur = max(1000, int(round(cfg.duration_mean_s * 1000 * float(lognormal_mean_one(rng, cfg.duration_sigma, 1)[0]))))
        video = bool(rng.random() < cfg.video_fraction)
        relayed = bool(rng.random() < cfg.turn_relay_fraction)
        self.calls.append((caller.user, callee, now, dur, video, relayed))
        caller.hold_until(now + dur, 3)  # CALL
        other = self.clients[callee]
        if other is not None:
            other.ring(dur)

    # -- metering at midnight --------------------------------------------------------------------------
    def _flush(self) -> None:
        """Meter what the day decided: connections, copies (final, or waiting and new), uploads, calls."""
        if self.opens:
            o = _table(sorted(self.opens), 4)
            self.conn.record_open(o[:, 0], o[:, 1], o[:, 2].astype(np.int8), o[:, 3].astype(bool))
        if self.closes:
            c = _table(self.closes, 5)
            self.conn.record_close(c[:, 0], c[:, 1], c[:, 2], c[:, 3].astype(bool),
                                   c[:, 4] if self._custom_hb else None)
        rows = self.finals
        for cp in self.fresh:
            if not cp.done and cp.new:
                rows.append((cp.recipient, cp.sender, cp.t, cp.size, cp.kind, cp.store, True, PENDING, NEVER, True))
                cp.new = False
        for cp in self.fresh:
            cp.new = False
        if rows:
            a = _table(rows, 10)
            copies = Copies(recipient=a[:, 0], sender=a[:, 1], t=a[:, 2], size=a[:, 3], kind=a[:, 4].astype(np.int8),
                            store=a[:, 5].astype(bool), new=a[:, 6].astype(bool))
            self.mm.account(copies, Routed(outcome=a[:, 7].astype(np.int8), when=a[:, 8], offline=a[:, 9].astype(bool)))
        if self.uploads:
            u = _table(self.uploads, 2)
            self.mm.meter_uploads(_Batch(u))
        if self.receipt_uploads:
            self.mm.meter_uploads_receipts(_Batch(_table(self.receipt_uploads, 2)))
        if self.refused:
            r = _table(self.refused, 2)
            self.mm.refused_attempts(r[:, 1], r[:, 0])
        if self.calls:
            k = _table(self.calls, 6)
            cb = CallBatch(k[:, 0], k[:, 1], k[:, 2], k[:, 3], k[:, 4].astype(bool), k[:, 5].astype(bool))
            meter_calls(self.book, self.protocol, cb, self.sc.calls, self.counts)
        self._reset_logs()

    def finish(self) -> dict:
        """Close what is still open at the period end; flush; return the world meters."""
        end = self.period_end
        still = [(c.user, c.conn_start, (end - c.conn_start) // c.hb_ms if c.hb_ms > 0 else 0)
                 for c in self.clients if c is not None and c.connected and c.conn_start < end]
        self.server.expire_until(end)
        self._flush()
        if still:
            s = _table(still, 3)
            self.conn.record_close(s[:, 0], s[:, 1], np.full(len(still), end, dtype=np.int64), None,
                                   s[:, 2] if self._custom_hb else None)
        waiting = self.server.waiting()
        self.count("stored", sum(1 for c in waiting if c.kind == MSG))
        self.count("receipts_stored", sum(1 for c in waiting if c.kind != MSG))
        self.count("unread_at_end", sum(len(getattr(c, "unread", ())) for c in self.clients if c is not None))
        if self.warm == 0:
            self.count("stored_at_start", 0)
            self.count("receipts_stored_at_start", 0)
        self._month_snaps.append(self._snapshot())
        self.conn.ccu_max = np.maximum(self.conn.ccu_max, self.ccu_ev)
        meters = self.conn.flush()
        totals = {**self.conn.counts, **self.counts}
        for k in sorted(set(totals) | set(self._warm_counts)):
            self.book.count(k, totals.get(k, 0) - self._warm_counts.get(k, 0))
        self.mm.write()
        meters.update(self.mm.meters())  # messages_in/_out and their sizes
        return meters


def _table(rows: list[tuple], width: int) -> np.ndarray:
    """Rows of ints (and bools) as an int64 table (``np.fromiter`` over the flattened rows: several times
    faster than ``np.array`` on a list of tuples)."""
    return np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=len(rows) * width).reshape(len(rows), width)


class _Batch:
    """Uploads as the message meter reads them: ``t`` and ``size`` arrays."""

    def __init__(self, a: np.ndarray) -> None:
        self.t, self.size = a[:, 0], a[:, 1]

    def __len__(self) -> int:
        return int(self.t.size)


__all__ = ["EventsWorld", "IOS"]
