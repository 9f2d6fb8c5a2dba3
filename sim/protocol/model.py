"""What one client connection puts on the wire, byte for byte, by meter category.

The world asks this module what a connect, a disconnect, a keep-alive cycle or a batch of messages
costs, and gets bytes per direction (``"out"`` = server -> client, ``"in"`` = client -> server) and per
category of :data:`sim.meters.CATEGORIES`. The split matters because the messaging seed bills only the
*session layer* outbound (payload, application protocol, TLS) and absorbs TCP/IP (``tcpip``), and
because TLS handshakes are 84-95 % server -> client (the certificate chain).

Numbers come from ``shared/reference/protocol-facts.md`` (cited below as "PF §x"): TLS handshake bytes
are the OpenSSL 3.0 measurements [M-TLS] (they are not derivable from first principles), everything
else is RFC arithmetic. TCP/IP accounting:

* every segment carries ``ip + 20 + 12`` header bytes (52 B IPv4 with timestamps, 72 B IPv6);
* TLS handshake flights: the receiver sends ``max(1, segments // 2)`` pure ACKs per flight. This is the
  rule that reproduces all [M-TLS] wire totals of PF §1.3/§1.4 (e.g. 3,479 B for TLS 1.3 ECDSA);
* application request/response exchanges (login, keep-alive, MQTT PUBLISH/PUBACK): the receiver ACKs
  every second segment (RFC 1122 §4.2.3.2, rounded up); the last ACK of a request rides on the response,
  only the final response of an exchange gets a pure ACK (PF §3.1: 76 + 76 + 52 = 204 B per MQTT ping).
  One-way messages therefore cost ``ceil(segments / 2)`` pure ACKs in the opposite direction: an upper
  bound, since a reply sent within the delayed-ACK timer would carry the ACK (PF §6 ``tcp_ack_policy``).

Everything per message is vectorised with numpy: :meth:`Protocol.messages` prices 10^7 messages in a
few array operations; per-connection costs are computed once per :class:`Protocol`.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from sim.protocol import mqtt, tls, websocket
from sim.protocol.bytes import _OTHER, Bytes, _check_direction
from sim.protocol.config import ProtocolConfig
from sim.protocol.tls import Flight
from sim.protocol.tls import ceil_div as _ceil_div


class Protocol:
    """Wire cost of connections, keep-alives and messages under one :class:`ProtocolConfig`.

    Per-connection costs are computed once here and returned as shared immutable :class:`Bytes`.
    """

    def __init__(self, cfg: ProtocolConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else ProtocolConfig()
        c = self.cfg
        ip = 20 if c.ip_version == 4 else 40  # RFC 791 / RFC 8200 §3
        ts = 12 if c.tcp_timestamps else 0  # RFC 7323 §3: 10-B option + 2 NOP
        #: IP + TCP header bytes of every segment: 52 B IPv4, 72 B IPv6 with timestamps (PF §2).
        self.segment_header = ip + 20 + ts  # RFC 9293 §3.1: 20-B TCP header
        # PF §2: SYN options MSS 4 + SACK-perm 2 + TS 10 + NOP 1 + WS 3 = 20 B -> 60 B; without TS 10 B padded to 12.
        self.syn_bytes = ip + 20 + (20 if c.tcp_timestamps else 12)
        self._connect = {
            r: self.tcp_handshake() + self.tls_handshake(r) + self.login() for r in (False, True)
        }
        self._disconnect = {True: self._teardown(), False: Bytes()}
        self._keepalive = self._keepalive_cycle()

    # -- TLS record layer --------------------------------------------------------------------------------------
    def tls_record_overhead(self) -> int:
        """Bytes TLS adds to each record (:func:`sim.protocol.tls.record_overhead_min`)."""
        return tls.record_overhead_min(self.cfg)

    def record_overhead(self, n: np.ndarray | int) -> np.ndarray:
        """TLS bytes added to ``n`` bytes of application data written at once (split into 2^14-B records)."""
        return tls.record_overhead(self.cfg, n)

    def _rec(self, n: int) -> int:
        return int(self.record_overhead(n))

    # -- handshakes -------------------------------------------------------------------------------------------
    def _handshake_flights(self, resumed: bool) -> list[Flight]:
        return tls.handshake_flights(self.cfg, resumed)

    def handshake_bytes(self, resumed: bool) -> tuple[int, int]:
        """(client->server, server->client) TLS handshake bytes (records incl. headers); (0, 0) when TLS is off.

        ``resumed`` without session tickets falls back to a full handshake.
        """
        flights = self._handshake_flights(resumed)
        return (
            sum(p["tls_handshake"] for d, p in flights if d == "in"),
            sum(p["tls_handshake"] for d, p in flights if d == "out"),
        )

    def tcp_handshake(self) -> Bytes:
        """SYN (in), SYN-ACK (out), ACK (in): 60 + 60 + 52 = 172 B IPv4, 232 B IPv6 (PF §2)."""
        h = self.segment_header
        return Bytes(out={"tcpip": self.syn_bytes}, inb={"tcpip": self.syn_bytes + h})

    def tls_handshake(self, resumed: bool) -> Bytes:
        """TLS handshake records plus their segments and per-flight ACKs (reproduces the [M-TLS] wire totals)."""
        return self._wire(self._handshake_flights(resumed), acks="per_flight",
                          weights=tls.handshake_weights(self.cfg, resumed))

    def _app_flight(self, direction: str, app_bytes: int) -> Flight:
        return direction, {"app_protocol": app_bytes, "tls_record": self._rec(app_bytes)}

    def login(self) -> Bytes:
        """Application login after TLS: chat login request/reply; MQTT CONNECT/CONNACK (+SUBSCRIBE/SUBACK);
        WebSocket upgrade request/response followed by the chat login in WebSocket frames."""
        c = self.cfg
        if mqtt.is_mqtt(c):
            packets = mqtt.login_packets(c)
        elif c.app == "websocket":
            packets = websocket.login_packets(c)
        else:
            packets = [("in", c.login_bytes_c2s), ("out", c.login_bytes_s2c)]
        flights = [self._app_flight(d, n) for d, n in packets]
        return self._wire(flights, acks="exchange")

    def connect(self, resumed: bool) -> Bytes:
        """TCP 3-way handshake + TLS handshake (full or resumed) + application login, all IP headers included."""
        return self._connect[bool(resumed)]

    def _teardown(self) -> Bytes:
        c = self.cfg
        flights: list[Flight] = []
        if mqtt.is_mqtt(c):
            flights.append(self._app_flight("in", mqtt.DISCONNECT))
        elif c.app == "websocket":  # Close frame, echoed by the server (RFC 6455 §5.5.1)
            close_in, close_out = websocket.close_frames()
            flights += [self._app_flight("in", close_in), self._app_flight("out", close_out)]
        if c.tls != "off":  # RFC 8446 §6.1: each party sends close_notify before closing its write side
            cn = tls.close_notify(c)
            flights += [("in", {"tls_handshake": cn}), ("out", {"tls_handshake": cn})]
        fin_ack = self.segment_header * 2  # FIN + ACK each way: 4 x 52 = 208 B (PF §2, RFC 9293 §3.6)
        return self._wire(flights, acks="none") + Bytes(out={"tcpip": fin_ack}, inb={"tcpip": fin_ack})

    def disconnect(self, graceful: bool) -> Bytes:
        """Graceful: app goodbye (MQTT DISCONNECT / WebSocket Close), close_notify both ways (``tls_handshake``),
        FIN/ACK both ways. A socket that dies silently (NAT timeout, frozen app) sends nothing (PF §2)."""
        return self._disconnect[bool(graceful)]

    # -- keep-alive ----------------------------------------------------------------------------------------------
    def _keepalive_cycle(self) -> Bytes:
        c = self.cfg
        if mqtt.is_mqtt(c):
            ping, pong = mqtt.PING, mqtt.PING
        elif c.app == "websocket":  # Ping from the client (masked, 6-B header), Pong echoes the data
            ping, pong = websocket.ping_pong(c)
        else:
            ping, pong = c.heartbeat_bytes, c.heartbeat_bytes
        flights = [
            ("in", {"keepalive": ping + self._rec(ping)}),
            ("out", {"keepalive": pong + self._rec(pong)}),
        ]
        return self._wire(flights, acks="exchange")

    def keepalive(self) -> Bytes:
        """One heartbeat cycle: ping (client) + pong (server) with TLS overhead in ``keepalive``, then the
        client's ACK of the pong. MQTT over TLS 1.3/IPv4: 76 + 76 + 52 = 204 B (PF §3.1)."""
        return self._keepalive

    # -- segments and ACKs ---------------------------------------------------------------------------------------
    def _wire(self, flights: list[Flight], acks: Literal["per_flight", "exchange", "none"],
              weights: list[float] | None = None) -> Bytes:
        """Session bytes of ``flights`` plus their IP/TCP headers and pure ACKs (see module docstring).

        ``weights``: the probability each flight happens (a HelloRetryRequest's two flights: its share); a flight's
        bytes are then that expectation, and its segments and ACKs are those of the whole flight times it."""
        side: dict[str, dict[str, float]] = {"out": {}, "in": {}}
        h = self.segment_header
        for i, (d, parts) in enumerate(flights):
            w = 1.0 if weights is None else float(weights[i])
            for k, v in parts.items():
                side[d][k] = side[d].get(k, 0) + v
            whole = sum(parts.values()) / w if w else 0.0
            segs = int(_ceil_div(math.ceil(round(whole, 6)), self.cfg.mss))
            if acks == "per_flight":
                pure = max(1, segs // 2) if segs else 0
            elif acks == "exchange":
                pure = (segs + 1) // 2 - (0 if i == len(flights) - 1 else 1)
            else:
                pure = 0
            side[d]["tcpip"] = side[d].get("tcpip", 0) + w * segs * h
            side[_OTHER[d]]["tcpip"] = side[_OTHER[d]].get("tcpip", 0) + w * max(pure, 0) * h
        return Bytes(out=side["out"], inb=side["in"])

    # -- messages --------------------------------------------------------------------------------------------------
    def app_overhead(self, payload: np.ndarray, direction: str, kind: str = "message") -> np.ndarray:
        """Application-protocol bytes around each payload: chat header; + WebSocket frame header (with
        permessage-deflate, the compressed header's share, by message ``kind``); or the MQTT PUBLISH header (fixed
        header 1 + Remaining Length 1-4, topic 2+len, packet id 2 if QoS 1, property length 1 in MQTT 5; PF §3.1)."""
        c = self.cfg
        if mqtt.is_mqtt(c):
            return mqtt.publish_overhead(c, payload)
        if c.app == "websocket":
            return websocket.frame_overhead(c, payload, direction, kind)
        return np.full_like(payload, c.app_header_bytes)

    def messages(self, payload: np.ndarray, direction: str, kind: str = "message") -> dict[str, np.ndarray]:
        """Wire bytes of independent messages with the given payload sizes flowing in ``direction``.

        Keys (int64 arrays, shape of ``payload``): in ``direction`` ``payload``, ``app_protocol``, ``tls_record``
        and ``tcpip`` (data segments, plus for MQTT QoS 1 the sender's ACK of the PUBACK); in the opposite
        direction ``ack_tcpip`` (pure ACKs, ``ceil(segments/2)``; with QoS 1 the PUBACK carries the last ACK and
        its own segment header is counted here), ``ack_app`` (the 4-B PUBACK) and ``ack_tls_record`` (its
        record overhead). ``ack_app`` / ``ack_tls_record`` are zero unless MQTT QoS 1. Each message is one
        application write: ``ceil(n / 2^14)`` records, ``ceil(wire / mss)`` segments. ``kind`` ("message",
        "media", "receipt"): over WebSocket with permessage-deflate, the compression ratio the payload gets (the
        returned ``payload`` is then the compressed size on the wire).
        """
        _check_direction(direction)
        payload = np.asarray(payload)
        if payload.dtype.kind not in "iu":
            raise TypeError(f"payload sizes must be an integer array, got dtype {payload.dtype}")
        payload = payload.astype(np.int64, copy=False)
        if payload.size and payload.min() < 0:
            raise ValueError("payload sizes must be >= 0")
        h = self.segment_header
        app = self.app_overhead(payload, direction, kind)
        if self.cfg.app == "websocket":
            payload = websocket.payload_on_wire(self.cfg, payload, kind)
        msg = payload + app
        tls = self.record_overhead(msg)
        msg += tls
        segs = _ceil_div(msg, self.cfg.mss)
        del msg
        acks = (segs + 1) // 2
        if mqtt.is_mqtt(self.cfg) and self.cfg.mqtt_qos == 1:
            puback = mqtt.puback_bytes(self.cfg)
            puback_tls = self._rec(puback)
            puback_segs = int(_ceil_div(puback + puback_tls, self.cfg.mss))
            tcpip = (segs + 1) * h  # + the publisher's pure ACK of the PUBACK
            ack_tcpip = (acks - 1 + puback_segs) * h
            ack_app = np.full_like(payload, puback)
            ack_tls = np.full_like(payload, puback_tls)
        else:
            tcpip = segs * h
            ack_tcpip = acks * h
            ack_app = np.zeros_like(payload)
            ack_tls = np.zeros_like(payload)
        return {
            "payload": payload,
            "app_protocol": app,
            "tls_record": tls,
            "tcpip": tcpip,
            "ack_tcpip": ack_tcpip,
            "ack_app": ack_app,
            "ack_tls_record": ack_tls,
        }

    def message(self, payload: int, direction: str, kind: str = "message") -> Bytes:
        """One message as :class:`Bytes` (built on :meth:`messages`)."""
        m = {k: int(v[0]) for k, v in self.messages(np.array([payload], dtype=np.int64), direction, kind).items()}
        other = _OTHER[direction]
        fwd = {k: m[k] for k in ("payload", "app_protocol", "tls_record", "tcpip")}
        back = {"app_protocol": m["ack_app"], "tls_record": m["ack_tls_record"], "tcpip": m["ack_tcpip"]}
        return Bytes(out=fwd, inb=back) if other == "in" else Bytes(out=back, inb=fwd)

