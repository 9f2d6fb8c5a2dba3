"""What a finished IoT fleet run reports: wire bytes, levels, counts and usage-file meters.

Why this module only reads a :class:`~sim.world.iot.outcome.FleetOutcome`: an engine (the fast
:mod:`sim.world.iot.fleet` or the event-level :mod:`sim.world.events.iot`) decides what is sent,
received, rejected and when connections go down and up, and hands over the result as plain data;
this module turns it into the :class:`~sim.meters.MeterBook` entries (bytes by category from exact
protocol sizes, the ``iot_connections`` and ``iot_stored_bytes`` levels, the ``iot_messages`` and
``iot_pings`` series, the ``iot_*`` counts) and the element meters a usage file bills, and passes the
losses on to the enforcer's report. It knows no engine, so both engines write the same keys and
neither depends on the other's internals.

Meters for platforms that bill messages, connection time and sessions (AWS IoT Core, EMQX ...), from the
outcome alone (so both engines write the same ones for the same outcome):

* ``messages_in`` (1min): telemetry PUBLISHes that crossed the wire (``wire_hist`` over all sizes: delivered
  and those a suspension rejected); ``message_sizes_in`` (1d distribution): their payload sizes by calendar
  day; ``messages_out`` (1min): messages the platform sends the devices, none in this model (PUBACKs and
  PINGRESPs are protocol), so zeros. No ``message_sizes_out`` is written (a chat app's on the same run is kept).
* ``connection_seconds`` (1d distribution), ``connection_minutes`` and ``connection_hours`` (1d series): the
  server-side connections (``conn_start``/``conn_end``) with the definitions of
  :mod:`sim.world.connections`: whole seconds, attributed to the day a connection ends, split at billing
  month starts (``MeterBook.month_starts``, when the book has them); a connection up before the period
  (start 0) is an item only for a positive part.
* ``mqtt_session_hours`` (1d series): hours MQTT sessions existed on the broker each day: persistent sessions
  (``devices`` with ``persistent_sessions``, plus ``extra_mqtt_sessions``, what ``mqtt_sessions`` counts)
  for the whole day (24 h, or the part of a shorter day), other device sessions while connected (their
  connected time within the day).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.meters import ItemCounter, MeterBook, numbers, split_at
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
    return platform_meters(out, book, meters, daily["mqtt_sessions"])


class FleetMeters(dict):
    """The fleet's usage-file meters, and what a sampled run needs to scale ``mqtt_session_hours``
    (sim/sampling.py): ``day_hours`` (length of each day) and ``device_session_hours`` (the non-persistent
    device sessions' part, per day)."""

    day_hours: np.ndarray | None = None
    device_session_hours: np.ndarray | None = None


def platform_meters(out: FleetOutcome, book: MeterBook, meters: dict, persistent: int) -> FleetMeters:
    """``meters`` with the message, connection-time and session meters of the module doc added."""
    from datetime import timedelta

    from sim.pricing.period import Period

    M, T = out.minutes, out.minutes * 60
    p = Period.create(book.start, book.start + timedelta(minutes=M), book.tz)
    day_s = np.array([round((d - p.start).total_seconds()) for d in p.day_starts], dtype=I64)
    bounds = np.append(day_s, T)
    res = FleetMeters(meters)
    hist = np.asarray(out.wire_hist)
    res["messages_in"] = {"interval": "1min", "values": hist.sum(axis=1).astype(I64).tolist()}
    res["messages_out"] = {"interval": "1min", "values": [0] * M}
    sizes = ItemCounter(day_s.size)
    if M and hist.size:
        per_day = np.add.reduceat(hist, (day_s + 59) // 60, axis=0)  # (days, S): days start on whole minutes
        at, k = np.nonzero(per_day)
        sizes.add_counts(at, np.asarray(out.sizes, dtype=I64)[k], per_day[at, k])
    res["message_sizes_in"] = sizes.to_meter()

    start = np.zeros(0, I64) if out.conn_start is None else np.asarray(out.conn_start, dtype=I64)
    end = np.zeros(0, I64) if out.conn_end is None else np.minimum(np.asarray(out.conn_end, dtype=I64), T)
    items = ItemCounter(day_s.size)
    minutes, secs = np.zeros(day_s.size), np.zeros(day_s.size)
    s, e = start[(end > start) | (start > 0)], end[(end > start) | (start > 0)]
    months = [] if book.month_starts is None else [m * 60 for m in book.month_starts[1:-1] if 0 < m * 60 < T]
    s, e = split_at(s, e, months)  # a connection across a billing month's start: each part an item
    if s.size:
        dur = e - s
        day = np.searchsorted(day_s, np.maximum(e - 1, s), side="right") - 1
        items.add(day, dur)
        minutes = np.bincount(day, weights=((dur + 59) // 60).astype(float), minlength=day_s.size)
        secs = np.bincount(day, weights=dur.astype(float), minlength=day_s.size)
    res["connection_seconds"] = items.to_meter()
    res["connection_minutes"] = {"interval": "1d", "values": numbers(minutes)}
    res["connection_hours"] = {"interval": "1d", "values": numbers(secs / 3600.0)}

    day_hours = np.diff(bounds) / 3600.0
    device = np.zeros(day_s.size)
    if not out.cfg.persistent_sessions and start.size:
        device = np.diff(_connected_until(start, end, bounds)) / 3600.0
    res["mqtt_session_hours"] = {"interval": "1d", "values": numbers(persistent * day_hours + device)}
    res.day_hours, res.device_session_hours = day_hours, device
    return res


def _connected_until(start: np.ndarray, end: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Connected seconds of the connections ``[start, end)`` before each time ``t``: sum of min(end, t) - min(start, t)."""
    def sum_min(x: np.ndarray) -> np.ndarray:
        xs = np.sort(x)
        k = np.searchsorted(xs, t, side="left")
        below = np.concatenate(([0], np.cumsum(xs)))[k]
        return below + t * (xs.size - k)

    return sum_min(end) - sum_min(start)


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
