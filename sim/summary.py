"""The run summary ``sim run`` prints: what was simulated, in words, fitted to the scenario's kind.

* chat app lines (MAU, peak CCU, chat messages, TURN) only when users of the app connected (MAU > 0);
* fleet lines (devices, connected devices, telemetry, the inbound traffic telemetry is made of) only when the
  scenario has an IoT fleet;
* the overhead share of billed outbound bytes only when billed outbound bytes carry payload; a run whose
  outbound bytes are all protocol (an IoT fleet's acknowledgements and keep-alives) says so instead of
  printing "100 %".

:func:`headroom_lines` is the free-plan headroom table ``sim run`` prints after the bills.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.comparison import mau_of, meter_peak
from sim.meters import BILLED_OUTBOUND

if TYPE_CHECKING:
    from sim.simulate import RunResult

GB = 1e9


def _peak(value) -> int:
    return int(meter_peak(value))


def _frame_max(frame, column: str) -> int | None:
    if frame is None or column not in getattr(frame, "columns", ()):
        return None
    return int(frame[column].max()) if len(frame) else 0


def has_fleet(counts: dict) -> bool:
    """Whether the run had an IoT fleet (its counts are present)."""
    return "iot_messages_sent" in counts


def summary_lines(result: RunResult) -> list[str]:
    """Human summary, by the scenario's kind: chat app lines when app users connected, fleet lines for an IoT
    fleet; connections, outbound GB by category, billed outbound and (when it means something) its overhead share."""
    u = result.usage or {}
    meters, counts, bd = u.get("meters", {}), u.get("counts", {}), u.get("breakdown", {})
    mau = mau_of(u)
    fleet = has_fleet(counts)
    out = bd.get("outbound", {})
    lines = [f"scenario {result.scenario.get('name')}  seed {result.seed}  wall {result.wall_s:.1f} s"]
    if mau:
        # peak_ccu adds the fleet's connections to the app's; the app's own peak is in the frame (ccu_max)
        app_peak = _frame_max(result.frame, "ccu_max") if fleet else None
        peak = _peak(meters.get("peak_ccu")) if app_peak is None else app_peak
        lines += [
            f"MAU {int(mau):,}   peak CCU {peak:,} ({peak / mau:.1%} of MAU)",
            f"chat messages originated {counts.get('messages_originated', 0):,}  copies waiting at the start "
            f"{counts.get('stored_at_start', 0):,}  sent {counts.get('messages_sent', 0):,}  delivered {counts.get('delivered', 0):,}  stored at end "
            f"{counts.get('stored', 0):,}  expired {counts.get('expired', 0):,}  dropped {counts.get('dropped', 0):,}",
            *_behaviour_lines(u),
        ]
    elif not fleet:
        lines.append("MAU 0: no user of the app connected in the period")
    lines += sampling_lines(u)
    if fleet:
        lines += _iot_lines(counts, meters, result.frame)
    if counts.get("connections") or counts.get("rejected_connections"):
        refused = counts.get("rejected_connections", 0)
        lines.append(f"connections {counts.get('connections', 0):,}  full TLS {counts.get('full_handshakes', 0):,}  "
                     f"resumed {counts.get('resumed_handshakes', 0):,}"
                     + (f"  refused attempts {refused:,} (each paid a handshake)" if refused else ""))
    if any(out.values()):
        lines.append("outbound GB by category: " + ", ".join(
            f"{c}{' (not billed)' if c == 'tcpip' else ''} {v / GB:.3f}" for c, v in out.items() if v))
    lines += _billed_lines(out, app=bool(mau))
    if fleet:
        lines += _inbound_lines(bd.get("inbound", {}), app=bool(mau))
    return lines


def _duration(seconds: float) -> str:
    if seconds != seconds:  # nan: nothing delivered
        return "-"
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def _behaviour_lines(u: dict) -> list[str]:
    """How the app's users behaved: connections per daily active user, wake-ups, delivery latency."""
    from sim.world.mobile.messaging import latency_quantiles
    from sim.world.timeline import CAUSES

    counts = u.get("counts", {})
    dau = sum((u.get("activity", {}).get("dau") or {}).get("values") or [0])
    if not dau:
        return []
    q = latency_quantiles(counts, (0.5, 0.9))
    app_connections = sum(counts.get(f"connections_{c}", 0) for c in CAUSES)  # an IoT fleet's are not the app's
    return [f"per daily active user and day: {app_connections / dau:.1f} connections, "
            f"{counts.get('push_wakeups', 0) / dau:.1f} push wake-ups; delivery latency p50 {_duration(q[0.5])}, "
            f"p90 {_duration(q[0.9])}"]


def _billed_lines(out: dict, app: bool) -> list[str]:
    """Billed outbound bytes and their overhead share (only when they carry payload); TURN for an app."""
    billed = sum(out.get(c, 0) for c in BILLED_OUTBOUND)
    payload = out.get("payload", 0)
    turn = out.get("turn_media", 0)
    parts = []
    if billed and payload:
        parts.append(f"billed outbound {billed / GB:.3f} GB, overhead share (non-payload) {1 - payload / billed:.1%}")
    elif billed:
        parts.append(f"billed outbound {billed / GB:.3f} GB, no payload among it (protocol, TLS and keep-alives only)")
    if app or turn:
        parts.append(f"TURN {turn / GB:.3f} GB (its own meter)")
    return ["; ".join(parts)] if parts else []


def _inbound_lines(inbound: dict, app: bool) -> list[str]:
    """What the fleet's telemetry costs on the wire: inbound bytes at the session layer and their overhead share."""
    session = sum(inbound.get(c, 0) for c in BILLED_OUTBOUND)
    if not session:
        return []
    payload = inbound.get("payload", 0)
    who = "devices and app clients" if app else "devices"
    return [f"inbound ({who} -> platform) {session / GB:.3f} GB at the session layer: payload {payload / GB:.3f} GB, "
            f"overhead share {1 - payload / session:.1%}"]


def _iot_lines(counts: dict, meters: dict | None = None, frame=None) -> list[str]:
    """The tracker fleet's lines of the summary, when the scenario has one: its size, then its telemetry."""
    if not has_fleet(counts):
        return []
    lines = []
    devices = _peak((meters or {}).get("devices"))
    connected = _frame_max(frame, "iot_connections")
    if devices or connected is not None:
        lines.append(f"IoT fleet: {devices:,} devices" + ("" if connected is None else
                                                          f", at most {connected:,} connected at once"))
    keys = ("iot_messages_sent", "iot_delivered", "iot_read", "iot_expired", "iot_in_buffer_end", "iot_rejected",
            "iot_discarded", "iot_dropped", "iot_pending_on_device_end")
    lines.append("telemetry: " + "  ".join(f"{k.removeprefix('iot_').replace('_', ' ')} {counts.get(k, 0):,}"
                                           for k in keys))
    return lines


def enforcement_lines(enf: dict, most: int = 3) -> list[str]:
    """What a plan did to the run, in words: suspensions, losses by reason, notifications, throttling."""
    lines = []
    sus = enf.get("suspensions", [])
    if sus:
        shown = ", ".join(f"{s['element']} ({s['limit']}) at {s['start']} for {s['minutes']:g} min" for s in sus[:most])
        lines.append(f"suspensions {len(sus):,}: {shown}" + (" ..." if len(sus) > most else ""))
    for section in ("rejected", "discarded", "dropped", "refused_connections"):
        if enf.get(section):
            lines.append(f"{section.replace('_', ' ')}: " + ", ".join(f"{k} {v:,}" for k, v in enf[section].items()))
    for n in enf.get("notifications", [])[:6]:
        lines.append(f"notification: {n['meter']} at {n['threshold']:.0%} of its {n['of']} on {n['at'] or 'unknown time'}")
    if enf.get("throttled_from"):
        lines.append(f"throttled from {enf['throttled_from']}")
    days = enf.get("quota_days") or (enf.get("details", {}).get("mobile", {}).get("quota_days"))
    if days:
        shown = ", ".join(f"{d['day']} at {d['reached_at'] or '?'} ({d['rejected']:,} refused)" for d in days[:most])
        lines.append(f"daily quota reached on {len(days):,} UTC days: {shown}" + (" ..." if len(days) > most else ""))
    return lines


def headroom_lines(h) -> list[str]:
    """A free plan's headroom (:class:`sim.pricing.headroom.Headroom`) as ``sim run`` prints it: a heading line
    in words, then one row per limit: quantity, limit, share used, exceeded, the growth factor that exceeds it."""
    from tabulate import tabulate

    from sim.pricing.bill import quantity_text
    from sim.pricing.headroom import factor_text

    body = []
    for lim in h.limits:
        quantity = f"{quantity_text(lim.quantity, lim.unit)} {lim.unit}" + (
            f" (at least {lim.derived_from.split(' = ')[0]})" if lim.derived_from else "")
        limit = f"{quantity_text(lim.limit, lim.unit)} {lim.unit}"
        if lim.of_metric is not None:
            limit = f"{lim.fraction} x {lim.of_metric} = {limit}"
        used = "-" if lim.usage_fraction == float("inf") else f"{lim.usage_fraction:.1%}"
        if lim.of_metric is not None:
            grows = "already (ratio)" if lim.exceeded else "never (ratio)"
        elif lim.growth_factor == 0:
            grows = "already (any use)"
        else:
            grows = f"x {factor_text(lim.growth_factor)}" if lim.growth_factor != float("inf") else "never (unused)"
        if lim.binds_first:
            grows += "  <- binds first"
        body.append([f"{lim.metric} ({lim.description})", quantity, limit, used,
                     "EXCEEDED" if lim.exceeded else "no", grows])
    table = tabulate(body, headers=["limit", "quantity", "limit value", "used", "exceeded", "exceeded at growth"],
                     tablefmt="github", disable_numparse=True,
                     colalign=["left", "right", "right", "right", "left", "left"])
    return [f"{'free-plan' if h.free else 'package-limit'} headroom, {h.plan}: {h.text()}", *table.splitlines()]


def sampling_lines(usage: dict) -> list[str]:
    """A sampled run says so, with the intervals of what it estimated (sim/sampling.py)."""
    out = []
    for side, what in (("mobile", "users"), ("iot", "devices")):
        doc = (usage.get("sampling") or {}).get(side)
        if not doc:
            continue
        parts = [f"sampled {doc['sample']:,} of {doc['population']:,} {what} (x {doc['ratio']:.4g})"]
        for key, label in (("mau", "MAU"), ("peak_ccu", "peak CCU")):
            e = doc.get(key)
            if e:
                parts.append(f"{label} {e['value']:,.0f} ({doc['confidence']:.0%} interval {e['ci_low']:,.0f} to "
                             f"{e['ci_high']:,.0f})")
        out.append("  ".join(parts))
    return out
