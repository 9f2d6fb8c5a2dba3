"""What an IoT fleet engine hands to the meters: a finished run as plain data.

Why a module of its own: the engines (the fast one, :mod:`sim.world.iot.fleet`, and the event-level
reference, :mod:`sim.world.events.iot`) decide what happens; :mod:`sim.world.iot.meters` turns it into
the :class:`~sim.meters.MeterBook` entries and usage-file meters. Both sides import this record and
nothing of each other, so the dependency runs one way (engine -> outcome <- meters) and both engines
write exactly the same bytes categories, series, levels and count names.

Every per-minute array has one value per minute of the period (int64 unless said otherwise); event
lists hold the minute of each event. The counts follow the conservation laws of the fleet::

    sent = delivered + dropped + rejected + discarded + pending_on_device_at_end
    delivered = read + expired + in_buffer_at_end

where ``delivered`` counts messages kept in a device buffer (``kept``) and ``dropped`` is lost on a
dead link (QoS 0, ``dropped_link``) plus lost to a full device queue (``dropped_queue``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.protocol import Protocol
from sim.world.iot.config import IotFleetConfig


@dataclass
class FleetOutcome:
    """A finished fleet run: wire events, platform levels and message fates, engine-neutral."""

    cfg: IotFleetConfig
    proto: Protocol
    minutes: int
    # -- wire: telemetry --------------------------------------------------------------------------------
    sizes: np.ndarray  #: payload sizes (S,), the columns of the histograms
    wire_hist: np.ndarray  #: (minutes, S) telemetry PUBLISHes that crossed the wire, by payload size
    pings: np.ndarray  #: PINGREQ/PINGRESP cycles per minute
    # -- wire: connections (minute of each event) -------------------------------------------------------
    connect_full: np.ndarray  #: established connections with a full TLS handshake
    connect_resumed: np.ndarray  #: established connections with a resumed handshake
    refused_full: np.ndarray  #: refused attempts (suspended channel, no MQTT session), full handshake
    refused_resumed: np.ndarray  #: refused attempts with a resumed handshake
    closes: np.ndarray  #: server closes at a suspension (graceful MQTT/TLS/TCP teardown)
    # -- platform levels ------------------------------------------------------------------------------
    connections: np.ndarray  #: server-side connected devices per minute
    kept: np.ndarray  #: messages stored in a device buffer per minute (the ``iot_messages`` series)
    stored: np.ndarray  #: buffer payload bytes at the end of each minute (float)
    # -- message fates (counts) -----------------------------------------------------------------------
    sent: int
    read: int
    expired: int
    in_buffer: int
    dropped_link: int  #: QoS 0 sent into a dead link before the device noticed
    dropped_queue: int  #: lost to a full device queue (``device_queue_max``)
    rejected: int  #: QoS 0 rejected at a channel suspension (lost)
    retransmitted: int  #: QoS 1 rejected at a suspension, re-sent after reconnecting
    discarded: int  #: new messages discarded by a full device buffer
    pending: int  #: waiting on a device at the end of the period
    # -- limits -----------------------------------------------------------------------------------------
    channel_suspensions: int
    platform_suspensions: int
    refused_devices: int  #: devices without an MQTT session (the session limit)
    session_refusals: int  #: refused attempts of those devices (part of refused_*)
    recorder: Any = None  #: the enforcer recording the report (``crossing``/``add``), or None
    acting: bool = False  #: limits acted on the world (not a dry run)
    #: (minutes, 7) ``wire_hist`` priced per column of :data:`sim.world.iot.meters.MESSAGE_CATEGORIES`, if the
    #: engine computed it already (else the meters do)
    wire_bytes: np.ndarray | None = None
    # -- device connections as the platform holds them (``connection_seconds`` ...) ---------------------------
    #: each server-side connection's start and end, int seconds from the period start, paired: from the period
    #: start (0: up before the period) or its CONNECT to the server's close (suspension, MQTT server timeout of
    #: a dead link, take-over by the device's reconnection) or the period end. None: not reported.
    conn_start: np.ndarray | None = None
    conn_end: np.ndarray | None = None
