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

``dry_run=True``: the fleet runs unrestricted and this object records only the first crossing of each
restriction; :attr:`binds` says whether any limit would have acted (re-run the plan enforced then).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


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
                why = _NOT_MODELLED.get(key) or (
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

    @classmethod
    def from_plan(cls, plan: Any, dry_run: bool = False) -> IotPlanLimits:
        """Limits from ``plan.restrictions`` (nothing else of the plan is read)."""
        return cls(dict(plan.restrictions or {}), dry_run=dry_run)

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

    # -- results ------------------------------------------------------------------------------------------
    @property
    def binds(self) -> bool:
        """Whether any limit was (or, with ``dry_run``, would have been) crossed."""
        return bool(self.crossings)

    @property
    def report(self) -> dict[str, Any]:
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
