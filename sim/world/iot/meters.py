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
    minutes = np.arange(M)
    wire = out.wire_bytes if out.wire_bytes is not None else exact_matvec(out.wire_hist, message_table(proto, out.sizes))
    for j, (d, c) in enumerate(MESSAGE_CATEGORIES.values()):
        book.add_bytes_series(d, c, wire[:, j])
    add_event_bytes(book, proto.keepalive(), minutes, out.pings)
    for flag, when in ((False, out.connect_full), (True, out.connect_resumed)):
        add_event_bytes(book, proto.connect(flag), when, 1)
    for flag, when in ((False, out.refused_full), (True, out.refused_resumed)):
        add_event_bytes(book, proto.connect(flag), when, 1)
    add_event_bytes(book, proto.disconnect(True), out.closes, 1)

    book.set_level("iot_connections", out.connections)
    book.set_level("iot_stored_bytes", out.stored)
    book.add_series_clock("iot_messages", out.kept)
    book.add_series_clock("iot_pings", out.pings)

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
    meters["stored_bytes"] = {"interval": "1min", "values": np.asarray(out.stored).astype(I64).tolist()}  # int(v)
    meters["peak_ccu"] = int(out.connections.max()) if M else 0
    return meters


def add_event_bytes(book: MeterBook, b, minute, n) -> None:
    """Add ``n`` (scalar or per-minute array) events of traffic ``b`` (a :class:`sim.protocol.Bytes`)."""
    minute = np.atleast_1d(np.asarray(minute, dtype=I64))
    if minute.size == 0:
        return
    n = np.broadcast_to(np.asarray(n, dtype=float), minute.shape)
    book.add_bytes_many(minute, [(d, c, n * v) for d, side in (("out", b.out), ("in", b.inb)) for c, v in side.items()])


def message_table(proto, sizes: np.ndarray) -> np.ndarray:
    """(S, 7) wire bytes of one telemetry PUBLISH of each payload size, columns as :data:`MESSAGE_CATEGORIES`."""
    table = proto.messages(sizes, "in")
    return np.stack([table[key] for key in MESSAGE_CATEGORIES], axis=1)


def exact_matvec(hist: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``hist @ table.astype(float)`` for a count histogram ``hist`` (minutes, S) and integer byte sizes
    ``table`` (S,) or (S, k) (all columns at once).

    Bit for bit the float product, column by column: with non-negative integer counts and sizes whose
    sums stay below 2**53, every product and partial sum of the float product is exact, so it equals the
    exact integer sum computed here (checked; else the float product itself). The integer sums cost one
    pass over the histogram: a column that is constant over runs of sizes (protocol overheads change at a
    few sizes only) is summed run by run, the others (the payload) by an integer product.
    """
    t = np.asarray(table)
    cols = t if t.ndim == 2 else t[:, None]
    fast = (hist.ndim == 2 and hist.dtype.kind in "iu" and cols.dtype.kind in "iu" and hist.size > 0
            and cols.size > 0 and hist.shape[1] == cols.shape[0])
    if fast:
        hmin, hmax, tmin = int(hist.min()), int(hist.max()), int(cols.min())
        # no int64 overflow, no sum at 2**53 (non-negative terms: no partial sum exceeds the total)
        fast = hmin >= 0 and tmin >= 0 and float(hmax) * float(cols.sum(axis=0).max()) < 2.0**52
    if not fast:
        res = np.stack([hist @ cols[:, j].astype(np.float64) for j in range(cols.shape[1])], axis=1)
        return res if t.ndim == 2 else res[:, 0]
    h = hist.astype(np.int64, copy=False)
    c = cols.astype(np.int64, copy=False)
    res = np.empty((h.shape[0], c.shape[1]), dtype=np.float64)
    steps = np.diff(c, axis=0) != 0
    runs = steps.sum(axis=0) + 1  # runs of equal values per column
    piecewise = np.flatnonzero(runs * 8 <= c.shape[0])
    for j in np.flatnonzero(runs * 8 > c.shape[0]):
        res[:, j] = h @ c[:, j]
    if piecewise.size:
        starts = np.r_[0, np.flatnonzero(steps[:, piecewise].any(axis=1)) + 1]
        res[:, piecewise] = np.add.reduceat(h, starts, axis=1) @ c[starts][:, piecewise]
    return res if t.ndim == 2 else res[:, 0]
