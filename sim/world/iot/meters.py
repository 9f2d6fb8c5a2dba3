"""What a finished IoT fleet run reports: wire bytes, levels, counts and usage-file meters.

Why this module only reads a :class:`~sim.world.iot.outcome.FleetOutcome`: an engine (the fast
:mod:`sim.world.iot.fleet` or the event-level :mod:`sim.world.events.iot`) decides what is sent,
received, rejected and when connections go down and up, and hands over the result as plain data;
this module turns it into the :class:`~sim.meters.MeterBook` entries (bytes by category from exact
protocol sizes, the ``iot_connections`` and ``iot_stored_bytes`` levels, the ``iot_messages`` and
``iot_pings`` series, the ``iot_*`` counts) and the element meters a usage file bills, and passes the
losses on to the enforcer's report. It knows no engine, so both engines write the same keys and
neither depends on the other's internals.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.meters import MeterBook
from sim.world.iot.outcome import FleetOutcome

I64 = np.int64

#: message-table column -> (direction, byte category) of :meth:`sim.protocol.Protocol.messages` ("in")
MESSAGE_CATEGORIES: dict[str, tuple[str, str]] = {
    "payload": ("in", "payload"), "app_protocol": ("in", "app_protocol"), "tls_record": ("in", "tls_record"),
    "tcpip": ("in", "tcpip"), "ack_tcpip": ("out", "tcpip"), "ack_app": ("out", "app_protocol"),
    "ack_tls_record": ("out", "tls_record"),
}  # fmt: skip


def write_meters(out: FleetOutcome, book: MeterBook) -> dict:
    """Write the run's traffic into ``book`` and return the usage-file meters (see ``simulate_fleet``)."""
    cfg, M, proto = out.cfg, out.minutes, out.proto
    table = proto.messages(out.sizes, "in")
    minutes = np.arange(M)
    for key, (d, c) in MESSAGE_CATEGORIES.items():
        book.add_bytes(d, c, minutes, out.wire_hist @ table[key].astype(float))
    add_event_bytes(book, proto.keepalive(), minutes, out.pings)
    for flag, when in ((False, out.connect_full), (True, out.connect_resumed)):
        add_event_bytes(book, proto.connect(flag), when, 1)
    for flag, when in ((False, out.refused_full), (True, out.refused_resumed)):
        add_event_bytes(book, proto.connect(flag), when, 1)
    add_event_bytes(book, proto.disconnect(True), out.closes, 1)

    book.set_level("iot_connections", out.connections)
    book.set_level("iot_stored_bytes", out.stored)
    book.add_series("iot_messages", minutes, out.kept)
    book.add_series("iot_pings", minutes, out.pings)

    n_refused = len(out.refused_full) + len(out.refused_resumed)
    E = out.recorder
    if E is not None:
        E.add("discarded", "device_buffer_full", out.discarded)
        E.add("dropped", "device_queue_full", out.dropped_queue)
        E.add("rejected_connections", "mqtt_session_refused", out.session_refusals)
        E.add("rejected_connections", "channel_suspended", n_refused - out.session_refusals)
        if out.acting:
            E.retransmitted = out.retransmitted
    n_full, n_res = len(out.connect_full), len(out.connect_resumed)
    counts = {
        "iot_messages_sent": out.sent,
        "iot_delivered": int(out.kept.sum()),
        "iot_expired": out.expired,
        "iot_read": out.read,
        "iot_in_buffer_end": out.in_buffer,
        "iot_dropped": out.dropped_link + out.dropped_queue,
        "iot_dropped_device_queue_full": out.dropped_queue,
        "iot_rejected": out.rejected,
        "iot_retransmitted": out.retransmitted,
        "iot_discarded": out.discarded,
        "iot_discarded_device_buffer_full": out.discarded,
        "iot_pending_on_device_end": out.pending,
        "iot_keepalives": int(out.pings.sum()),
        "connections": n_full + n_res,
        "full_handshakes": n_full + len(out.refused_full),
        "resumed_handshakes": n_res + len(out.refused_resumed),
        "rejected_connections": n_refused,
        "channel_suspensions": out.channel_suspensions,
        "platform_suspensions": out.platform_suspensions,
        "mqtt_sessions_refused_devices": out.refused_devices,
        "mqtt_session_refusals": out.session_refusals,
    }
    for k, v in counts.items():
        book.count(k, int(v))

    days = book.days  # calendar days of the period in its time zone (one value each)
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
    meters["stored_bytes"] = {"interval": "1min", "values": [int(v) for v in out.stored]}
    meters["peak_ccu"] = int(out.connections.max()) if M else 0
    return meters


def add_event_bytes(book: MeterBook, b, minute, n) -> None:
    """Add ``n`` (scalar or per-minute array) events of traffic ``b`` (a :class:`sim.protocol.Bytes`)."""
    minute = np.atleast_1d(np.asarray(minute, dtype=I64))
    if minute.size == 0:
        return
    n = np.broadcast_to(np.asarray(n, dtype=float), minute.shape)
    for d, side in (("out", b.out), ("in", b.inb)):
        for c, v in side.items():
            book.add_bytes(d, c, minute, n * v)
