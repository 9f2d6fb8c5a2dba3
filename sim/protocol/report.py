"""What the wire model charges, laid out for a person holding it against their own packet capture (``sim protocol``).

Per connection event (connect full / resumed, keep-alive cycle, graceful and silent disconnect) and per message
kind (a text message, a media message, a receipt, uploaded and delivered), the bytes in each direction by meter
category, the session-layer total (what platforms bill: everything but ``tcpip``) and the wire total; and the TLS
handshake's flights. Plain data first (:func:`protocol_figures`), a table from it (:func:`protocol_table`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.meters import CATEGORIES
from sim.protocol.bytes import Bytes
from sim.protocol.config import ProtocolConfig
from sim.protocol.model import Protocol

#: the connection events :func:`protocol_figures` reports, and how each is computed
EVENTS = {
    "connect (full handshake)": lambda p: p.connect(False),
    "connect (resumed)": lambda p: p.connect(True),
    "keep-alive cycle": lambda p: p.keepalive(),
    "disconnect (graceful)": lambda p: p.disconnect(True),
    "disconnect (silent)": lambda p: p.disconnect(False),
}


def _side(b: Bytes, direction: str) -> dict[str, Any]:
    cats = {c: _num(b.get(direction, c)) for c in CATEGORIES if b.get(direction, c)}
    return {"bytes": cats, "session": _num(b.total(direction, billed_only=True)), "wire": _num(b.total(direction))}


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else round(float(x), 3)


def protocol_figures(cfg: ProtocolConfig, messages: dict[str, int] | None = None) -> dict[str, Any]:
    """Bytes per connection event, per handshake flight and per message (``messages``: kind -> payload bytes).

    Directions: ``out`` server -> client, ``in`` client -> server. A message ``uploaded`` goes client -> server
    (and its acknowledgements back), ``delivered`` server -> client."""
    p = Protocol(cfg)
    events = {name: {d: _side(fn(p), d) for d in ("out", "in")} for name, fn in EVENTS.items()}
    flights = {kind: [{"direction": d, "bytes": _num(sum(parts.values()))}
                      for d, parts in p._handshake_flights(resumed)] for kind, resumed in
               (("full", False), ("resumed", True))}
    handshake = {kind: dict(zip(("in", "out"), (_num(x) for x in p.handshake_bytes(resumed)), strict=True))
                 for kind, resumed in (("full", False), ("resumed", True))}
    per_message: dict[str, Any] = {}
    for kind, size in (messages or {}).items():
        per_message[kind] = {"payload": int(size)}
        for way, direction in (("uploaded", "in"), ("delivered", "out")):
            b = p.message(int(size), direction)
            if kind == "receipt":  # a receipt's payload is application protocol (as the world meters it)
                b = _as_protocol(b, direction)
            per_message[kind][way] = {d: _side(b, d) for d in ("out", "in")}
    return {"protocol": cfg.model_dump(mode="json"), "connection": events, "tls_handshake": handshake,
            "tls_flights": flights, "messages": per_message}


def _as_protocol(b: Bytes, direction: str) -> Bytes:
    side = dict(b.side(direction))
    side["app_protocol"] = side.get("app_protocol", 0.0) + side.pop("payload", 0.0)
    return Bytes(out=side, inb=b.inb) if direction == "out" else Bytes(out=b.out, inb=side)


def protocol_table(fig: dict[str, Any]) -> str:
    """The figures as one table: a row per event (or message and way) and direction, a column per category."""
    from tabulate import tabulate

    cats = [c for c in CATEGORIES if _used(fig, c)]
    rows = []
    for name, sides in fig["connection"].items():
        rows += _rows(name, sides, cats)
    for kind, m in fig["messages"].items():
        for way in ("uploaded", "delivered"):
            rows += _rows(f"{kind} ({m['payload']} B) {way}", m[way], cats)
    headers = ["event", "dir", *cats, "session", "wire"]
    table = tabulate(rows, headers=headers, tablefmt="github", intfmt=",", floatfmt=",.1f",
                     colalign=["left", "left", *["right"] * (len(cats) + 2)])
    hs = fig["tls_handshake"]
    lines = [table, "", "dir: out = server -> client, in = client -> server; session = all but tcpip (what platforms "
             "bill); wire = with TCP/IP headers and ACKs."]
    if any(hs["full"].values()):
        for kind in ("full", "resumed"):
            flights = " | ".join(f"{f['direction']} {f['bytes']:,}" for f in fig["tls_flights"][kind])
            lines.append(f"TLS handshake {kind}: client -> server {hs[kind]['in']:,} B, server -> client "
                         f"{hs[kind]['out']:,} B (records incl. headers; flights: {flights})")
    return "\n".join(lines)


def _used(fig: dict[str, Any], cat: str) -> bool:
    sides = [s for ev in fig["connection"].values() for s in ev.values()]
    sides += [s for m in fig["messages"].values() for way in ("uploaded", "delivered") for s in m[way].values()]
    return any(s["bytes"].get(cat) for s in sides)


def _rows(name: str, sides: dict[str, Any], cats: list[str]) -> list[list]:
    return [[name if d == "out" else "", d, *[sides[d]["bytes"].get(c, 0) for c in cats], sides[d]["session"],
             sides[d]["wire"]] for d in ("out", "in")]


def default_messages(scenario) -> dict[str, int]:
    """The message kinds of a scenario at their typical payloads: text (the mean), media, receipt."""
    m = scenario.messaging
    out = {"text": int(round(m.size.mean_bytes)), "media": int(round(m.media_message_bytes))}
    if m.delivery_receipts or m.read_receipts:
        out["receipt"] = int(round(m.receipt_bytes))
    return out


def iot_messages(iot) -> dict[str, int]:
    """A fleet's telemetry at the middle of its payload range."""
    lo, hi = iot.payload_bytes
    return {"telemetry": int(np.round((lo + hi) / 2))}
