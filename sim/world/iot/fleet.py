"""The IoT tracker fleet: telemetry over MQTT into per-device platform buffers (IoT seed 004).

This module is the fleet engine: ``_Fleet`` runs the period in chunks of minutes, with roll-back on a
suspension, and :func:`simulate_fleet` is the entry point. Each other concept has its own module:

* **Configuration** (``config``): :class:`IotFleetConfig`, every parameter with its default and
  source ("PF §x" = ``shared/reference/protocol-facts.md``; *assumption* = no source, so a parameter).
* **Schedule** (``schedule``): trackers report every 10-30 s while moving and every 300 s while
  parked; trips follow a diurnal shape. Counts come from closed forms, so a month of a 10,000-device
  fleet is not 860 M events.
* **Wire** (``sim.protocol``): exact MQTT 3.1.1 / 5 packet sizes over TLS and TCP/IP, PINGREQ/PINGRESP
  when a device has been silent for one keep-alive interval, full or resumed TLS handshakes.
* **Links** (``links``): cellular drops kill connections silently; devices notice, back off
  (1 s doubling to 128 s) and reconnect, paying a handshake. QoS 0 messages sent into a dead link
  are lost; everything else waits on the device and is sent on reconnection.
* **Platform** (``platform``): each device has a buffer with a TTL; an application may read and
  clear all buffers every K minutes (the seed's storage tip). Storage is snapshotted every minute
  (seed: "snapshot the storage ... every minute and calculate the daily average").
* **Limits acting on the world** (``enforcer``: the :class:`IotLimits` contract and
  ``IotPlanLimits`` built from a plan; the acting itself is here): a channel whose messages in a minute
  exceed its limit is suspended (all connections closed at the crossing, the excess messages rejected,
  reconnects rejected for ``suspend_s`` seconds, each paying a handshake: the reconnect storm the
  seed's "channel suspended for 1 minute" implies). Downgrade windows (the account fell back to the free
  plan for an unpaid invoice, ``IotLimits.downgrades``): devices beyond the free counts are unavailable
  inside each window -- see "Downgrade windows" below.
* **Results** (``outcome``, ``meters``): :meth:`_Fleet.outcome` turns the finished run into a
  :class:`~sim.world.iot.outcome.FleetOutcome` (plain arrays and counts), which
  :func:`~sim.world.iot.meters.write_meters` writes as MeterBook bytes, levels and counts and the
  usage-file meters.

Why the dependencies run one way (this module imports ``platform``, ``outcome`` and ``meters``; none
of them imports this one): everything that needs the fleet's schedule and outage table -- the
second a limit is crossed (``_per_second``), the messages waiting on a device (``_waiting``), the
crossings recorded (``_cross``) -- is a method here, including the platform limits that act after the
run (``_platform_reads``, ``_device_buffer_discards``). ``platform`` keeps the buffer mechanics as pure
array functions and ``meters`` reads only the outcome record, so the event-level engine
(:mod:`sim.world.events.iot`) shares both without sharing this engine's internals.

Conservation (checked by the tests)::

    sent = delivered + dropped + rejected + discarded + pending_on_device_at_end
    delivered = read + expired + in_buffer_at_end

Downgrade windows generalise the session limit's mechanism (devices refused all period on a virtual
channel) to a time window: each unavailable device gets an outage row at the window's start ``a``
(a server close, or no connection at all when ``a = 0``) on a *virtual channel* ``channels + 1 + c`` (its
own channel ``c``), whose refusal windows are the downgrade windows merged with ``c``'s suspension
windows; the device's cellular drops and suspension closes use that virtual channel too, so every attempt
inside a window is refused whatever outage it belongs to, and the back-off brings the device back at the
first attempt after the window (the restoration storm). Nothing of this exists without windows: a run
without them is bit for bit the same as before. Refused attempts inside a window are reported as
``rejected_connections['downgraded']`` and ``report['downgrades']`` (see :mod:`sim.world.iot.enforcer`);
the book gets the counts ``iot_downgrade_refusals`` and ``iot_downgrade_devices`` (only with windows).

``IotFleetConfig``, ``IotLimits`` and ``simulate_fleet`` are re-exported by the package:
``from sim.world.iot import IotFleetConfig, IotLimits, simulate_fleet``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import simpy

from sim.meters import MeterBook
from sim.protocol import Protocol
from sim.world.iot import links
from sim.world.iot.config import DEFAULT_HOUR_WEIGHTS, IotFleetConfig
from sim.world.iot.enforcer import IotLimits, downgrade_of, record_downgrade, storm
from sim.world.iot.meters import exact_matvec, message_table, write_meters
from sim.world.iot.outcome import FleetOutcome
from sim.world.iot.platform import buffer, buffer_fill, read_minutes, suspend_reads
from sim.world.iot.schedule import Segments, build_segments, split_by_minute, trips

__all__ = ["DEFAULT_HOUR_WEIGHTS", "IotFleetConfig", "IotLimits", "simulate_fleet"]

I64 = np.int64


def _lim(enforcer: Any, attr: str) -> float | None:
    v = getattr(enforcer, attr, None) if enforcer is not None else None
    return None if v is None else float(v)


def _child(seed: np.random.SeedSequence, name: str) -> np.random.Generator:
    """A named stream that does not depend on call order (and does not mutate ``seed``)."""
    from sim.rng import name_key

    return np.random.default_rng(
        np.random.SeedSequence(
            entropy=seed.entropy, spawn_key=(*seed.spawn_key, name_key("iot"), name_key(name))
        )
    )


def _multinomial(rng: np.random.Generator, n: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """``rng.multinomial(n, probs)``, drawing only the rows with ``n > 0``: bit for bit the same array and
    the same generator state after, since a row of 0 draws nothing (its first binomial has ``n = 0``)."""
    nz = np.flatnonzero(n)
    if nz.size * 2 > n.size:  # mostly busy minutes: gathering and scattering the rows costs more
        return rng.multinomial(n, probs)
    out = np.zeros((n.size, probs.size), I64)
    if nz.size:
        out[nz] = rng.multinomial(n[nz], probs)
    return out


class _Fleet:
    """One run: schedule and outages, processed in chunks of minutes with roll-back on a suspension."""

    def __init__(self, cfg: IotFleetConfig, days: int, seed: np.random.SeedSequence, enforcer: Any,
                 start_hour: int = 0) -> None:
        self.cfg = cfg
        self.enforcer = enforcer
        self.n = cfg.devices
        self.minutes = days * 1440
        self.seconds = self.minutes * 60
        self.chan_of = (np.arange(self.n, dtype=I64) * cfg.channels) // self.n
        self.chan_start = np.searchsorted(self.chan_of, np.arange(cfg.channels + 1))
        self.proto = Protocol(cfg.protocol_config())
        self.detect_s = cfg.keepalive_s if cfg.detect_s is None else cfg.detect_s

        rng = _child(seed, "schedule")
        # weight of each hour of the fleet's day (hour 0 starts at the period start, at UTC hour start_hour):
        # that hour is local hour (h + start_hour + utc_offset) mod 24
        hours = np.roll(np.asarray(cfg.hour_weights, float), -(cfg.utc_offset_hours + start_hour))
        t_dev, t_s, t_e = trips(rng, self.n, days, cfg.moving_fraction, cfg.trip_minutes_mean, hours)
        lo, hi = cfg.moving_interval_s
        mov_int = _child(seed, "intervals").integers(lo, hi + 1, size=self.n).astype(I64)
        phase = _child(seed, "phase").random(self.n)
        self.seg: Segments = build_segments(
            self.n, self.minutes, t_dev, t_s, t_e, mov_int, cfg.parked_interval_s, cfg.keepalive_s, phase
        )

        self.windows = links.Windows()
        self.out = links.empty_outages()
        E = enforcer
        self.dry = bool(getattr(E, "dry_run", False)) if E is not None else False
        self.act = E is not None and not self.dry
        self.recorder = E if E is not None and hasattr(E, "crossing") else None
        lo_p, hi_p = cfg.payload_bytes
        sizes = np.arange(lo_p, hi_p + 1, dtype=I64)
        tab = self.proto.messages(sizes, "in")
        self.msg_bytes = float((tab["payload"] + tab["app_protocol"] + tab["tls_record"]).mean())
        self.payload_mean = float(sizes.mean())
        self.chan_limit, self.chan_limit_attr = self._msg_limit("channel")
        self.conn_limit = _lim(E, "channel_connections")
        self.conn_from = np.zeros(cfg.channels, I64)  # connection crossings count from this second
        self.done: set[str] = set()  # dry run: restrictions already seen crossing
        # MQTT sessions beyond the limit: the last devices never get one (owner's sessions come first)
        n_sess = _lim(E, "mqtt_sessions")
        self.no_session = np.zeros(0, I64)
        if n_sess is not None and self.n + cfg.extra_mqtt_sessions > n_sess:
            k = min(self.n, int(self.n + cfg.extra_mqtt_sessions - n_sess))
            self._cross("mqtt_sessions", f"device {self.n - k}", 0, refused_devices=k)
            if self.act:
                self.no_session = np.arange(self.n - k, self.n, dtype=I64)
                z = np.zeros(k, I64)
                self.out.extend(
                    dev=self.no_session, chan=np.full(k, cfg.channels, I64), kind=np.full(k, 2, I64),
                    t_down=z, t_detect=z, t_cover=z, u_resume=np.ones(k), requeued=z,
                )  # fmt: skip
                self.windows.add(cfg.channels, 0, self.seconds + 1)  # a virtual channel: always refused
        # downgrade windows: devices [dg.lo, dg.hi) unavailable inside them (rows on virtual channels)
        self.dg = downgrade_of(E, self.n, cfg.channels, cfg.extra_mqtt_sessions, self.seconds,
                               len(self.no_session)) if self.act else None  # fmt: skip
        self.vbase = cfg.channels + 1  # an unavailable device's rows use channel vbase + its channel
        self.dg_chans: set[int] = set()
        self.dg_result: dict[str, Any] | None = None
        if self.dg is not None and self.dg.hi > self.dg.lo:
            aff = np.arange(self.dg.lo, self.dg.hi, dtype=I64)
            self.dg_chans = {int(c) for c in np.unique(self.chan_of[aff])}
            for c in sorted(self.dg_chans):
                self._sync_vchan(c)
            rng_dg = _child(seed, "downgrade")
            for a, _ in self.dg.windows:
                k, t = len(aff), np.full(len(aff), a, I64)
                self.out.extend(
                    dev=aff, chan=self.chan_of[aff] + self.vbase, kind=np.full(k, 0 if a > 0 else 2, I64),
                    t_down=t, t_detect=t, t_cover=t, u_resume=rng_dg.random(k), requeued=np.zeros(k, I64),
                )  # fmt: skip
        # device buffers that can fill: devices sending more than the cap in the whole period
        self.buf_cap: int | None = None
        self.cand = np.zeros(0, I64)
        cap = _lim(E, "device_buffer_bytes")
        if cap is not None:
            self.buf_cap = int(cap // self.payload_mean) if self.payload_mean > 0 else None
            seg = self.seg
            idx = np.arange(len(seg.dev))
            per = seg.reports_upto(idx, seg.end * 60) - seg.reports_upto(idx, seg.start * 60)
            total = np.bincount(seg.dev, weights=per, minlength=self.n)
            if self.buf_cap is not None:
                self.cand = np.flatnonzero(total > self.buf_cap).astype(I64)
        self.cand_arr = np.zeros((len(self.cand), self.minutes), np.int32)
        self.rej_dev: list[tuple[np.ndarray, int, np.ndarray]] = []  # per-device rejections at crossings
        if cfg.drops_per_device_per_day > 0:
            d = links.cellular_drops(
                _child(seed, "drops"), self.n, self.chan_of, self.seconds,
                cfg.drops_per_device_per_day, cfg.coverage_gap_mean_s, self.detect_s,
            )  # fmt: skip
            if self.dg_chans:  # a drop inside a window is void (the device is down): its own channel
                inside = self.dg.index(d["t_down"]) >= 0
                d["chan"] = np.where(inside, d["chan"], self._row_chan(d["dev"]))
            self.out.extend(**d)
        self._settle()
        self.susp_rng = _child(seed, "suspensions")

        m = self.minutes
        self.sent = np.zeros(m, I64)  # schedule messages generated
        self.arrivals = np.zeros(m, I64)  # messages reaching the platform (incl. rejected)
        self.dropped = np.zeros(m, I64)
        self.rejected = np.zeros(m, I64)  # QoS 0 rejected (lost)
        self.requeued = np.zeros(m, I64)  # QoS 1 rejected (re-sent later)
        self.qdrop = np.zeros(m, I64)  # lost to a full device queue
        self.unsent = np.zeros(m, I64)  # QoS 1 backlog behind the in-flight window at a crossing
        self.pings = np.zeros(m, I64)
        self.ch_arrivals = np.zeros((cfg.channels, m), I64)
        self.rej_adjust: dict[
            tuple[int, int], int
        ] = {}  # (channel, minute) -> messages rejected at the crossing
        self.suspensions: list[tuple[int, int]] = []

    def _msg_limit(self, scope: str) -> tuple[float | None, str]:
        """Messages-per-minute limit of ``scope`` with a traffic limit folded in at the mean message size."""
        E = self.enforcer
        m = _lim(E, f"{scope}_messages_per_minute")
        b = _lim(E, f"{scope}_bytes_per_minute")
        bm = float(b // self.msg_bytes) if b is not None and self.msg_bytes > 0 else None
        if bm is not None and (m is None or bm < m):
            return bm, f"{scope}_bytes_per_minute"
        return m, f"{scope}_messages_per_minute"

    def _row_chan(self, devs: np.ndarray) -> np.ndarray:
        """The channel an outage row of each device uses: its own, or its virtual one when a downgrade
        makes it unavailable (the virtual channel refuses inside the downgrade windows too)."""
        ch = self.chan_of[devs]
        if not self.dg_chans:
            return ch
        return np.where(self.dg.affected(devs), ch + self.vbase, ch)

    def _add_window(self, c: int, start: int, end: int) -> None:
        """A refusal window of channel ``c``, copied to its virtual channel."""
        self.windows.add(c, start, end)
        if c in self.dg_chans:
            self._sync_vchan(c)

    def _sync_vchan(self, c: int) -> None:
        """Channel ``c``'s virtual channel refuses in the union of ``c``'s windows and the downgrades."""
        W, v = self.windows, self.vbase + c
        own = W.chan == c
        iv = sorted([*zip(W.start[own].tolist(), W.end[own].tolist(), strict=True), *self.dg.windows])
        merged: list[list[int]] = []
        for a, b in iv:
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        keep = W.chan != v
        W.chan = np.concatenate((W.chan[keep], np.full(len(merged), v, I64)))
        W.start = np.concatenate((W.start[keep], np.array([a for a, _ in merged], I64)))
        W.end = np.concatenate((W.end[keep], np.array([b for _, b in merged], I64)))
        order = np.lexsort((W.start, W.chan))
        W.chan, W.start, W.end = W.chan[order], W.start[order], W.end[order]

    def _cross(self, attr: str, element: str, t: int, **info) -> None:
        self.done.add(attr)
        if self.recorder is not None:
            self.recorder.crossing(attr, element, int(t), **info)

    def _settle(self, since: int | None = None, new_rows: np.ndarray | None = None) -> None:
        cfg = self.cfg
        self.out.settle(self.windows, cfg.backoff_initial_s, cfg.backoff_max_s, self.seconds, since, new_rows)

    # -- one chunk ------------------------------------------------------------------------------------
    def _chunk(self, m0: int, m1: int) -> dict[str, np.ndarray]:
        """Per-minute results for ``[m0, m1)`` given the current outages (a pure function of them)."""
        seg, o, L = self.seg, self.out, m1 - m0
        rep, ping = seg.grid(m0, m1, self.n)
        sent = rep.sum(axis=0)
        t0, t1 = m0 * 60, m1 * 60
        a = np.flatnonzero(o.active & (o.t_down < t1) & (o.t_up > t0))
        dropped = np.zeros(L, I64)
        if len(a):
            # Everything scheduled while the link is down leaves the grid ...
            p, mi, x, y = split_by_minute(np.maximum(o.t_down[a], t0), np.minimum(o.t_up[a], t1))
            r, pg = seg.window_counts(o.dev[a][p], x, y, mi)
            np.subtract.at(rep, (o.dev[a][p], mi - m0), r)
            np.subtract.at(ping, (o.dev[a][p], mi - m0), pg)
            if self.cfg.qos == 0:  # ... and QoS 0 sent into the dead link before detection is lost
                p, mi, x, y = split_by_minute(
                    np.maximum(o.t_down[a], t0), np.minimum(o.t_detect[a], np.minimum(o.t_up[a], t1))
                )
                r, _ = seg.window_counts(o.dev[a][p], x, y, mi)
                dropped = np.bincount(mi - m0, weights=r, minlength=L).astype(I64)
        # Messages waiting on the device go out at reconnection.
        u = np.flatnonzero(o.active & (o.t_up >= t0) & (o.t_up < t1))
        qdrop = np.zeros(L, I64)
        if len(u):
            waiting, lost = self._waiting(u)
            np.add.at(rep, (o.dev[u], o.t_up[u] // 60 - m0), waiting)
            np.add.at(qdrop, o.t_up[u] // 60 - m0, lost)
        ch = np.add.reduceat(rep, self.chan_start[:-1], axis=0) if self.n else np.zeros((0, L), I64)
        return {
            "qdrop": qdrop,
            "cand": rep[self.cand],
            "sent": sent,
            "arrivals": rep.sum(axis=0),
            "pings": ping.sum(axis=0),
            "dropped": dropped,
            "ch": ch,
        }

    def _waiting(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sent, lost) per row: messages a device sends on reconnecting -- scheduled during the outage
        (QoS 0: after detection), within the period, plus QoS 1 messages rejected at a suspension --
        up to ``device_queue_max``; the older ones beyond it are lost (device queue full)."""
        o = self.out
        start = o.t_detect[rows] if self.cfg.qos == 0 else o.t_down[rows]
        end = np.minimum(o.t_up[rows], self.seconds)
        start = np.minimum(start, end)
        p, mi, x, y = split_by_minute(start, end)
        r, _ = self.seg.window_counts(o.dev[rows][p], x, y, mi)
        total = np.bincount(p, weights=r, minlength=len(rows)).astype(I64) + o.requeued[rows]
        cap = self.cfg.device_queue_max
        if cap is None:
            return total, np.zeros(len(rows), I64)
        sent = np.minimum(total, cap)
        return sent, total - sent

    def _commit(self, res: dict[str, np.ndarray], m0: int, k: int) -> None:
        s = slice(m0, m0 + k)
        for name in ("sent", "arrivals", "pings", "dropped", "qdrop"):
            getattr(self, name)[s] = res[name][:k]
        self.ch_arrivals[:, s] = res["ch"][:, :k]
        self.cand_arr[:, s] = res["cand"][:, :k]

    # -- limits ---------------------------------------------------------------------------------------
    def _per_second(self, devs: np.ndarray, minute: int) -> np.ndarray:
        """Messages each device of ``devs`` (a contiguous range) sends in each second of ``minute``."""
        o, seg = self.out, self.seg
        base = minute * 60
        dd = np.repeat(devs, 60)
        ss = np.tile(np.arange(60, dtype=I64), len(devs)) + base
        per = seg.window_counts(dd, ss, ss + 1, np.full(len(dd), minute, I64))[0].reshape(len(devs), 60)
        if len(devs) == 0:
            return per
        inr = (o.dev >= devs[0]) & (o.dev <= devs[-1]) & o.active
        for r in np.flatnonzero(inr & (o.t_down < base + 60) & (o.t_up > base)):  # seconds inside outages
            i = o.dev[r] - devs[0]
            per[i, max(o.t_down[r] - base, 0) : min(o.t_up[r] - base, 60)] = 0
        u = np.flatnonzero(inr & (o.t_up >= base) & (o.t_up < base + 60))
        if len(u):  # reconnection bursts
            np.add.at(per, (o.dev[u] - devs[0], o.t_up[u] - base), self._waiting(u)[0])
        return per

    def _devs(self, c: int) -> np.ndarray:
        return np.arange(self.chan_start[c], self.chan_start[c + 1], dtype=I64)

    def _msg_second(self, c: int, minute: int) -> int:
        cum = np.cumsum(self._per_second(self._devs(c), minute).sum(axis=0))
        return minute * 60 + int(np.argmax(cum > self.chan_limit))

    def _msg_violation(self, res: dict[str, np.ndarray], m0: int) -> tuple[int, int] | None:
        """(second, channel) of the first messages-per-minute crossing in the chunk."""
        limit = self.chan_limit
        if limit is None or (self.dry and self.chan_limit_attr in self.done):
            return None
        ch = res["ch"].copy()
        for (c, mm), n in self.rej_adjust.items():
            if m0 <= mm < m0 + ch.shape[1]:
                ch[c, mm - m0] -= n
        over = np.argwhere(ch.T > limit)  # rows (minute, channel), minute-major
        if len(over) == 0:
            return None
        mi = over[0, 0]
        return min((self._msg_second(int(c), int(m0 + mi)), int(c)) for c in over[over[:, 0] == mi, 1])

    def _conn_violation(self, m0: int, m1: int) -> tuple[int, int] | None:
        """(second, channel) of the first time a channel's server-side connections exceed the limit."""
        limit = self.conn_limit
        if limit is None or (self.dry and "channel_connections" in self.done):
            return None
        cfg, o = self.cfg, self.out
        t0, t1 = m0 * 60, m1 * 60
        srv = np.where(
            o.kind == 1, np.minimum(o.t_down + int(np.ceil(cfg.server_timeout_factor * cfg.keepalive_s)), o.t_up),
            o.t_down,
        )  # fmt: skip
        ch = self.chan_of[o.dev] if len(o) else np.zeros(0, I64)
        best: tuple[int, int] | None = None
        act = o.active & (srv < t1) & (o.t_up > t0)
        for c in range(cfg.channels):
            n_c = int(self.chan_start[c + 1] - self.chan_start[c])
            if n_c <= limit:
                continue
            rows = np.flatnonzero(act & (ch == c))
            open0 = int(((srv[rows] <= t0) & (o.t_up[rows] > t0)).sum())
            ev_t = np.concatenate((srv[rows][srv[rows] > t0], o.t_up[rows][o.t_up[rows] < t1]))
            ev_d = np.concatenate((-np.ones(int((srv[rows] > t0).sum()), I64),
                                   np.ones(int((o.t_up[rows] < t1).sum()), I64)))  # fmt: skip
            ts, inv = np.unique(np.concatenate(([t0], ev_t)), return_inverse=True)
            d = np.bincount(inv, weights=np.concatenate(([0], ev_d)), minlength=len(ts)).astype(I64)
            level = n_c - open0 + np.cumsum(d)
            ok = (level > limit) & (ts >= max(t0, int(self.conn_from[c]))) & (ts < t1)
            if ok.any():
                t = int(ts[np.argmax(ok)])
                if best is None or t < best[0]:
                    best = (t, c)
        return best

    def _violation(self, res: dict[str, np.ndarray], m0: int, m1: int) -> tuple[int, int, str] | None:
        """The earliest crossing in the chunk: (second, channel, attribute); dry run: record, return None."""
        cands = []
        v = self._msg_violation(res, m0)
        if v is not None:
            cands.append((v[0], 0, v[1], self.chan_limit_attr))
        v = self._conn_violation(m0, m1)
        if v is not None:
            cands.append((v[0], 1, v[1], "channel_connections"))
        if not cands:
            return None
        if self.dry:
            for t, _, c, attr in cands:
                self._cross(attr, f"channel {c}", t)
            return None
        t, _, c, attr = min(cands)
        return t, c, attr

    def _suspend(self, c: int, t_cross: int, attr: str) -> None:
        """Close channel ``c`` one second after the second ``t_cross`` its limit ``attr`` is crossed."""
        cfg, o = self.cfg, self.out
        minute = t_cross // 60
        devs = self._devs(c)
        rej = np.zeros(len(devs), I64)
        if attr != "channel_connections":  # messages beyond the limit in the crossing second are rejected
            limit = int(self.chan_limit)
            per = self._per_second(devs, minute)
            cum = np.cumsum(per.sum(axis=0))
            s_star = t_cross - minute * 60
            before = int(cum[s_star - 1]) if s_star else 0
            at = per[:, s_star]
            cs = np.cumsum(at)
            rej = at - np.clip(limit - before - (cs - at), 0, at)
            if (c, minute) in self.rej_adjust:  # a second crossing in the same minute cannot happen
                raise RuntimeError(f"channel {c} still over its limit in minute {minute} after suspension")
            self.rej_adjust[(c, minute)] = int(rej.sum())
        n_rej = int(rej.sum())
        if cfg.qos == 1:
            sent = np.minimum(rej, cfg.max_inflight)
            self.requeued[minute] += int(sent.sum())
            self.unsent[minute] += n_rej - int(sent.sum())
            n_rej = int(sent.sum())
        else:
            self.rejected[minute] += n_rej
        if n_rej:
            self.rej_dev.append((devs, minute, rej))
        t_close = t_cross + 1
        self._add_window(c, t_close, t_close + int(self.enforcer.suspend_s))
        self.conn_from[c] = t_close
        row = o.row_at(devs, t_close)
        up = row < 0
        if cfg.qos == 1:  # already down (a cellular drop): its rejected messages wait in that outage
            o.requeued[row[~up]] += rej[~up]
        k = int(up.sum())
        new_rows = self.out.extend(
            dev=devs[up], chan=self._row_chan(devs[up]), kind=np.zeros(k, I64),
            t_down=np.full(k, t_close, I64),
            t_detect=np.full(k, t_close, I64), t_cover=np.full(k, t_close, I64),
            u_resume=self.susp_rng.random(k), requeued=(rej if cfg.qos == 1 else np.zeros_like(rej))[up],
        )  # fmt: skip
        self._settle(since=t_close, new_rows=new_rows)
        self.suspensions.append((c, t_close))
        E = self.enforcer
        if self.recorder is not None:
            self.recorder.crossing(attr, f"channel {c}", t_cross)
            self.recorder.suspension(attr, f"channel {c}", t_close, int(E.suspend_s) / 60)
            self.recorder.add("rejected", self.recorder.name(attr), n_rej)
        notify = getattr(E, "notify", None)
        if callable(notify):
            notify("channel_suspended", channel=c, t=t_close, rejected=n_rej, limit=attr)

    # -- run ------------------------------------------------------------------------------------------
    def chunks(self):
        """Generator: process the period, yielding the minute reached at each day boundary.

        Chunks are up to a day (fewer minutes for big fleets, to bound memory). After a suspension the
        run restarts at the violating minute with a short chunk that doubles while no limit is hit, so
        a reconnect storm costs a few minutes of recomputation per suspension, not a day.
        """
        full = int(max(60, min(1440, 3_000_000 // max(self.n, 1))))
        size, m = full, 0
        while m < self.minutes:
            m1 = min(m + size, self.minutes, (m // 1440 + 1) * 1440)
            res = self._chunk(m, m1)
            v = self._violation(res, m, m1) if self.enforcer is not None else None
            if v is None:
                self._commit(res, m, m1 - m)
                m, size = m1, min(size * 2, full)
                self.out.freeze(m * 60, self.n)
                if m % 1440 == 0 or m == self.minutes:
                    yield m
            else:
                t, c, attr = v
                vm = t // 60
                self._commit(res, m, vm - m)
                self.out.freeze(vm * 60, self.n)
                self._suspend(c, t, attr)
                m, size = vm, 4

    # -- platform limits (after the run: they do not change what devices send) -----------------------
    def _platform_reads(self) -> np.ndarray:
        """Platform messages/traffic limits: a crossing suspends the REST API for ``suspend_s``, so the
        application's buffer reads inside it are rejected. Returns the minutes a read happens."""
        is_read = read_minutes(self.minutes, self.cfg.read_every_min)
        self.platform_suspensions = 0
        limit, attr = self._msg_limit("platform")
        if limit is None:
            return is_read
        t_from = 0
        over = np.flatnonzero(self.arrivals > limit)
        all_devs = np.arange(self.n, dtype=I64)
        for m in over:
            if m * 60 + 59 < t_from:
                continue
            cum = np.cumsum(self._per_second(all_devs, int(m)).sum(axis=0))
            ok = (cum > limit) & (np.arange(60) + m * 60 >= t_from)
            if not ok.any():
                continue
            t = int(m * 60 + np.argmax(ok))
            self._cross(attr, "platform", t)
            if self.dry:
                break
            s = int(self.enforcer.suspend_s)
            t_from = t + 1 + s
            suspend_reads(is_read, t, s)
            self.platform_suspensions += 1
            if self.recorder is not None:
                self.recorder.suspension(attr, "platform", t + 1, s / 60)
        return is_read

    def _device_buffer_discards(self, is_read: np.ndarray) -> np.ndarray:
        """Messages discarded per minute by full device buffers (cap in messages of the mean payload)."""
        M = self.minutes
        out = np.zeros(M, I64)
        if self.buf_cap is None or len(self.cand) == 0:
            return out
        pos = {int(d): i for i, d in enumerate(self.cand)}
        dm = self.cand_arr.astype(I64)
        for devs, minute, rej in self.rej_dev:  # rejected at a crossing: never reached the buffer
            for d, n in zip(devs[rej > 0], rej[rej > 0], strict=True):
                if int(d) in pos:
                    dm[pos[int(d)], minute] -= n
        acc = buffer_fill(dm, self.buf_cap, self.cfg.buffer_ttl_min, is_read)
        disc = dm - acc
        out = disc.sum(axis=0)
        hit = np.argwhere(disc.T > 0)  # (minute, device) minute-major
        if len(hit):
            m, i = (int(x) for x in hit[0])
            d = self.cand[i : i + 1]
            cum = np.cumsum(self._per_second(d, m)[0])
            t = m * 60 + int(np.argmax(cum > acc[i, m]))
            self._cross("device_buffer_bytes", f"device {int(d[0])}", t)
        if self.dry:
            return np.zeros(M, I64)
        return out

    # -- results --------------------------------------------------------------------------------------
    def outcome(self, rng: np.random.Generator) -> FleetOutcome:
        """The finished run as plain data for :func:`sim.world.iot.meters.write_meters`.

        ``rng`` draws each delivered or rejected message's payload size (the fleet's ``payload`` stream).
        """
        cfg, M, T = self.cfg, self.minutes, self.seconds
        o = self.out = self.out.full()
        lo, hi = cfg.payload_bytes
        sizes = np.arange(lo, hi + 1, dtype=I64)
        probs = np.full(len(sizes), 1.0 / len(sizes))
        failed = self.rejected + self.requeued
        delivered = self.arrivals - failed - self.unsent
        h_del = _multinomial(rng, delivered, probs)  # (M, S): messages of each size per minute
        h_rej = _multinomial(rng, failed, probs)

        # connections, handshakes, rejected attempts
        act = o.active
        conn = act & (o.t_up < T)
        ticket_ok = self.proto.cfg.resumable  # tickets, or TLS 1.2 session IDs
        resumed = (
            conn
            & ticket_ok
            & (o.t_up - o.prev_up <= cfg.ticket_lifetime_s)
            & (o.u_resume < cfg.tls_resumption_probability)
        )
        rr, rt = o.rejected()
        rr, rt = rr[rt < T], rt[rt < T]
        r_res = (
            ticket_ok
            & (rt - o.prev_up[rr] <= cfg.ticket_lifetime_s)
            & (o.u_resume[rr] < cfg.tls_resumption_probability)
        )
        closes = act & (o.kind == 0) & (o.t_down < T)

        # server-side connection level: a device is off from the server's close to its reconnection
        srv_close = np.where(
            o.kind != 1,
            o.t_down,
            np.minimum(o.t_down + int(np.ceil(cfg.server_timeout_factor * cfg.keepalive_s)), o.t_up),
        )
        conn_start, conn_end = _server_connections(o.dev[act], o.t_down[act], srv_close[act], o.t_up[act], self.n, T)
        # integer counts: a bincount is np.add.at's exact sum
        diff = np.bincount(np.minimum(srv_close[act] // 60, M), minlength=M + 1).astype(I64)
        diff -= np.bincount(np.minimum(np.minimum(o.t_up[act], T) // 60, M), minlength=M + 1)
        level = self.n - np.cumsum(diff)[:M]

        # buffers: TTL k minutes, reads at minutes R, 2R, ... (start of minute, after expiry), except
        # reads rejected by a platform suspension; full device buffers discard new messages
        is_read = self._platform_reads()
        discarded = self._device_buffer_discards(is_read)
        wire_bytes = None
        if failed.any():
            payload_min = exact_matvec(h_del, sizes)
        else:  # the wire histogram is h_del's: price payloads and wire bytes in one pass
            priced = exact_matvec(h_del, np.concatenate([sizes[:, None], message_table(self.proto, sizes)], axis=1))
            payload_min, wire_bytes = priced[:, 0], priced[:, 1:]
        kept = delivered - discarded
        if discarded.any():  # discarded messages carry the minute's mean payload
            payload_min = payload_min * np.divide(kept, delivered, out=np.zeros(M), where=delivered > 0)
        stored, fate = buffer(kept, payload_min, cfg.buffer_ttl_min, is_read)

        still_down = np.flatnonzero(act & (o.t_up >= T))
        pending, lost = self._waiting(still_down) if len(still_down) else (np.zeros(0, I64), np.zeros(0, I64))
        refused = int((o.chan[rr] == cfg.channels).sum())
        if self.dg is not None:
            self.dg_result = self._downgrade_result(o, rr, rt)
        return FleetOutcome(
            cfg=cfg, proto=self.proto, minutes=M, sizes=sizes, wire_hist=h_del + h_rej if failed.any() else h_del,
            pings=self.pings,
            connect_full=o.t_up[conn & ~resumed] // 60, connect_resumed=o.t_up[conn & resumed] // 60,
            refused_full=rt[~r_res] // 60, refused_resumed=rt[r_res] // 60, closes=o.t_down[closes] // 60,
            connections=level, kept=kept, stored=stored,
            sent=int(self.sent.sum()), read=fate["read"], expired=fate["expired"], in_buffer=fate["in_buffer"],
            dropped_link=int(self.dropped.sum()), dropped_queue=int(self.qdrop.sum()) + int(lost.sum()),
            rejected=int(self.rejected.sum()), retransmitted=int(self.requeued.sum()),
            discarded=int(discarded.sum()), pending=int(pending.sum()),
            channel_suspensions=len(self.suspensions), platform_suspensions=self.platform_suspensions,
            refused_devices=len(self.no_session), session_refusals=refused,
            recorder=self.recorder, acting=self.act, wire_bytes=wire_bytes,
            conn_start=conn_start, conn_end=conn_end,
        )  # fmt: skip

    def _downgrade_result(self, o, rr: np.ndarray, rt: np.ndarray) -> dict[str, Any]:
        """What the downgrade windows did (``o``: the full outage table; ``rr``/``rt``: refused attempts)."""
        dg, T, cfg = self.dg, self.seconds, self.cfg
        W = len(dg.windows)
        wi = dg.index(rt)
        ref = (o.chan[rr] > cfg.channels) & (wi >= 0)
        per = np.bincount(wi[ref], minlength=W)
        aff = o.active & dg.affected(o.dev)
        windows = []
        for j, ((a, b), open_end) in enumerate(zip(dg.windows, dg.open_end, strict=True)):
            closed = int((aff & (o.kind == 0) & (o.t_down == a) & (o.chan >= self.vbase)).sum())
            down_end = int((aff & (o.t_down < T) & (o.t_up >= T)).sum()) if open_end else 0
            windows.append({"start": a, "end": None if open_end else b, "refused_attempts": int(per[j]),
                            "connections_closed": closed, "unavailable_at_end": down_end,
                            **storm(o.t_up[aff], b, cfg.backoff_max_s, T)})  # fmt: skip
        return {"devices_kept": dg.kept, "devices_affected": dg.hi - dg.lo,
                "refused_attempts": int(ref.sum()), "windows": windows}  # fmt: skip

    def write(self, book: MeterBook, seed: np.random.SeedSequence) -> dict:
        """Write the results into ``book``; see :func:`sim.world.iot.meters.write_meters`."""
        meters = write_meters(self.outcome(_child(seed, "payload")), book)
        if self.dg_result is not None:
            record_downgrade(book, self.recorder, self.dg_result)
        return meters


def _server_connections(dev: np.ndarray, t_down: np.ndarray, srv_close: np.ndarray, t_up: np.ndarray, n: int,
                        T: int) -> tuple[np.ndarray, np.ndarray]:
    """Each server-side connection's ``(start, end)`` (seconds) from the active outage rows: a device is up from
    the period start (0) or its reconnection ``t_up`` to the server's close of its next outage (``srv_close``),
    the last one to the period end ``T``; a device without an outage is up all period."""
    order = np.lexsort((t_down, dev))
    dev, srv_close, t_up = dev[order], srv_close[order], t_up[order]
    first = np.ones(dev.size, dtype=bool)
    first[1:] = dev[1:] != dev[:-1]
    last = np.ones(dev.size, dtype=bool)
    last[:-1] = dev[1:] != dev[:-1]
    prev_up = np.zeros(dev.size, dtype=I64)
    prev_up[1:] = t_up[:-1]
    before = np.where(first, 0, prev_up)          # the connection each outage ends
    after = last & (t_up < T)                     # up again at the period end
    calm = np.ones(n, dtype=bool)
    calm[dev] = False
    start = np.concatenate((before, t_up[after], np.zeros(int(calm.sum()), I64)))
    end = np.concatenate((np.minimum(srv_close, T), np.full(int(after.sum()) + int(calm.sum()), T, I64)))
    keep = start < T
    return start[keep].astype(I64), end[keep].astype(I64)


def simulate_fleet(
    cfg: IotFleetConfig,
    *,
    start: datetime,
    days: int,
    seed: np.random.SeedSequence,
    book: MeterBook,
    env: simpy.Environment | None = None,
    enforcer: Any = None,
) -> dict:
    """Run the fleet for ``days`` from ``start``; write traffic into ``book``; return element meters.

    ``book`` receives bytes by category per minute, the series ``iot_messages``/``iot_pings`` and the
    levels ``iot_connections`` and ``iot_stored_bytes``, and the counts listed in the module doc.
    The return value holds usage-file meters: daily element counts, per-minute ``stored_bytes`` and
    ``peak_ccu``, and the message, connection-time and session meters of :mod:`sim.world.iot.meters`.

    ``env``: when given, the fleet runs as a SimPy process that advances one chunk (<= 1 day) per
    ``env.timeout`` (env time in seconds from ``start``), so other processes interleave with it; the
    call returns after ``env.run(until=<fleet process>)``. ``enforcer``: an :class:`IotLimits`-like
    object (``None`` = no limits acting on the world).

    ``start`` anchors the period: the diurnal shape is in the fleet's local hours (``utc_offset_hours``),
    placed by the UTC hour of ``start`` (a start inside an hour counts from that hour).
    """
    if enforcer is not None and hasattr(enforcer, "crossing"):
        enforcer.start = start  # report times as ISO instants
    fleet = _Fleet(cfg, days, seed, enforcer, start.astimezone(UTC).hour if start is not None else 0)
    if env is None:
        for _ in fleet.chunks():
            pass
    else:
        t0 = env.now

        def proc():
            for m in fleet.chunks():
                yield env.timeout(max(0, t0 + m * 60 - env.now))

        env.run(until=env.process(proc()))
    return fleet.write(book, seed)
