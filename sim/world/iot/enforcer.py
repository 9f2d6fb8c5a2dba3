"""A plan's restriction table acting on the IoT fleet (IoT seed 004, "Platform restrictions").

Both sides of the fleet's limits live here: :class:`IotLimits` is the contract, the limit attributes
the fleet engine (:mod:`sim.world.iot.fleet`) reads from its ``enforcer``; :class:`IotPlanLimits` is the
``enforcer`` :func:`sim.world.iot.fleet.simulate_fleet` takes in a run. It is built from
``plan.restrictions`` only (the world knows no prices) and records what the limits did, in
:attr:`IotPlanLimits.report`.

How each row acts (seed: "Exceeding the limit immediately triggers the corresponding action"):

* ``channel / messages_per_minute / suspend`` -- the channel's messages in a calendar minute cross the
  limit at second *s*: messages beyond the limit in *s* are rejected (QoS 0 lost, QoS 1 re-sent after
  reconnecting), every connection of the channel is closed at *s* + 1 and new ones are rejected (each
  attempt pays a handshake) for ``duration`` (seed: "all existing channel connections are closed and
  the new ones are rejected on the channel's URI").
* ``channel / traffic_bytes_per_minute / suspend`` -- the same, counting each telemetry message's
  session-layer bytes (payload + MQTT + TLS record) at the fleet's mean payload size; it acts as a
  messages-per-minute limit of ``floor(limit / bytes per message)``. (Per-message sizes are drawn
  after the run from their own random stream; counting them during the run would change it.)
* ``channel / active_connections / suspend`` -- the server-side connections of the channel (a device
  is connected from its reconnection until the server closes the connection) exceed the limit at
  second *s*: suspension as above. A channel holding more devices than the limit is suspended each
  time its devices are back: a perpetual storm.
* ``device / stored_bytes / discard_new`` -- a device's buffer (payload bytes at the fleet's mean
  payload size, TTL and application reads as the fleet's buffer model) is full: new messages to it are
  discarded (``discarded['device_buffer_full']``), from the first message that would exceed the
  limit, never before. Wire traffic is unchanged (the platform received the message).
* ``platform / active_sessions / discard_new_sessions`` -- MQTT sessions beyond the limit cannot be
  opened: the fleet's persistent sessions plus ``extra_mqtt_sessions`` are counted, the owner's
  sessions first, then devices in index order; devices left without a session try to connect on their
  back-off schedule all period (each attempt pays a handshake and is refused). Their telemetry waits
  on the device (the tracker's queue, ``device_queue_max``) and is lost only by queue overflow
  (``dropped['device_queue_full']``) -- both QoS 0 and 1, as for any long outage in this model.
* ``platform / messages_per_minute`` and ``platform / traffic_bytes_per_minute`` (``suspend``) -- the
  fleet's MQTT telemetry counts towards both (traffic at the mean message size as above). Reading of
  "Platform suspension means that all REST API requests are temporarily rejected": the REST API is
  suspended, MQTT telemetry keeps flowing (the seed names REST only). The fleet's only REST client is
  the owner's application reading the device buffers; a read falling inside a platform suspension is
  rejected and the data stay until the next read.

Rows not modelled are listed in ``report['not_modelled']`` with the reason (see ``_NOT_MODELLED``).

**Downgrade windows** (seed, "Billing terms": unpaid -> "downgraded to the free version with consequent
reduction of all limits -- channels, devices, storage etc. exceeding the free limits will be unavailable";
"Once you pay both invoices ... your limits and data will be restored immediately"). The contract's
``downgrades`` is a list of windows ``(a, b)``: seconds from the fleet's start, ``[a, b)``, ``b = None``
when never restored (to the end of the run). ``downgrade_devices`` / ``downgrade_channels`` /
``downgrade_mqtt_sessions`` are the free plan's element counts. Inside a window the owner keeps the first
``K`` devices by index, ``K = min(devices, first device of channel downgrade_channels, mqtt_sessions -
extra_mqtt_sessions)`` (devices fill the channels in index order, so "devices beyond the free count" and
"devices on channels beyond the free count" are both the devices from ``K`` on; the free plan's session
row counts the owner's sessions first, as the session limit does). Devices already without a session
(the session limit of the plan in force) are refused anyway and not counted again. For the other devices,
from ``a``: their connections are closed by the server at ``a`` (graceful teardown; a device already down
stays down), every reconnection attempt during the window reaches the platform, pays a handshake and is
refused (``rejected_connections['downgraded']``); their telemetry waits on the device (lost only by
queue overflow, ``dropped['device_queue_full']``); at ``b`` their back-off schedules bring them back, all
at about the same attempt: the restoration storm. The other free restriction rows (lower per-minute
rates, buffer sizes ...) are not applied during a window: ``report['downgrades']['not_applied']`` lists
those that differ. A dry run does not act on downgrades. On a sampled fleet (``iot.sample``) the counts
act on the sample as they are, like every other element count: pass counts scaled by the sampling ratio
to keep the free fraction of the fleet.

Building it from a billing timeline (:mod:`sim.pricing.invoices`)::

    limits = IotPlanLimits.from_plan(commercial).with_downgrades(timeline.windows_s(fleet_start), free)

``report['downgrades']`` (only when windows were given): ``plan``, ``free_limits`` (devices, channels,
mqtt_sessions), ``acted``, ``devices_kept``, ``devices_affected``, ``refused_attempts``, ``windows`` (per
window: ``start``, ``end`` (None: to the end of the run), ``refused_attempts``, ``connections_closed`` (at
``start``), ``reconnections`` (affected devices back within ``backoff_max_s`` after ``end``: the storm),
``storm_peak_per_minute`` and ``storm_peak_minute`` (the busiest minute of those reconnections),
``unavailable_at_end`` (open windows: affected devices still down at the end)), ``not_applied`` (the free
restriction rows the fleet models that differ from the limits in force: ``restriction``, ``free_limit``,
``limit_in_force``) and ``not_applied_reason``.

``dry_run=True``: the fleet runs unrestricted and this object records only the first crossing of each
restriction; :attr:`binds` says whether any limit would have acted (re-run the plan enforced then).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np


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

    The other fields act as described in :mod:`sim.world.iot.enforcer`, whose
    :class:`~sim.world.iot.enforcer.IotPlanLimits` builds them from a plan and records the report.
    """

    channel_messages_per_minute: int | None = None
    suspend_s: int = 60
    channel_bytes_per_minute: float | None = None
    channel_connections: int | None = None
    device_buffer_bytes: float | None = None
    mqtt_sessions: int | None = None
    platform_messages_per_minute: float | None = None
    platform_bytes_per_minute: float | None = None
    #: downgrade windows ``[a, b)`` in seconds from the fleet's start (``b`` None: to the end), during which
    #: only the free plan's element counts below are available (None: that count does not restrict)
    downgrades: list[tuple[int, int | None]] = field(default_factory=list)
    downgrade_devices: int | None = None
    downgrade_channels: int | None = None
    downgrade_mqtt_sessions: int | None = None


@dataclass
class Downgrade:
    """The downgrade windows as an engine applies them (see :func:`downgrade_of`).

    ``windows``: merged, sorted, clipped to the run: ``[a, b)`` with ``0 <= a < seconds`` and
    ``b <= seconds + 1`` (``seconds + 1``: not restored within the run, ``open_end``). Devices
    ``[lo, hi)`` are unavailable inside every window (``lo`` = the devices kept).
    """

    windows: list[tuple[int, int]]
    open_end: list[bool]
    kept: int
    lo: int
    hi: int

    @property
    def starts(self) -> np.ndarray:
        return np.array([a for a, _ in self.windows], np.int64)

    @property
    def ends(self) -> np.ndarray:
        return np.array([b for _, b in self.windows], np.int64)

    def index(self, t: np.ndarray) -> np.ndarray:
        """The window each time of ``t`` falls in, -1 outside all windows."""
        t = np.asarray(t, np.int64)
        i = np.searchsorted(self.starts, t, side="right") - 1
        ok = (i >= 0) & (t < self.ends[np.maximum(i, 0)])
        return np.where(ok, i, -1)

    def affected(self, dev) -> np.ndarray:
        d = np.asarray(dev)
        return (d >= self.lo) & (d < self.hi)


def downgrade_of(enforcer: Any, n: int, channels: int, extra_sessions: int, seconds: int,
                 no_session: int = 0) -> Downgrade | None:
    """The enforcer's downgrade windows for a fleet of ``n`` devices on ``channels`` over ``seconds``
    (``no_session``: the last devices already without an MQTT session); None when none acts."""
    raw = list(getattr(enforcer, "downgrades", None) or []) if enforcer is not None else []
    if not raw or bool(getattr(enforcer, "dry_run", False)):
        return None
    cut = []
    for a, b in raw:
        a, b = max(0, int(a)), seconds + 1 if b is None else min(int(b), seconds + 1)
        if a < b and a < seconds:
            cut.append([a, b])
    merged: list[list[int]] = []
    for a, b in sorted(cut):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    if not merged:
        return None
    kept = n
    nd = getattr(enforcer, "downgrade_devices", None)
    nc = getattr(enforcer, "downgrade_channels", None)
    ns = getattr(enforcer, "downgrade_mqtt_sessions", None)
    if nd is not None:
        kept = min(kept, int(nd))
    if nc is not None:  # device d is on channel (d * channels) // n: the first device of channel nc
        kept = min(kept, -(-min(int(nc), channels) * n // channels))
    if ns is not None:
        kept = min(kept, int(ns) - extra_sessions)
    kept = max(kept, 0)
    hi = n - no_session
    return Downgrade([(a, b) for a, b in merged], [b > seconds for _, b in merged], kept, min(kept, hi), hi)


#: (scope, measure) -> attribute of the fleet contract (see :class:`IotLimits`)
_ACTING: dict[tuple[str, str], str] = {
    ("channel", "messages_per_minute"): "channel_messages_per_minute",
    ("channel", "traffic_bytes_per_minute"): "channel_bytes_per_minute",
    ("channel", "active_connections"): "channel_connections",
    ("device", "stored_bytes"): "device_buffer_bytes",
    ("platform", "active_sessions"): "mqtt_sessions",
    ("platform", "messages_per_minute"): "platform_messages_per_minute",
    ("platform", "traffic_bytes_per_minute"): "platform_bytes_per_minute",
}
_ACTIONS: dict[str, str] = {
    "channel_messages_per_minute": "suspend",
    "channel_bytes_per_minute": "suspend",
    "channel_connections": "suspend",
    "device_buffer_bytes": "discard_new",
    "mqtt_sessions": "discard_new_sessions",
    "platform_messages_per_minute": "suspend",
    "platform_bytes_per_minute": "suspend",
}
_NOT_MODELLED: dict[tuple[str, str], str] = {
    ("platform", "api_requests_per_minute"): "the fleet's only REST client reads the buffers at most once "
    "a minute (one request per read): far below any limit",
    ("platform", "log_retention_days"): "platform logs are not modelled; deleting old log records changes "
    "no traffic",
    ("account", "inactive_days"): "the simulated account is active every day",
    ("channel", "stored_bytes"): "messages go straight to registered device buffers; the channel's own "
    "buffer (unregistered idents) stays empty in this model",
    ("stream", "traffic_bytes_per_minute"): "streams are counted as elements; their forwarding traffic is "
    "not modelled",
    ("stream", "stored_bytes"): "streams are counted as elements; their buffers are not modelled",
    ("container", "stored_bytes"): "containers are counted as elements; their contents are not modelled",
    ("abque", "stored_bytes"): "abques are counted as elements; their contents are not modelled",
    ("cdn", "stored_bytes"): "CDNs are counted as elements; their files are not modelled",
    ("mqtt_session", "subscriptions_per_session"): "trackers only publish; the owner's application holds "
    "one subscription",
    ("mqtt_session", "stored_bytes"): "persistent session storage holds undelivered messages for "
    "subscribers; trackers publish only and the owner's application is always connected",
    ("platform", "retained_bytes"): "telemetry is published without the retain flag",
}


#: measures the fleet does not model on any scope (listed as not modelled, never silently ignored)
_NOT_MODELLED_MEASURE: dict[str, str] = {
    "messages_per_day": "a daily message quota is enforced on the mobile app's messages only "
    "(sim/world/plan_enforcer.py); the fleet does not count it",
}


def record_downgrade(book: Any, recorder: Any, result: dict[str, Any]) -> None:
    """The downgrade counts into ``book`` and ``result`` into the enforcer's report (both engines)."""
    book.count("iot_downgrade_refusals", result["refused_attempts"])
    book.count("iot_downgrade_devices", result["devices_affected"])
    fn = getattr(recorder, "downgraded", None)
    if callable(fn):
        fn(result)


def storm(t_up: np.ndarray, b: int, backoff_max_s: int, horizon: int) -> dict[str, Any]:
    """The restoration storm at ``b``: reconnections (times ``t_up``) within ``backoff_max_s`` after it,
    and the busiest minute among them (second of its start; None without any)."""
    t = np.asarray(t_up, np.int64)
    t = t[(t >= b) & (t <= b + backoff_max_s) & (t < horizon)]
    if len(t) == 0:
        return {"reconnections": 0, "storm_peak_per_minute": 0, "storm_peak_minute": None}
    m, n = np.unique(t // 60, return_counts=True)
    return {"reconnections": len(t), "storm_peak_per_minute": int(n.max()),
            "storm_peak_minute": int(m[np.argmax(n)]) * 60}  # fmt: skip


class IotPlanLimits:
    """The fleet's enforcer built from a plan's restrictions; see the module doc for each row."""

    def __init__(self, restrictions: dict[str, Any] | None = None, dry_run: bool = False) -> None:
        self.dry_run = dry_run
        self.start: datetime | None = None
        self.suspend_s = 60
        self.names: dict[str, str] = {}  # fleet attribute -> restriction name in the plan
        self.not_modelled: list[dict[str, str]] = []
        for attr in _ACTIONS:
            setattr(self, attr, None)
        self.suspend_s_of: dict[str, int] = {}
        for name, r in (restrictions or {}).items():
            key = (r.scope, r.measure)
            attr = _ACTING.get(key)
            if attr is not None and r.action == _ACTIONS[attr] and r.limit is not None:
                setattr(self, attr, float(r.limit))
                self.names[attr] = name
                if r.action == "suspend":
                    self.suspend_s_of[attr] = r.duration_s
            else:
                why = _NOT_MODELLED.get(key) or _NOT_MODELLED_MEASURE.get(r.measure) or (
                    f"action {r.action!r} on {r.scope}/{r.measure} is not one the fleet models"
                )
                self.not_modelled.append({"restriction": name, "reason": why})
        if self.channel_messages_per_minute is not None:
            self.channel_messages_per_minute = int(self.channel_messages_per_minute)
        if self.channel_connections is not None:
            self.channel_connections = int(self.channel_connections)
        if self.mqtt_sessions is not None:
            self.mqtt_sessions = int(self.mqtt_sessions)
        durations = set(self.suspend_s_of.values())
        if len(durations) > 1:
            raise ValueError(f"the fleet applies one suspension length; the plan has {sorted(durations)} s")
        if durations:
            self.suspend_s = durations.pop()
        self.suspensions: list[dict[str, Any]] = []
        self.rejected: dict[str, int] = {}
        self.rejected_connections: dict[str, int] = {}
        self.discarded: dict[str, int] = {}
        self.dropped: dict[str, int] = {}
        self.crossings: dict[str, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []
        self.downgrades: list[tuple[int, int | None]] = []
        self.downgrade_devices: int | None = None
        self.downgrade_channels: int | None = None
        self.downgrade_mqtt_sessions: int | None = None
        self.downgrade_plan: str | None = None
        self.downgrade_not_applied: list[dict[str, Any]] = []
        self.downgrade_result: dict[str, Any] | None = None
        self.restrictions = dict(restrictions or {})

    @classmethod
    def from_plan(cls, plan: Any, dry_run: bool = False) -> IotPlanLimits:
        """Limits from ``plan.restrictions`` (nothing else of the plan is read)."""
        return cls(dict(plan.restrictions or {}), dry_run=dry_run)

    def with_downgrades(self, windows_s: Any, free_plan: Any) -> IotPlanLimits:
        """Add downgrade windows (``[(a, b | None)]``, seconds from the fleet's start, ``[a, b)``, e.g.
        :meth:`sim.pricing.invoices.Timeline.windows_s`) during which ``free_plan``'s element counts apply:
        devices and channels from its ``limits`` (by the metrics' meters ``devices``/``channels``), MQTT
        sessions the lower of its ``mqtt_sessions`` limit and its ``platform / active_sessions`` row.
        Returns ``self``."""
        wins: list[tuple[int, int | None]] = []
        for w in windows_s or []:
            a, b = w
            if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or (
                b is not None and (isinstance(b, bool) or not isinstance(b, (int, np.integer)))
            ):
                raise ValueError(f"downgrade window {w!r}: give whole seconds (a, b) or (a, None)")
            if b is not None and b < a:
                raise ValueError(f"downgrade window {w!r} ends before it starts")
            wins.append((int(a), None if b is None else int(b)))
        self.downgrades = wins
        counts = free_counts(free_plan)
        self.downgrade_devices = counts["devices"]
        self.downgrade_channels = counts["channels"]
        self.downgrade_mqtt_sessions = counts["mqtt_sessions"]
        self.downgrade_plan = str(getattr(free_plan, "name", "free"))
        self.downgrade_not_applied = []
        for name, r in (getattr(free_plan, "restrictions", None) or {}).items():
            attr = _ACTING.get((r.scope, r.measure))
            if attr is None or attr == "mqtt_sessions" or r.limit is None:
                continue  # rows the fleet does not model; the session row is folded into the devices kept
            mine = getattr(self, attr)
            if mine is None or float(mine) != float(r.limit):
                self.downgrade_not_applied.append(
                    {"restriction": name, "free_limit": float(r.limit), "limit_in_force": mine}
                )
        return self

    # -- called by the fleet ----------------------------------------------------------------------------
    def name(self, attr: str) -> str:
        return self.names.get(attr, attr)

    def iso(self, t: int) -> str | int:
        return (self.start + timedelta(seconds=int(t))).isoformat() if self.start is not None else int(t)

    def crossing(self, attr: str, element: str, t: int, **info: Any) -> None:
        """First crossing of a restriction (recorded in both modes; drives :attr:`binds`)."""
        name = self.name(attr)
        if name not in self.crossings:
            self.crossings[name] = {"element": element, "t": self.iso(t), **info}

    def suspension(self, attr: str, element: str, t: int, minutes: float) -> None:
        self.suspensions.append(
            {"element": element, "limit": self.name(attr), "start": self.iso(t), "minutes": minutes}
        )
        self.notifications.append(
            {"event": "suspended", "element": element, "limit": self.name(attr), "t": self.iso(t)}
        )

    def add(self, kind: str, reason: str, n: int) -> None:
        if n:
            d = getattr(self, kind)
            d[reason] = d.get(reason, 0) + int(n)

    def downgraded(self, result: dict[str, Any]) -> None:
        """What the downgrade windows did (called once by the engine after the run): ``refused_attempts``
        are moved from ``rejected_connections['channel_suspended']`` (where the meters count every refusal
        but the session limit's) to ``rejected_connections['downgraded']``."""
        n = int(result.get("refused_attempts", 0))
        rc = self.rejected_connections
        if n:
            left = rc.get("channel_suspended", 0) - n
            if left > 0:
                rc["channel_suspended"] = left
            else:
                rc.pop("channel_suspended", None)
            self.add("rejected_connections", "downgraded", n)
        self.downgrade_result = dict(result)

    # -- results ------------------------------------------------------------------------------------------
    @property
    def binds(self) -> bool:
        """Whether any limit was (or, with ``dry_run``, would have been) crossed."""
        return bool(self.crossings)

    def _downgrade_report(self) -> dict[str, Any]:
        r = self.downgrade_result or {}
        return {
            "plan": self.downgrade_plan,
            "free_limits": {"devices": self.downgrade_devices, "channels": self.downgrade_channels,
                            "mqtt_sessions": self.downgrade_mqtt_sessions},  # fmt: skip
            "acted": bool(r) and not self.dry_run,
            "devices_kept": r.get("devices_kept"),
            "devices_affected": r.get("devices_affected", 0),
            "refused_attempts": r.get("refused_attempts", 0),
            "windows": [
                {**w, **{k: None if w[k] is None else self.iso(w[k]) for k in ("start", "end", "storm_peak_minute")}}
                for w in r.get("windows", [])
            ],
            "not_applied": list(self.downgrade_not_applied),
            "not_applied_reason": "only the free plan's element counts (devices, channels, MQTT sessions) "
            "act during a downgrade; these free rows differ from the limits in force, which stay",
        }

    @property
    def report(self) -> dict[str, Any]:
        rep = self._report()
        if self.downgrade_plan is not None:
            rep["downgrades"] = self._downgrade_report()
        return rep

    def _report(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "binds": self.binds,
            "limits": {self.name(a): getattr(self, a) for a in _ACTIONS if getattr(self, a) is not None},
            "first_crossings": dict(self.crossings),
            "suspensions": list(self.suspensions),
            "rejected": dict(self.rejected),
            "rejected_connections": dict(self.rejected_connections),
            "discarded": dict(self.discarded),
            "dropped": dict(self.dropped),
            "notifications": list(self.notifications),
            "not_modelled": list(self.not_modelled),
        }


def free_counts(plan: Any) -> dict[str, int | None]:
    """A free plan's element counts: ``devices``, ``channels`` and ``mqtt_sessions`` from its hard
    ``limits`` (metrics read by their meter, absolute ``max`` only), sessions also from its
    ``platform / active_sessions`` restriction row (the lower one); None where the plan sets none."""
    out: dict[str, int | None] = {"devices": None, "channels": None, "mqtt_sessions": None}
    metrics = dict(getattr(plan, "metrics", None) or {})
    for lim in getattr(plan, "limits", None) or []:
        m = metrics.get(lim.metric)
        meter = getattr(m, "meter", lim.metric)
        if meter in out and lim.max is not None:
            v = int(lim.max)
            out[meter] = v if out[meter] is None else min(out[meter], v)
    for r in (getattr(plan, "restrictions", None) or {}).values():
        if (r.scope, r.measure) == ("platform", "active_sessions") and r.limit is not None:
            v = int(r.limit)
            cur = out["mqtt_sessions"]
            out["mqtt_sessions"] = v if cur is None else min(cur, v)
    return out
