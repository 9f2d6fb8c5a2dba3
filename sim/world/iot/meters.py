"""What a finished IoT fleet run reports: wire bytes, levels, counts and usage-file meters.

The fleet engine (:mod:`sim.world.iot.fleet`) decides per minute what is sent, received, rejected and when
connections go down and up; this module turns that into the :class:`~sim.meters.MeterBook` entries
(bytes by category from exact protocol sizes, the ``iot_connections`` and ``iot_stored_bytes`` levels,
the ``iot_*`` counts with their conservation) and the element meters a usage file bills, and passes
the losses on to the enforcer's report. The platform's buffers it uses are in
:mod:`sim.world.iot.platform`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sim.meters import MeterBook
from sim.world.iot.platform import _buffer, device_buffer_discards, platform_reads

if TYPE_CHECKING:
    from sim.world.iot.fleet import _Fleet

I64 = np.int64


def write_meters(fleet: _Fleet, book: MeterBook, rng: np.random.Generator) -> dict:
    """Write the run's traffic into ``book`` and return the usage-file meters (see ``simulate_fleet``).

    ``rng`` draws each delivered or rejected message's payload size (the fleet's ``payload`` stream).
    """
    cfg, M, T = fleet.cfg, fleet.minutes, fleet.seconds
    o = fleet.out = fleet.out.full()
    lo, hi = cfg.payload_bytes
    sizes = np.arange(lo, hi + 1, dtype=I64)
    probs = np.full(len(sizes), 1.0 / len(sizes))
    failed = fleet.rejected + fleet.requeued
    delivered = fleet.arrivals - failed - fleet.unsent
    h_del = rng.multinomial(delivered, probs)  # (M, S): messages of each size per minute
    h_rej = rng.multinomial(failed, probs)
    table = fleet.proto.messages(sizes, "in")
    hist = h_del + h_rej
    cat = {"payload": ("in", "payload"), "app_protocol": ("in", "app_protocol"),
           "tls_record": ("in", "tls_record"), "tcpip": ("in", "tcpip"), "ack_tcpip": ("out", "tcpip"),
           "ack_app": ("out", "app_protocol"), "ack_tls_record": ("out", "tls_record")}  # fmt: skip
    minutes = np.arange(M)
    for key, (d, c) in cat.items():
        book.add_bytes(d, c, minutes, hist @ table[key].astype(float))
    _add_event_bytes(book, fleet.proto.keepalive(), minutes, fleet.pings)

    # connections, handshakes, rejected attempts
    act = o.active
    conn = act & (o.t_up < T)
    ticket_ok = fleet.proto.cfg.session_tickets and cfg.tls != "off"
    resumed = (
        conn
        & ticket_ok
        & (o.t_up - o.prev_up <= cfg.ticket_lifetime_s)
        & (o.u_resume < cfg.tls_resumption_probability)
    )
    for flag in (False, True):
        sel = conn & (resumed == flag)
        _add_event_bytes(book, fleet.proto.connect(flag), o.t_up[sel] // 60, 1)
    rr, rt = o.rejected()
    rr, rt = rr[rt < T], rt[rt < T]
    r_res = (
        ticket_ok
        & (rt - o.prev_up[rr] <= cfg.ticket_lifetime_s)
        & (o.u_resume[rr] < cfg.tls_resumption_probability)
    )
    for flag in (False, True):
        _add_event_bytes(book, fleet.proto.connect(flag), rt[r_res == flag] // 60, 1)
    closes = act & (o.kind == 0) & (o.t_down < T)
    _add_event_bytes(book, fleet.proto.disconnect(True), o.t_down[closes] // 60, 1)

    # server-side connection level: a device is off from the server's close to its reconnection
    srv_close = np.where(
        o.kind != 1,
        o.t_down,
        np.minimum(o.t_down + int(np.ceil(cfg.server_timeout_factor * cfg.keepalive_s)), o.t_up),
    )
    diff = np.zeros(M + 1, I64)
    np.add.at(diff, np.minimum(srv_close[act] // 60, M), 1)
    np.add.at(diff, np.minimum(np.minimum(o.t_up[act], T) // 60, M), -1)
    level = fleet.n - np.cumsum(diff)[:M]
    book.set_level("iot_connections", level)

    # buffers: TTL k minutes, reads at minutes R, 2R, ... (start of minute, after expiry), except
    # reads rejected by a platform suspension; full device buffers discard new messages
    is_read = platform_reads(fleet)
    discarded = device_buffer_discards(fleet, is_read, failed)
    payload_min = h_del @ sizes.astype(float)
    kept = delivered - discarded
    if discarded.any():  # discarded messages carry the minute's mean payload
        payload_min = payload_min * np.divide(kept, delivered, out=np.zeros(M), where=delivered > 0)
    stored, fate = _buffer(kept, payload_min, cfg.buffer_ttl_min, is_read)
    book.set_level("iot_stored_bytes", stored)
    book.add_series("iot_messages", minutes, kept)
    book.add_series("iot_pings", minutes, fleet.pings)

    still_down = np.flatnonzero(act & (o.t_up >= T))
    pending, lost = fleet._waiting(still_down) if len(still_down) else (np.zeros(0, I64), np.zeros(0, I64))
    pending, q_end = int(pending.sum()), int(lost.sum())
    q_lost = int(fleet.qdrop.sum()) + q_end
    rt_chan = o.chan[rr]
    refused = int((rt_chan == cfg.channels).sum())
    E = fleet.recorder
    if E is not None:
        E.add("discarded", "device_buffer_full", int(discarded.sum()))
        E.add("dropped", "device_queue_full", q_lost)
        E.add("rejected_connections", "mqtt_session_refused", refused)
        E.add("rejected_connections", "channel_suspended", len(rt) - refused)
        if fleet.act:
            E.retransmitted = int(fleet.requeued.sum())
    counts = {
        "iot_messages_sent": int(fleet.sent.sum()),
        "iot_delivered": int(kept.sum()),
        "iot_expired": fate["expired"],
        "iot_read": fate["read"],
        "iot_in_buffer_end": fate["in_buffer"],
        "iot_dropped": int(fleet.dropped.sum()) + q_lost,
        "iot_dropped_device_queue_full": q_lost,
        "iot_rejected": int(fleet.rejected.sum()),
        "iot_retransmitted": int(fleet.requeued.sum()),
        "iot_discarded": int(discarded.sum()),
        "iot_discarded_device_buffer_full": int(discarded.sum()),
        "iot_pending_on_device_end": pending,
        "iot_keepalives": int(fleet.pings.sum()),
        "connections": int(conn.sum()),
        "full_handshakes": int((conn & ~resumed).sum() + (~r_res).sum()),
        "resumed_handshakes": int(resumed.sum() + r_res.sum()),
        "rejected_connections": int(len(rt)),
        "channel_suspensions": len(fleet.suspensions),
        "platform_suspensions": fleet.platform_suspensions,
        "mqtt_sessions_refused_devices": len(fleet.no_session),
        "mqtt_session_refusals": refused,
    }
    for k, v in counts.items():
        book.count(k, v)

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
