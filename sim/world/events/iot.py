"""The ``events`` engine for IoT trackers: every device a SimPy process, the plain reference model.

The fast engine (:mod:`sim.world.iot.fleet`) computes a fleet from closed forms and per-minute arrays;
this module simulates the same world one event at a time, so the two can be compared
(``tests/test_events_iot.py``) and the fast engine's shortcuts checked against a model with none.

Shared with the fast engine, not copied: the configuration (:class:`~sim.world.iot.config.IotFleetConfig`),
the protocol byte model (:class:`sim.protocol.Protocol`: PUBLISH/PUBACK, PINGREQ/PINGRESP, full and
resumed handshakes, graceful teardown, exact per PF §1-§3), the trip drawing
(:func:`sim.world.iot.schedule.trips`, called per device: Poisson trip starts on the diurnal shape,
exponential lengths, merged), the enforcer contract (:class:`~sim.world.iot.enforcer.IotLimits` /
``IotPlanLimits``: the same attributes, crossings, suspensions and report entries), the outcome record
(:class:`~sim.world.iot.outcome.FleetOutcome`) and :func:`sim.world.iot.meters.write_meters`, which
writes the :class:`~sim.meters.MeterBook` bytes, series, levels and ``iot_*`` counts and returns the
usage-file meters: the usage documents of both engines have the same keys by construction.

The model, per device (integer seconds from the period start):

* **Schedule.** Parked: a report every ``parked_interval_s`` (300 s); moving: every ``I`` s, ``I`` drawn
  per device in ``moving_interval_s`` (10-30 s). A trip start or end (minute boundaries, from ``trips``)
  sends a report at once. The first segment continues a schedule begun before the period (phase
  ``floor(u * I)``), as in the fast engine.
* **Keep-alive.** A PINGREQ/PINGRESP whenever the client has sent nothing for ``keepalive_s``
  (MQTT 3.1.1 §3.1.2.10, PF §3.1: 60 s for IoT, PF §6); the timer restarts at every packet (report,
  ping, CONNECT, the burst after a reconnection). Parked with ``K = 60 s``: ``ceil(300/60) - 1 = 4``
  pings per 5-minute gap, ``12 reports + 48 pings`` per parked hour.
* **Links.** Silent deaths as a Poisson process (``drops_per_device_per_day``), each with a coverage gap
  ``ceil(Exp(coverage_gap_mean_s))``; the device notices ``detect_s`` later (default one keep-alive);
  it then tries at ``+1, +2, +4, ... , 128, 128 ...`` s (back-off, PF §3.1). A try before coverage is
  back fails silently; a try reaching the platform pays a TLS handshake (full, or resumed with
  probability ``tls_resumption_probability`` while the last connection is younger than
  ``ticket_lifetime_s``, PF §1.4/§6) and is refused during a suspension or without an MQTT session.
  The server keeps a dead connection until ``ceil(1.5 K)`` s after the death or the reconnection
  ([MQTT-3.1.2-24], [MQTT-3.1.4-2]). A drop while the device is already down is ignored.
* **Messages.** QoS 0 into a dead link (before detection) is lost (``dropped``); QoS 1 stays in flight
  and waits; while down, reports wait on the device (``device_queue_max``, the oldest lost beyond it).
  On reconnection everything waiting is sent in that second, then the schedule goes on.
* **Platform** (one SimPy process per minute plus callbacks): per-device buffers with the TTL, the
  owner's reads every ``read_every_min`` at the start of a minute, the storage snapshot at the end of
  each minute, the server-side connection count, and the limits: a channel's messages (or bytes) in a
  calendar minute crossing its limit at second *s* reject the rest of *s* (QoS 0 lost; QoS 1 up to
  ``max_inflight`` per device sent and rejected, the rest never sent, all re-sent after reconnecting),
  close every connection of the channel at *s* + 1 (graceful teardown bytes) and refuse reconnections
  for ``suspend_s`` (the reconnect storm); server-side connections of a channel above its limit do the
  same; MQTT sessions beyond the limit are never granted (the last devices); a full device buffer
  discards new messages; the platform's messages (or bytes) per minute above its limit suspend the REST
  API, so reads starting inside the suspension are rejected. ``dry_run`` enforcers only record the
  first crossing of each limit.
* **Downgrade windows** (``IotLimits.downgrades``, see :mod:`sim.world.iot.enforcer`): at each window's
  start ``a`` the platform closes the connections of the devices beyond the free counts (those connected
  get the graceful teardown; with ``a = 0`` they start disconnected, as devices without a session);
  every attempt of theirs inside the window pays its handshake and is refused; after the window their
  back-off brings them back (the restoration storm). Implemented the same way as a suspension, per device.

Where the engines differ by design (the comparison allows for these; none changes an expectation
by more than the tests' tolerances):

* the fast engine counts whole minutes with closed forms and draws payload sizes after the run
  (multinomial per minute); here each message draws its own size when it is generated;
* traffic limits (channel/platform bytes per minute) and the device buffer cap count each message's
  real bytes here; the fast engine converts them to messages at the mean size;
* the keep-alive timer restarts at a reconnection here; the fast engine keeps each device's
  report-relative ping grid through an outage (the same expected pings per reconnection);
* drop instants are a Poisson process floored to the second (the fast engine: a Poisson count placed
  uniformly on integer seconds: the same law); each connection attempt draws its own resumption
  (the fast engine: one draw per outage; the same probability per attempt);
* at a suspension the server also closes dead-link connections it still holds (the fast engine keeps
  them to their server timeout), and rejected messages of a crossing second are those processed after
  the crossing in event order (the fast engine: in device order); the number rejected is the same.

Conservation (tests/test_events_iot.py checks it exactly)::

    sent = delivered + dropped + rejected + discarded + pending_on_device_at_end
    delivered = read + expired + in_buffer_at_end

Speed: one SimPy timeout per report, ping, drop, detection and attempt; Python ints/floats inside,
random draws batched per device (a 200-device fleet for 2 days is ~1 M events, a few seconds).
"""

from __future__ import annotations

import math
from collections import deque
from datetime import UTC, datetime
from typing import Any

import numpy as np
import simpy

from sim.meters import MeterBook
from sim.protocol import Protocol
from sim.rng import name_key
from sim.world.iot.config import IotFleetConfig
from sim.world.iot.enforcer import downgrade_of, record_downgrade, storm
from sim.world.iot.meters import write_meters
from sim.world.iot.outcome import FleetOutcome
from sim.world.iot.schedule import trips

__all__ = ["simulate_fleet_events"]

_INF = float("inf")
UP, DEAD, DOWN = 0, 1, 2  # device link states: connected, silently dead (not yet noticed), disconnected


def _lim(enforcer: Any, attr: str) -> float | None:
    v = getattr(enforcer, attr, None) if enforcer is not None else None
    return None if v is None else float(v)


class _Streams:
    """Named per-purpose, per-device random streams (independent of call order)."""

    def __init__(self, seed: np.random.SeedSequence) -> None:
        self.entropy, self.key = seed.entropy, tuple(seed.spawn_key)

    def rng(self, purpose: str, device: int | None = None) -> np.random.Generator:
        key = (*self.key, name_key("iot-events"), name_key(purpose))
        if device is not None:
            key = (*key, int(device))
        return np.random.default_rng(np.random.SeedSequence(entropy=self.entropy, spawn_key=key))


class _Draws:
    """A device's batched draws of one kind, handed out one by one as Python numbers."""

    __slots__ = ("batch", "buf", "draw", "i")

    def __init__(self, draw, batch: int) -> None:
        self.draw, self.batch, self.buf, self.i = draw, batch, [], 0

    def next(self):
        if self.i >= len(self.buf):
            self.buf, self.i = self.draw(self.batch).tolist(), 0
        v = self.buf[self.i]
        self.i += 1
        return v


class _Device:
    __slots__ = ("chan", "d", "last_up", "proc", "queue", "rej_n", "rej_s", "resume", "sizes", "srv_gen",
                 "srv_open", "srv_since", "state", "buf", "buf_bytes", "t_closed")  # fmt: skip

    def __init__(self, d: int, chan: int) -> None:
        self.d, self.chan = d, chan
        self.state = UP
        self.queue: deque[int] = deque()  # payload sizes of messages waiting on the device
        self.last_up = -_INF  # the connection at the period start is older than any ticket (as the fast engine)
        self.srv_open = True  # the platform holds a connection of this device
        self.srv_since = 0  # ... since this second (0: up before the period)
        self.srv_gen = 0
        self.rej_s, self.rej_n = -1, 0  # QoS 1 rejections in the current second (in-flight window)
        self.buf: deque[tuple[int, int]] = deque()  # (minute, size) in the device's platform buffer
        self.buf_bytes = 0
        self.t_closed = -1  # the platform's last close of this device's connection (interrupt pending)


class _World:
    def __init__(self, cfg: IotFleetConfig, days: int, seed: np.random.SeedSequence, enforcer: Any,
                 start_hour: int, env: simpy.Environment) -> None:  # fmt: skip
        self.cfg, self.env, self.t0 = cfg, env, env.now
        self.n, self.M = cfg.devices, days * 1440
        self.T = self.M * 60
        self.days, self.start_hour = days, start_hour
        self.streams = _Streams(seed)
        self.proto = Protocol(cfg.protocol_config())
        self.K = cfg.keepalive_s
        self.detect_s = cfg.keepalive_s if cfg.detect_s is None else cfg.detect_s
        self.srv_timeout = int(math.ceil(cfg.server_timeout_factor * cfg.keepalive_s))
        self.ticket_ok = self.proto.cfg.resumable  # tickets, or TLS 1.2 session IDs
        lo, hi = cfg.payload_bytes
        self.lo, self.S = lo, hi - lo + 1
        tab = self.proto.messages(np.arange(lo, hi + 1, dtype=np.int64), "in")
        self.msg_bytes = (tab["payload"] + tab["app_protocol"] + tab["tls_record"]).tolist()  # per size
        steps, b = [], cfg.backoff_initial_s
        while b < max(cfg.backoff_max_s, cfg.backoff_initial_s):
            steps.append(b)
            b = min(b * 2, cfg.backoff_max_s)
        steps.append(max(cfg.backoff_max_s, cfg.backoff_initial_s))
        self.steps = steps  # back-off delays; the last repeats

        E = enforcer
        self.E = E
        self.dry = bool(getattr(E, "dry_run", False)) if E is not None else False
        self.act = E is not None and not self.dry
        self.recorder = E if E is not None and hasattr(E, "crossing") else None
        self.suspend_s = int(getattr(E, "suspend_s", 60)) if E is not None else 60
        self.done: set[str] = set()
        self.chan_limit, self.chan_attr, self.chan_bytes = self._limit("channel")
        self.plat_limit, self.plat_attr, self.plat_bytes = self._limit("platform")
        self.conn_limit = _lim(E, "channel_connections")
        cap = _lim(E, "device_buffer_bytes")
        self.buf_cap = cap

        C = cfg.channels
        chan_of = [(d * C) // self.n for d in range(self.n)]
        self.devs = [_Device(d, chan_of[d]) for d in range(self.n)]
        self.chan_devs = [[dv for dv in self.devs if dv.chan == c] for c in range(C)]
        # platform state
        self.ch_min = [-1] * C  # minute of the channel counter
        self.ch_cnt = [0.0] * C  # messages (or bytes) accepted by the channel in that minute
        self.closing = [-1] * C  # second of a crossing: the rest of it is rejected, closed at +1
        self.susp_end = [-1] * C  # suspension window [close, susp_end)
        self.susp_start = [0] * C
        self.conn_from = [0] * C
        self.conn_check = [-1] * C
        self.open = [len(ds) for ds in self.chan_devs]
        self.p_min, self.p_cnt, self.p_from = -1, 0.0, 0
        self.read_block: tuple[int, int] = (0, -1)  # reads starting in [a, b) are rejected
        self.platform_suspensions = 0
        self.chan_suspensions = 0
        self.no_session: set[int] = set()
        # results
        M, S = self.M, self.S
        self.hist = [0] * (M * S)  # wire PUBLISHes by (minute, size)
        self.pings = [0] * M
        self.kept_n = [0] * M
        self.kept_b = [0] * M
        self.stored = [0.0] * M
        self.level = [0] * M
        self.connect_full: list[int] = []
        self.connect_resumed: list[int] = []
        self.refused_full: list[int] = []
        self.refused_resumed: list[int] = []
        self.closes: list[int] = []
        self.conn_log: list[tuple[int, int]] = []  # (start, end) of each server-side connection that ended
        self.sent = self.dropped_link = self.dropped_queue = self.rejected = self.retransmitted = 0
        self.discarded = self.session_refusals = 0
        self.read = self.expired = 0
        self.floor = 0  # first delivery minute still in the buffers (after reads and expiry)
        self.rej_at: dict[int, int] = {}  # channel -> messages rejected at its current crossing

        n_sess = _lim(E, "mqtt_sessions")
        if n_sess is not None and self.n + cfg.extra_mqtt_sessions > n_sess:
            k = min(self.n, int(self.n + cfg.extra_mqtt_sessions - n_sess))
            self._cross("mqtt_sessions", f"device {self.n - k}", 0, refused_devices=k)
            if self.act:
                for dv in self.devs[self.n - k :]:
                    self.no_session.add(dv.d)
                    dv.state, dv.srv_open = DOWN, False
                    self.open[dv.chan] -= 1
        # downgrade windows: devices [dg.lo, dg.hi) unavailable inside them
        self.dg = downgrade_of(E, self.n, C, cfg.extra_mqtt_sessions, self.T,
                               len(self.no_session)) if self.act else None  # fmt: skip
        if self.dg is not None:
            W = len(self.dg.windows)
            self.dg_ref, self.dg_closed, self.dg_up = [0] * W, [0] * W, []
            for j, (a, _) in enumerate(self.dg.windows):
                if a == 0:  # unavailable from the start: never connected in the window
                    for dv in self.devs[self.dg.lo : self.dg.hi]:
                        dv.state, dv.srv_open = DOWN, False
                        self.open[dv.chan] -= 1
                else:
                    self.at(a - 0.5, lambda j=j, a=a: self._dg_close(j, a))
        if self.conn_limit is not None:
            for c in range(C):
                if self.open[c] > self.conn_limit:
                    self._conn_cross(c, 0)

    # -- helpers ---------------------------------------------------------------------------------------
    def _limit(self, scope: str) -> tuple[float | None, str, bool]:
        """(limit, attribute, counts bytes) of ``scope``: the lower of messages and traffic per minute,
        traffic counted in real session-layer bytes per message."""
        m = _lim(self.E, f"{scope}_messages_per_minute")
        b = _lim(self.E, f"{scope}_bytes_per_minute")
        if b is not None and (m is None or b / (sum(self.msg_bytes) / len(self.msg_bytes)) < m):
            return b, f"{scope}_bytes_per_minute", True
        return m, f"{scope}_messages_per_minute", False

    def _cross(self, attr: str, element: str, t: int, **info) -> None:
        self.done.add(attr)
        if self.recorder is not None:
            self.recorder.crossing(attr, element, int(t), **info)

    def now(self) -> float:
        return self.env.now - self.t0

    def at(self, t: float, fn) -> None:
        """Call ``fn()`` at period time ``t`` (a platform action)."""
        ev = self.env.timeout(max(0.0, t - self.now()))
        ev.callbacks.append(lambda _ev: fn())

    # -- platform: messages ------------------------------------------------------------------------------
    def receive(self, dv: _Device, size: int, t: int) -> bool:
        """A PUBLISH from ``dv`` at second ``t``; False if rejected (QoS 1: back to the device's queue)."""
        m, c, si = t // 60, dv.chan, size - self.lo
        nb = self.msg_bytes[si]
        if self.plat_limit is not None and not (self.dry and self.plat_attr in self.done):
            if self.p_min != m:
                self.p_min, self.p_cnt = m, 0.0
            self.p_cnt += nb if self.plat_bytes else 1
            if self.p_cnt > self.plat_limit and t >= self.p_from:
                self._platform_cross(t)
        if self.closing[c] != t and self.chan_limit is not None and not (self.dry and self.chan_attr in self.done):
            if self.ch_min[c] != m:
                self.ch_min[c], self.ch_cnt[c] = m, 0.0
            amount = nb if self.chan_bytes else 1
            if self.ch_cnt[c] + amount > self.chan_limit:
                if self.dry:
                    self._cross(self.chan_attr, f"channel {c}", t)
                else:
                    self.closing[c] = t
                    self.rej_at[c] = 0
                    self.at(t + 0.5, lambda c=c, t=t: self._close(c, t, self.chan_attr))
            else:
                self.ch_cnt[c] += amount
        if self.closing[c] == t:  # rejected: no PUBACK
            if self.cfg.qos == 0:
                self.rejected += 1
                self.hist[m * self.S + si] += 1
                self.rej_at[c] += 1
                return True  # lost, not re-sent
            if dv.rej_s != t:
                dv.rej_s, dv.rej_n = t, 0
            if dv.rej_n < self.cfg.max_inflight:  # sent and rejected; beyond the window: never sent
                dv.rej_n += 1
                self.retransmitted += 1
                self.hist[m * self.S + si] += 1
                self.rej_at[c] += 1
            return False
        self.hist[m * self.S + si] += 1
        if self.buf_cap is not None:
            b = dv.buf
            while b and b[0][0] < self.floor:
                dv.buf_bytes -= b.popleft()[1]
            if dv.buf_bytes + size > self.buf_cap:
                if "device_buffer_bytes" not in self.done:
                    self._cross("device_buffer_bytes", f"device {dv.d}", t)
                if not self.dry:
                    self.discarded += 1
                    return True
            else:
                b.append((m, size))
                dv.buf_bytes += size
        self.kept_n[m] += 1
        self.kept_b[m] += size
        return True

    def _platform_cross(self, t: int) -> None:
        if self.dry and self.plat_attr in self.done:
            return
        self._cross(self.plat_attr, "platform", t)
        if self.dry:
            return
        s = self.suspend_s
        self.p_from = t + 1 + s
        self.read_block = (t + 1, t + 1 + s)
        self.platform_suspensions += 1
        if self.recorder is not None:
            self.recorder.suspension(self.plat_attr, "platform", t + 1, s / 60)
        if self.p_from < self.T:  # still over the limit when the suspension ends: a new crossing then
            def check(tf=self.p_from):
                if self.p_min == tf // 60 and self.p_cnt > self.plat_limit and tf >= self.p_from:
                    self._platform_cross(tf)

            self.at(self.p_from + 0.4, check)  # after the devices' events of that second

    # -- platform: connections ---------------------------------------------------------------------------
    def connect(self, dv: _Device, t: int) -> bool:
        """A connection attempt reaching the platform at ``t`` (its handshake is paid either way)."""
        resumed = self.ticket_ok and t - dv.last_up <= self.cfg.ticket_lifetime_s and (
            dv.resume.next() < self.cfg.tls_resumption_probability
        )
        m = t // 60
        c = dv.chan
        dg = self.dg
        if dg is not None and dg.lo <= dv.d < dg.hi:
            for j, (a, b) in enumerate(dg.windows):
                if a <= t < b:  # downgraded: refused (the handshake is paid)
                    (self.refused_resumed if resumed else self.refused_full).append(m)
                    self.dg_ref[j] += 1
                    return False
        if dv.d in self.no_session or self.susp_start[c] <= t < self.susp_end[c]:
            (self.refused_resumed if resumed else self.refused_full).append(m)
            if dv.d in self.no_session:
                self.session_refusals += 1
            return False
        (self.connect_resumed if resumed else self.connect_full).append(m)
        dv.last_up = t
        if dg is not None and dg.lo <= dv.d < dg.hi:
            self.dg_up.append(t)
        if not dv.srv_open:  # else: the same client id takes the dead connection over ([MQTT-3.1.4-2])
            dv.srv_open = True
            self.open[c] += 1
        else:  # the dead connection ends now, the new one begins
            self.conn_log.append((dv.srv_since, t))
        dv.srv_since = t
        dv.srv_gen += 1
        if self.conn_limit is not None and self.conn_check[c] != t:
            self.conn_check[c] = t
            self.at(t + 0.25, lambda c=c, t=t: self._conn_check(c, t))
        return True

    def _conn_check(self, c: int, t: int) -> None:
        if self.open[c] > self.conn_limit and t >= self.conn_from[c]:
            self._conn_cross(c, t)

    def _conn_cross(self, c: int, t: int) -> None:
        attr = "channel_connections"
        if self.dry:
            if attr not in self.done:
                self._cross(attr, f"channel {c}", t)
            return
        if self.closing[c] == t:
            return
        self.closing[c] = t
        self.rej_at[c] = 0
        self.at(t + 0.5, lambda: self._close(c, t, attr))

    def link_dead(self, dv: _Device, t: int) -> None:
        gen = dv.srv_gen

        def timeout():
            if dv.srv_open and dv.srv_gen == gen:
                dv.srv_open = False
                self.open[dv.chan] -= 1
                self.conn_log.append((dv.srv_since, t + self.srv_timeout))

        self.at(t + self.srv_timeout, timeout)

    def _close(self, c: int, t_cross: int, attr: str) -> None:
        """Suspend channel ``c``: every connection closed at ``t_cross + 1``, new ones refused for suspend_s."""
        t_close = t_cross + 1
        self.susp_start[c], self.susp_end[c] = t_close, t_close + self.suspend_s
        self.conn_from[c] = t_close
        for dv in self.chan_devs[c]:
            if dv.srv_open:
                dv.srv_open = False
                self.open[c] -= 1
                self.conn_log.append((dv.srv_since, t_close))
            if dv.state == UP and dv.t_closed != t_close:
                dv.t_closed = t_close
                if t_close < self.T:
                    self.closes.append(t_close // 60)
                if dv.proc.is_alive:
                    dv.proc.interrupt(t_close)
                else:  # nothing left to do in the period
                    dv.state = DOWN
        self.chan_suspensions += 1
        n_rej = self.rej_at.pop(c, 0)
        if self.recorder is not None:
            self.recorder.crossing(attr, f"channel {c}", t_cross)
            self.recorder.suspension(attr, f"channel {c}", t_close, self.suspend_s / 60)
            self.recorder.add("rejected", self.recorder.name(attr), n_rej)
        notify = getattr(self.E, "notify", None)
        if callable(notify):
            notify("channel_suspended", channel=c, t=t_close, rejected=n_rej, limit=attr)

    def _dg_close(self, j: int, a: int) -> None:
        """Downgrade window ``j`` starts at ``a``: the unavailable devices' connections are closed."""
        for dv in self.devs[self.dg.lo : self.dg.hi]:
            if dv.srv_open:
                dv.srv_open = False
                self.open[dv.chan] -= 1
                self.conn_log.append((dv.srv_since, a))
            if dv.state == UP and dv.t_closed != a:
                dv.t_closed = a
                self.dg_closed[j] += 1
                self.closes.append(a // 60)
                if dv.proc.is_alive:
                    dv.proc.interrupt(a)
                else:
                    dv.state = DOWN

    def downgrade_result(self) -> dict[str, Any]:
        """What the downgrade windows did, as :meth:`sim.world.iot.fleet._Fleet._downgrade_result`."""
        dg, T = self.dg, self.T
        down_end = sum(dv.state != UP for dv in self.devs[dg.lo : dg.hi])
        windows = []
        for j, ((a, b), open_end) in enumerate(zip(dg.windows, dg.open_end, strict=True)):
            windows.append({"start": a, "end": None if open_end else b, "refused_attempts": self.dg_ref[j],
                            "connections_closed": self.dg_closed[j],
                            "unavailable_at_end": down_end if open_end else 0,
                            **storm(np.array(self.dg_up, np.int64), b, self.cfg.backoff_max_s, T)})  # fmt: skip
        return {"devices_kept": dg.kept, "devices_affected": dg.hi - dg.lo,
                "refused_attempts": sum(self.dg_ref), "windows": windows}  # fmt: skip

    # -- platform: buffers, reads, snapshots --------------------------------------------------------------
    def minutes_proc(self):
        """At each minute boundary: snapshot the minute that ends, then expiry and the owner's read."""
        env, cfg, ttl = self.env, self.cfg, self.cfg.buffer_ttl_min
        level = 0
        for m in range(1, self.M + 1):
            yield env.timeout(self.t0 + m * 60 - 0.1 - env.now)
            level += self.kept_b[m - 1]
            self.stored[m - 1] = float(level)
            self.level[m - 1] = sum(self.open)
            if m == self.M:
                break
            e = m - ttl
            if e >= self.floor:  # deliveries of minute m - ttl expire at the start of minute m
                level -= self.kept_b[e]
                self.expired += self.kept_n[e]
                self.floor = e + 1
            a, b = self.read_block
            if cfg.read_every_min and m % cfg.read_every_min == 0 and not (a <= m * 60 < b):
                self.read += sum(self.kept_n[self.floor : m])
                level = 0
                self.floor = m

    # -- devices -----------------------------------------------------------------------------------------
    def schedule(self, d: int):
        """(segments, last packet before the period) of device ``d``: segments (t0, t1, interval, origin)."""
        cfg = self.cfg
        hours = np.roll(np.asarray(cfg.hour_weights, float), -(cfg.utc_offset_hours + self.start_hour))
        _, ts, te = trips(self.streams.rng("trips", d), 1, self.days, cfg.moving_fraction,
                          cfg.trip_minutes_mean, hours)  # fmt: skip
        lo, hi = cfg.moving_interval_s
        mov = int(self.streams.rng("interval", d).integers(lo, hi + 1))
        u = float(self.streams.rng("phase", d).random())
        bounds: list[tuple[int, bool]] = [(0, False)]
        for s, e in zip(ts.tolist(), te.tolist(), strict=True):
            if s == 0:
                bounds[0] = (0, True)
            else:
                bounds.append((s, True))
            if e < self.M:
                bounds.append((e, False))
        segs = []
        for i, (s, moving) in enumerate(bounds):
            end = bounds[i + 1][0] if i + 1 < len(bounds) else self.M
            interval = mov if moving else cfg.parked_interval_s
            origin = math.floor(u * interval) if s == 0 else s * 60
            segs.append((s * 60, end * 60, interval, origin))
        return segs, segs[0][3] - segs[0][2]

    def drops(self, d: int) -> list[tuple[int, int]]:
        cfg = self.cfg
        rate = cfg.drops_per_device_per_day / 86400.0
        if rate <= 0:
            return []
        rng = self.streams.rng("drops", d)
        n_max = int(rate * self.T + 10 * math.sqrt(rate * self.T + 1) + 20)
        times = np.floor(np.cumsum(rng.exponential(1 / rate, size=n_max))).astype(np.int64)
        gaps = (np.ceil(rng.exponential(cfg.coverage_gap_mean_s, size=n_max)).astype(np.int64)
                if cfg.coverage_gap_mean_s > 0 else np.zeros(n_max, np.int64))  # fmt: skip
        keep = times < self.T
        return list(zip(times[keep].tolist(), gaps[keep].tolist(), strict=True))

    def device(self, dv: _Device):
        """One tracker: reports on its schedule, keep-alive pings, link deaths, detection, back-off, reconnects.

        Pings interact with nothing on the platform (no limit counts them), so the device accounts the
        pings of a silent stretch, each at its own second, when it next wakes (``credit``) instead of
        yielding once per ping; everything else is one SimPy timeout per event.
        """
        env, cfg, T, K, t0 = self.env, self.cfg, self.T, self.K, self.t0
        d, qos, qmax = dv.d, cfg.qos, cfg.device_queue_max
        segs, last_tx = self.schedule(d)
        drops = self.drops(d)
        n_rep = sum(max(0, -(-(b - o) // iv) - max(0, -((o - a) // iv))) for a, b, iv, o in segs)
        sizes = self.streams.rng("payload", d).integers(self.lo, self.lo + self.S, n_rep).tolist()  # one per report
        n_sent = 0
        dv.resume = _Draws(self.streams.rng("resume", d).random, 64)
        steps, n_last = self.steps, len(self.steps) - 1
        pings, queue, receive = self.pings, dv.queue, self.receive

        def reports():
            for a, b, iv, o in segs:
                t = o + max(0, -((o - a) // iv)) * iv  # first report at or after a
                while t < b:
                    yield t
                    t += iv
            yield _INF

        rep = reports()
        r = next(rep)
        while last_tx + K < 0:  # pings before the period
            last_tx += K
        di = 0
        t_drop = drops[0][0] if drops else _INF
        t_cover = 0
        t_link = _INF  # the state's next link event: detection (DEAD) or the next attempt (DOWN)
        k = 0
        if dv.state == DOWN:  # no MQTT session: tries from the start on its back-off
            t_link, k = steps[0], 1

        while True:
            t = min(r, t_drop, t_link)
            if t >= T:
                t = T
            try:
                if t < T:
                    yield env.timeout(t0 + t - env.now)
                woke = t
            except simpy.Interrupt as exc:  # the platform closed the connection (channel suspension)
                woke, t_close = env.now - t0, exc.cause
            # keep-alive: PINGREQs of the silent stretch before now, one per K s without a packet
            if dv.state != DOWN:
                p = last_tx + K
                if p < woke:
                    if dv.state == UP:
                        while p < woke:
                            pings[p // 60] += 1
                            p += K
                    else:  # sent into the dead link: no PINGRESP, nothing reaches the platform
                        p += -(-(woke - p) // K) * K
                    last_tx = p - K
            if t >= T:
                self.sent += n_sent
                return
            if woke != t:  # interrupted: closed at the next second
                dv.state = DOWN
                t_cover = t_close
                t_link, k = t_close + steps[0], 1
                continue
            sent_now = False
            if t == t_drop:  # a silent link death (ignored while already down)
                gap = drops[di][1]
                di += 1
                t_drop = drops[di][0] if di < len(drops) else _INF
                if dv.state == UP:
                    dv.state = DEAD
                    t_link, t_cover = t + self.detect_s, t + gap
                    self.link_dead(dv, t)
            if t == t_link:
                if dv.state == DEAD:  # noticed: back off, then try
                    dv.state = DOWN
                    t_link, k = t + steps[0], 1
                elif t >= t_cover and self.connect(dv, t):
                    dv.state = UP
                    t_link = _INF
                    sent_now = True
                    if queue:  # the burst: everything waiting goes out now (QoS 1 rejected ones stay)
                        waiting = list(queue)
                        queue.clear()
                        queue.extend([z for z in waiting if not receive(dv, z, t)])
                else:
                    t_link += steps[k if k < n_last else n_last]
                    k += 1
            if t == r:
                size = sizes[n_sent]
                n_sent += 1
                st = dv.state
                if st == UP:
                    if not receive(dv, size, t):
                        queue.append(size)  # QoS 1 rejected: re-sent after reconnecting
                    sent_now = True
                elif st == DEAD:
                    sent_now = True
                    if qos == 0:
                        self.dropped_link += 1
                    else:
                        queue.append(size)
                else:
                    queue.append(size)
                if qmax is not None and len(queue) > qmax:
                    queue.popleft()
                    self.dropped_queue += 1
                r = next(rep)
            if sent_now:
                last_tx = t
            elif dv.state != DOWN and last_tx + K == t:  # a ping due now (the packet of this second)
                if dv.state == UP:
                    pings[t // 60] += 1
                last_tx = t

    def run(self):
        for dv in self.devs:
            dv.proc = self.env.process(self.device(dv))
        return self.env.process(self.minutes_proc())

    def outcome(self) -> FleetOutcome:
        M, S, i64 = self.M, self.S, np.int64
        pending = sum(len(dv.queue) for dv in self.devs)
        kept = np.array(self.kept_n, i64)
        floor = self.floor
        in_buffer = int(kept[floor:].sum())
        log = self.conn_log + [(dv.srv_since, self.T) for dv in self.devs if dv.srv_open]
        conn = np.array(log, i64).reshape(-1, 2)
        conn = conn[conn[:, 0] < self.T]
        return FleetOutcome(
            cfg=self.cfg, proto=self.proto, minutes=M,
            sizes=np.arange(self.lo, self.lo + S, dtype=i64),
            wire_hist=np.array(self.hist, i64).reshape(M, S), pings=np.array(self.pings, i64),
            connect_full=np.array(self.connect_full, i64), connect_resumed=np.array(self.connect_resumed, i64),
            refused_full=np.array(self.refused_full, i64), refused_resumed=np.array(self.refused_resumed, i64),
            closes=np.array(self.closes, i64), connections=np.array(self.level, i64), kept=kept,
            stored=np.array(self.stored, float),
            sent=self.sent, read=self.read, expired=self.expired, in_buffer=in_buffer,
            dropped_link=self.dropped_link, dropped_queue=self.dropped_queue, rejected=self.rejected,
            retransmitted=self.retransmitted, discarded=self.discarded, pending=pending,
            channel_suspensions=self.chan_suspensions, platform_suspensions=self.platform_suspensions,
            refused_devices=len(self.no_session), session_refusals=self.session_refusals,
            recorder=self.recorder, acting=self.act,
            conn_start=conn[:, 0].copy(), conn_end=np.minimum(conn[:, 1], self.T),
        )  # fmt: skip


def simulate_fleet_events(
    cfg: IotFleetConfig,
    *,
    start: datetime,
    days: int,
    seed: np.random.SeedSequence,
    book: MeterBook,
    env: simpy.Environment | None = None,
    enforcer: Any = None,
) -> dict:
    """Run the fleet event by event for ``days`` from ``start``; write traffic into ``book``; return
    element meters. Same contract as :func:`sim.world.iot.fleet.simulate_fleet`: ``book`` receives the
    bytes by category per minute, the series ``iot_messages``/``iot_pings``, the levels
    ``iot_connections``/``iot_stored_bytes`` and the ``iot_*`` counts; the return value holds the
    usage-file meters (daily element counts, per-minute ``stored_bytes``, ``peak_ccu``, and the message,
    connection-time and session meters of :mod:`sim.world.iot.meters`).

    ``env``: when given, the devices and the platform run as processes of that environment (env time
    in seconds from its ``now`` at the call) and the call returns after ``env.run`` reaches the end of
    the period; otherwise a private environment is used. ``enforcer``: an ``IotLimits``-like object
    (``None`` = no limits acting on the world).
    """
    if enforcer is not None and hasattr(enforcer, "crossing"):
        enforcer.start = start
    own = env is None
    env = simpy.Environment() if own else env
    world = _World(cfg, days, seed, enforcer, start.astimezone(UTC).hour if start is not None else 0, env)
    done = world.run()
    env.run(until=done)
    meters = write_meters(world.outcome(), book)
    if world.dg is not None:
        record_downgrade(book, world.recorder, world.downgrade_result())
    return meters
