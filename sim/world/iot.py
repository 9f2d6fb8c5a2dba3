"""The IoT tracker fleet: telemetry over MQTT into per-device platform buffers (IoT seed 004).

What it models, and why each part is there:

* **Schedule** (``iot_schedule``): trackers report every 10-30 s while moving and every 300 s while
  parked; trips follow a diurnal shape. Counts come from closed forms, so a month of a 10,000-device
  fleet is not 860 M events.
* **Wire** (``sim.protocol``): exact MQTT 3.1.1 / 5 packet sizes over TLS and TCP/IP, PINGREQ/PINGRESP
  when a device has been silent for one keep-alive interval, full or resumed TLS handshakes.
* **Links** (``iot_links``): cellular drops kill connections silently; devices notice, back off
  (1 s doubling to 128 s) and reconnect, paying a handshake. QoS 0 messages sent into a dead link
  are lost; everything else waits on the device and is sent on reconnection.
* **Platform**: each device has a buffer with a TTL; an application may read and clear all buffers
  every K minutes (the seed's storage tip). Storage is snapshotted every minute (seed: "snapshot the
  storage ... every minute and calculate the daily average").
* **Limits acting on the world** (``enforcer``): a channel whose messages in a minute exceed its limit
  is suspended (all connections closed at the crossing, the excess messages rejected, reconnects
  rejected for ``suspend_s`` seconds, each paying a handshake: the reconnect storm the seed's
  "channel suspended for 1 minute" implies).

Conservation (checked by the tests)::

    sent = delivered + dropped + rejected + discarded + pending_on_device_at_end
    delivered = read + expired + in_buffer_at_end

Defaults cite ``shared/reference/protocol-facts.md`` as "PF §x"; values marked *assumption* have no
source there and are parameters for that reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pydantic
import simpy
from pydantic import Field

from sim.meters import MeterBook
from sim.protocol import Protocol, ProtocolConfig
from sim.world import iot_links as links
from sim.world.iot_schedule import Segments, build_segments, split_by_minute, trips

I64 = np.int64

#: Trip starts per local hour: night trough ~0.2 of the mean, commute peaks ~1.7x the mean. The shape
#: follows PF §6 ``diurnal_profile`` (peak/mean 1.7, trough 0.2 at 03:00-05:00, Cisco VNI) -- a traffic
#: profile adopted for vehicle trips (assumption).
DEFAULT_HOUR_WEIGHTS: tuple[float, ...] = (
    0.2, 0.2, 0.2, 0.2, 0.2, 0.5, 1.1, 1.7, 1.7, 1.3, 1.1, 1.1,
    1.2, 1.2, 1.2, 1.3, 1.6, 1.7, 1.6, 1.3, 0.9, 0.6, 0.4, 0.3,
)  # fmt: skip


class IotFleetConfig(pydantic.BaseModel, extra="forbid"):
    """A fleet of GPS trackers publishing telemetry to an IoT platform (flespi-like) over MQTT."""

    # -- fleet and platform elements ------------------------------------------------------------------
    devices: int = Field(
        1000, ge=1, description="Trackers in the fleet; each is one platform device (daily count)."
    )
    channels: int = Field(
        1,
        ge=1,
        description="Channels the devices connect to; devices are split into equal contiguous blocks.",
    )
    streams: int = Field(
        1, ge=0, description="Streams forwarding messages to the owner's servers (element count)."
    )
    containers: int = Field(0, ge=0, description="Containers (static element count per day).")
    abques: int = Field(0, ge=0, description="Abques (static element count per day).")
    cdns: int = Field(0, ge=0, description="CDNs (static element count per day).")
    tokens: int = Field(1, ge=0, description="Access tokens (static element count per day).")
    subaccounts: int = Field(0, ge=0, description="Subaccounts (static element count per day).")
    limits: int = Field(0, ge=0, description="Limits attached to subaccounts (static element count per day).")
    persistent_sessions: bool = Field(
        True,
        description="Devices connect with clean-session off, so each keeps an MQTT session on the broker "
        "(counted as MQTT sessions every day).",
    )
    extra_mqtt_sessions: int = Field(
        1, ge=0, description="Other MQTT sessions, e.g. the owner's application subscribing to the fleet."
    )

    # -- behaviour ----------------------------------------------------------------------------------------
    moving_interval_s: tuple[int, int] = Field(
        (10, 30),
        description="Report interval while moving, seconds; each device draws an integer uniformly in "
        "[min, max] (typical tracker configuration, assumption).",
    )
    parked_interval_s: int = Field(
        300, ge=1, description="Report interval while parked, seconds (assumption)."
    )
    moving_fraction: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        description="Long-run fraction of time a device is moving (1 = always, 0 = never).",
    )
    trip_minutes_mean: float = Field(30.0, gt=0.0, description="Mean trip length, minutes (exponential).")
    hour_weights: tuple[float, ...] = Field(
        DEFAULT_HOUR_WEIGHTS,
        description="Relative trip starts per local hour 0..23 (PF §6 diurnal_profile shape).",
    )
    utc_offset_hours: int = Field(
        0, ge=-12, le=14, description="Fleet's local time zone for the diurnal shape."
    )
    payload_bytes: tuple[int, int] = Field(
        (100, 300),
        description="Telemetry JSON payload size, bytes, uniform integer in [min, max] (position, speed, "
        "ignition, battery ...; assumption).",
    )

    # -- protocol -----------------------------------------------------------------------------------------
    mqtt_version: Literal["3.1.1", "5"] = Field(
        "3.1.1", description="PF §6 mqtt_version: 3.1.1 (5 as option)."
    )
    qos: Literal[0, 1] = Field(
        1,
        description="PUBLISH QoS. 1: PUBACK per message, nothing lost with a dropped link; 0: lost (PF §3.1).",
    )
    topic_len: int = Field(23, ge=0, description="Topic length, bytes (PF §3.1 [M-MQTT] 23-B topic).")
    client_id_len: int = Field(24, ge=0, description="MQTT client id length (PF §3.1 [M-MQTT] CONNECT).")
    keepalive_s: int = Field(
        60, ge=1, le=65535, description="MQTT keep-alive, seconds (PF §6 mqtt_keepalive: 60 s IoT)."
    )
    server_timeout_factor: float = Field(
        1.5,
        ge=1.0,
        description="Server drops a silent client after this x keep-alive (MQTT 3.1.1 [MQTT-3.1.2-24]).",
    )
    tls: Literal["off", "1.2", "1.3"] = Field("1.3", description="PF §6 tls_version: TLS 1.3.")
    cert_chain: Literal["ecdsa", "rsa"] = Field(
        "ecdsa", description="PF §6 cert_chain: ECDSA P-256 + intermediate."
    )
    mss: int = Field(1378, ge=64, description="TCP MSS on cellular (PF §6 tcp_mss: 1,378 B for MTU 1,430).")
    tls_resumption_probability: float = Field(
        0.8, ge=0.0, le=1.0, description="Chance a reconnect within the ticket lifetime resumes (PF §6)."
    )
    ticket_lifetime_s: int = Field(
        7200, ge=0, description="TLS ticket lifetime (PF §1.4: OpenSSL default 7,200 s)."
    )

    # -- cellular links -----------------------------------------------------------------------------------
    drops_per_device_per_day: float = Field(
        2.0,
        ge=0.0,
        description="Silent connection deaths per device per day (cell changes, coverage; assumption).",
    )
    coverage_gap_mean_s: float = Field(
        60.0,
        ge=0.0,
        description="Mean time without coverage after a drop, seconds (exponential; assumption).",
    )
    detect_s: int | None = Field(
        None,
        ge=0,
        description="Seconds until a device notices a dead link; default one keep-alive (the client expects "
        "a PINGRESP 'within a reasonable amount of time', MQTT 3.1.1 §3.1.2.10).",
    )
    backoff_initial_s: int = Field(1, ge=1, description="First reconnect delay (PF §3.1: AWS IoT SDK 1 s).")
    backoff_max_s: int = Field(128, ge=1, description="Reconnect delay cap (PF §3.1: AWS IoT SDK 128 s).")
    max_inflight: int = Field(
        20,
        ge=1,
        description="QoS 1 PUBLISHes a device has unacknowledged at once (paho max_inflight / MQTT 5 Receive "
        "Maximum default 20): at a suspension at most this many per device are sent and rejected; the rest "
        "of its backlog was never sent and stays queued.",
    )
    device_queue_max: int | None = Field(
        10_000,
        ge=0,
        description="Messages a tracker holds while it cannot send (its black-box queue; assumption). "
        "Older messages beyond it are lost: dropped, reason device_queue_full. Bounds the backlog in a "
        "perpetual reconnect storm. None = unbounded.",
    )

    # -- platform buffers ---------------------------------------------------------------------------------
    buffer_ttl_min: int = Field(
        10080,
        ge=1,
        description="Device buffer message TTL, minutes (7 days, assumption; seed tip: lower it).",
    )
    read_every_min: int | None = Field(
        None,
        ge=1,
        description="The owner's application reads and clears all device buffers every K minutes "
        "(seed tip); None = never, messages leave by TTL only.",
    )

    @pydantic.model_validator(mode="after")
    def _ranges(self) -> IotFleetConfig:
        if not 1 <= self.moving_interval_s[0] <= self.moving_interval_s[1]:
            raise ValueError("moving_interval_s must be [min, max] with 1 <= min <= max")
        if not 0 <= self.payload_bytes[0] <= self.payload_bytes[1]:
            raise ValueError("payload_bytes must be [min, max] with 0 <= min <= max")
        if len(self.hour_weights) != 24 or min(self.hour_weights) < 0 or sum(self.hour_weights) <= 0:
            raise ValueError("hour_weights needs 24 non-negative weights with a positive sum")
        return self

    def protocol_config(self) -> ProtocolConfig:
        return ProtocolConfig(
            app="mqtt311" if self.mqtt_version == "3.1.1" else "mqtt5",
            tls=self.tls,
            cert_chain=self.cert_chain,
            mss=self.mss,
            mqtt_qos=self.qos,
            mqtt_topic_len=self.topic_len,
            mqtt_client_id_len=self.client_id_len,
        )


@dataclass
class IotLimits:
    """The enforcer contract: what a plan's limits tell the fleet (``None`` = unlimited).

    The fleet asks, per channel and minute, whether the channel's received messages exceed
    ``channel_messages_per_minute``. On the first crossing (to the second) it acts as the seed's
    "channel suspended for 1 minute": messages beyond the limit in that second are rejected (QoS 0:
    lost; QoS 1: no PUBACK, so the device re-sends them after reconnecting), every connection of the
    channel is closed one second later, and for ``suspend_s`` seconds new connections are rejected
    (each attempt pays a handshake). Devices reconnect on their back-off schedule: the reconnect storm.
    ``notify(event, **info)`` if present is called for each suspension.

    The other fields act as described in :mod:`sim.world.iot_enforcer`, whose
    :class:`~sim.world.iot_enforcer.IotPlanLimits` builds them from a plan and records the report.
    """

    channel_messages_per_minute: int | None = None
    suspend_s: int = 60
    channel_bytes_per_minute: float | None = None
    channel_connections: int | None = None
    device_buffer_bytes: float | None = None
    mqtt_sessions: int | None = None
    platform_messages_per_minute: float | None = None
    platform_bytes_per_minute: float | None = None


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


class _Fleet:
    """One run: schedule and outages, processed in chunks of minutes with roll-back on a suspension."""

    def __init__(self, cfg: IotFleetConfig, days: int, seed: np.random.SeedSequence, enforcer: Any) -> None:
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
        hours = np.roll(
            np.asarray(cfg.hour_weights, float), cfg.utc_offset_hours
        )  # local hour h at UTC h - off
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
        self.windows.add(c, t_close, t_close + int(self.enforcer.suspend_s))
        self.conn_from[c] = t_close
        row = o.row_at(devs, t_close)
        up = row < 0
        if cfg.qos == 1:  # already down (a cellular drop): its rejected messages wait in that outage
            o.requeued[row[~up]] += rej[~up]
        k = int(up.sum())
        new_rows = self.out.extend(
            dev=devs[up], chan=np.full(k, c, I64), kind=np.zeros(k, I64), t_down=np.full(k, t_close, I64),
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

    def _platform(self) -> np.ndarray:
        """Platform messages/traffic limits: a crossing suspends the REST API for ``suspend_s``, so the
        application's buffer reads inside it are rejected. Returns the minutes a read happens."""
        M = self.minutes
        is_read = _read_minutes(M, self.cfg.read_every_min)
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
            first, last = -(-(t + 1) // 60), (t + s) // 60  # read minutes starting inside [t+1, t+1+s)
            is_read[first : last + 1] = False
            self.platform_suspensions += 1
            if self.recorder is not None:
                self.recorder.suspension(attr, "platform", t + 1, s / 60)
        return is_read

    def _device_buffers(self, is_read: np.ndarray, failed: np.ndarray) -> np.ndarray:
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
        cap, ttl = self.buf_cap, self.cfg.buffer_ttl_min
        acc = np.zeros_like(dm)
        level = np.zeros(len(self.cand), I64)
        lo = 0
        for m in range(M):
            if is_read[m]:
                level[:] = 0
                lo = m
            if m - ttl >= lo:
                level -= acc[:, m - ttl]
            acc[:, m] = np.minimum(dm[:, m], np.maximum(cap - level, 0))
            level += acc[:, m]
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

    # -- results --------------------------------------------------------------------------------------
    def write(self, book: MeterBook, seed: np.random.SeedSequence) -> dict:
        cfg, M, T = self.cfg, self.minutes, self.seconds
        o = self.out = self.out.full()
        rng = _child(seed, "payload")
        lo, hi = cfg.payload_bytes
        sizes = np.arange(lo, hi + 1, dtype=I64)
        probs = np.full(len(sizes), 1.0 / len(sizes))
        failed = self.rejected + self.requeued
        delivered = self.arrivals - failed - self.unsent
        h_del = rng.multinomial(delivered, probs)  # (M, S): messages of each size per minute
        h_rej = rng.multinomial(failed, probs)
        table = self.proto.messages(sizes, "in")
        hist = h_del + h_rej
        cat = {"payload": ("in", "payload"), "app_protocol": ("in", "app_protocol"),
               "tls_record": ("in", "tls_record"), "tcpip": ("in", "tcpip"), "ack_tcpip": ("out", "tcpip"),
               "ack_app": ("out", "app_protocol"), "ack_tls_record": ("out", "tls_record")}  # fmt: skip
        minutes = np.arange(M)
        for key, (d, c) in cat.items():
            book.add_bytes(d, c, minutes, hist @ table[key].astype(float))
        _add_event_bytes(book, self.proto.keepalive(), minutes, self.pings)

        # connections, handshakes, rejected attempts
        act = o.active
        conn = act & (o.t_up < T)
        ticket_ok = self.proto.cfg.session_tickets and cfg.tls != "off"
        resumed = (
            conn
            & ticket_ok
            & (o.t_up - o.prev_up <= cfg.ticket_lifetime_s)
            & (o.u_resume < cfg.tls_resumption_probability)
        )
        for flag in (False, True):
            sel = conn & (resumed == flag)
            _add_event_bytes(book, self.proto.connect(flag), o.t_up[sel] // 60, 1)
        rr, rt = o.rejected()
        rr, rt = rr[rt < T], rt[rt < T]
        r_res = (
            ticket_ok
            & (rt - o.prev_up[rr] <= cfg.ticket_lifetime_s)
            & (o.u_resume[rr] < cfg.tls_resumption_probability)
        )
        for flag in (False, True):
            _add_event_bytes(book, self.proto.connect(flag), rt[r_res == flag] // 60, 1)
        closes = act & (o.kind == 0) & (o.t_down < T)
        _add_event_bytes(book, self.proto.disconnect(True), o.t_down[closes] // 60, 1)

        # server-side connection level: a device is off from the server's close to its reconnection
        srv_close = np.where(
            o.kind != 1,
            o.t_down,
            np.minimum(o.t_down + int(np.ceil(cfg.server_timeout_factor * cfg.keepalive_s)), o.t_up),
        )
        diff = np.zeros(M + 1, I64)
        np.add.at(diff, np.minimum(srv_close[act] // 60, M), 1)
        np.add.at(diff, np.minimum(np.minimum(o.t_up[act], T) // 60, M), -1)
        level = self.n - np.cumsum(diff)[:M]
        book.set_level("iot_connections", level)

        # buffers: TTL k minutes, reads at minutes R, 2R, ... (start of minute, after expiry), except
        # reads rejected by a platform suspension; full device buffers discard new messages
        is_read = self._platform()
        discarded = self._device_buffers(is_read, failed)
        payload_min = h_del @ sizes.astype(float)
        kept = delivered - discarded
        if discarded.any():  # discarded messages carry the minute's mean payload
            payload_min = payload_min * np.divide(kept, delivered, out=np.zeros(M), where=delivered > 0)
        stored, fate = _buffer(kept, payload_min, cfg.buffer_ttl_min, is_read)
        book.set_level("iot_stored_bytes", stored)
        book.add_series("iot_messages", minutes, kept)
        book.add_series("iot_pings", minutes, self.pings)

        still_down = np.flatnonzero(act & (o.t_up >= T))
        pending, lost = self._waiting(still_down) if len(still_down) else (np.zeros(0, I64), np.zeros(0, I64))
        pending, q_end = int(pending.sum()), int(lost.sum())
        q_lost = int(self.qdrop.sum()) + q_end
        rt_chan = o.chan[rr]
        refused = int((rt_chan == cfg.channels).sum())
        E = self.recorder
        if E is not None:
            E.add("discarded", "device_buffer_full", int(discarded.sum()))
            E.add("dropped", "device_queue_full", q_lost)
            E.add("rejected_connections", "mqtt_session_refused", refused)
            E.add("rejected_connections", "channel_suspended", len(rt) - refused)
            if self.act:
                E.retransmitted = int(self.requeued.sum())
        counts = {
            "iot_messages_sent": int(self.sent.sum()),
            "iot_delivered": int(kept.sum()),
            "iot_expired": fate["expired"],
            "iot_read": fate["read"],
            "iot_in_buffer_end": fate["in_buffer"],
            "iot_dropped": int(self.dropped.sum()) + q_lost,
            "iot_dropped_device_queue_full": q_lost,
            "iot_rejected": int(self.rejected.sum()),
            "iot_retransmitted": int(self.requeued.sum()),
            "iot_discarded": int(discarded.sum()),
            "iot_discarded_device_buffer_full": int(discarded.sum()),
            "iot_pending_on_device_end": pending,
            "iot_keepalives": int(self.pings.sum()),
            "connections": int(conn.sum()),
            "full_handshakes": int((conn & ~resumed).sum() + (~r_res).sum()),
            "resumed_handshakes": int(resumed.sum() + r_res.sum()),
            "rejected_connections": int(len(rt)),
            "channel_suspensions": len(self.suspensions),
            "platform_suspensions": self.platform_suspensions,
            "mqtt_sessions_refused_devices": len(self.no_session),
            "mqtt_session_refusals": refused,
        }
        for k, v in counts.items():
            book.count(k, v)

        days = M // 1440
        daily = {
            "channels": cfg.channels,
            "streams": cfg.streams,
            "devices": cfg.devices,
            "mqtt_sessions": (cfg.devices if cfg.persistent_sessions else 0) + cfg.extra_mqtt_sessions,
            "containers": cfg.containers,
            "abques": cfg.abques,
            "cdns": cfg.cdns,
            "tokens": cfg.tokens,
            "subaccounts": cfg.subaccounts,
            "limits": cfg.limits,
        }
        meters: dict[str, Any] = {k: {"interval": "1d", "values": [v] * days} for k, v in daily.items()}
        meters["stored_bytes"] = {"interval": "1min", "values": [int(v) for v in stored]}
        meters["peak_ccu"] = int(level.max()) if M else 0
        return meters


def _add_event_bytes(book: MeterBook, b, minute, n) -> None:
    """Add ``n`` (scalar or per-minute array) events of traffic ``b`` (a :class:`sim.protocol.Bytes`)."""
    minute = np.atleast_1d(np.asarray(minute, dtype=I64))
    if minute.size == 0:
        return
    n = np.broadcast_to(np.asarray(n, dtype=float), minute.shape)
    for d, side in (("out", b.out), ("in", b.inb)):
        for c, v in side.items():
            book.add_bytes(d, c, minute, n * v)


def _read_minutes(minutes: int, read_every: int | None) -> np.ndarray:
    """Minutes at whose start the application reads and clears the buffers."""
    m = np.arange(minutes)
    return (m % read_every == 0) if read_every else np.zeros(minutes, bool)


def _buffer(count: np.ndarray, nbytes: np.ndarray, ttl: int, is_read: np.ndarray) -> tuple[np.ndarray, dict]:
    """Buffer level (end of each minute) and message fates for per-minute deliveries.

    A message delivered in minute ``m`` expires at the start of minute ``m + ttl``; a read at the start
    of minute ``r`` (a multiple of ``read_every``) takes everything delivered before ``r`` still
    there. So the level at the end of minute ``m`` holds minutes ``max(m - ttl + 1, last read) .. m``,
    and a constant arrival of ``b`` bytes/minute settles at exactly ``b * ttl`` (Little's law).
    """
    M = len(count)
    m = np.arange(M)
    last_read, next_read = _read_marks(is_read)
    lo = np.maximum(np.maximum(m - ttl + 1, last_read), 0)
    cb = np.concatenate(([0.0], np.cumsum(nbytes)))
    stored = cb[m + 1] - cb[lo]
    read = next_read <= np.minimum(m + ttl - 1, M - 1)
    expired = ~read & (m + ttl <= M - 1)
    n_read, n_exp = int(count[read].sum()), int(count[expired].sum())
    return stored, {"read": n_read, "expired": n_exp, "in_buffer": int(count.sum()) - n_read - n_exp}


def _read_marks(is_read: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per minute: the last read at or before it (0 if none) and the next read after it (M + big if none)."""
    M = len(is_read)
    m = np.arange(M)
    last = np.maximum.accumulate(np.where(is_read, m, 0)) if M else m
    nxt_at = np.where(is_read, m, 2 * M + 10)
    nxt = np.concatenate((np.minimum.accumulate(nxt_at[::-1])[::-1][1:], [2 * M + 10])) if M else m
    return last, nxt


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
    ``peak_ccu``.

    ``env``: when given, the fleet runs as a SimPy process that advances one chunk (<= 1 day) per
    ``env.timeout`` (env time in seconds from ``start``), so other processes interleave with it; the
    call returns after ``env.run(until=<fleet process>)``. ``enforcer``: an :class:`IotLimits`-like
    object (``None`` = no limits acting on the world).

    ``start`` only anchors the period: the diurnal shape is in the fleet's local hours
    (``utc_offset_hours``) and assumes ``start`` is at 00:00 UTC.
    """
    if enforcer is not None and hasattr(enforcer, "crossing"):
        enforcer.start = start  # report times as ISO instants
    fleet = _Fleet(cfg, days, seed, enforcer)
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
