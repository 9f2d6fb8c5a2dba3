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

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import numpy as np
import pydantic
from pydantic import Field

from sim.meters import CATEGORIES, DIRECTIONS

_OTHER = {"out": "in", "in": "out"}
#: Largest MQTT Remaining Length (4-byte variable integer). MQTT 3.1.1 §2.2.3, MQTT 5.0 §1.5.5.
MQTT_MAX_REMAINING_LENGTH = 268_435_455


def _freeze(side: Mapping[str, float]) -> Mapping[str, float]:
    unknown = set(side) - set(CATEGORIES)
    if unknown:
        raise ValueError(f"unknown byte categories {sorted(unknown)}; known: {CATEGORIES}")
    # Zero entries are dropped so that equal traffic compares equal however it was built.
    return MappingProxyType({k: float(v) for k, v in side.items() if v})


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")


@dataclass(frozen=True)
class Bytes:
    """Bytes one event puts on the wire: per direction ('out' server->client, 'in' client->server), per category.

    Immutable (read-only mappings, zero entries dropped); categories are those of :mod:`sim.meters`.
    """

    out: Mapping[str, float] = field(default_factory=dict)
    inb: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", _freeze(self.out))
        object.__setattr__(self, "inb", _freeze(self.inb))

    @classmethod
    def of(cls, direction: str, category: str, n: float) -> Bytes:
        """``n`` bytes of one category in one direction."""
        _check_direction(direction)
        return cls(out={category: n}) if direction == "out" else cls(inb={category: n})

    def side(self, direction: str) -> Mapping[str, float]:
        _check_direction(direction)
        return self.out if direction == "out" else self.inb

    def __add__(self, other: Bytes) -> Bytes:
        if not isinstance(other, Bytes):
            return NotImplemented

        def merge(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
            return {k: a.get(k, 0.0) + b.get(k, 0.0) for k in a.keys() | b.keys()}

        return Bytes(merge(self.out, other.out), merge(self.inb, other.inb))

    def __radd__(self, other: object) -> Bytes:
        if other == 0:  # lets sum() start from its integer 0
            return self
        return NotImplemented

    def scaled(self, k: float) -> Bytes:
        """These bytes ``k`` times (e.g. ``k`` identical keep-alive cycles)."""
        return Bytes({c: v * k for c, v in self.out.items()}, {c: v * k for c, v in self.inb.items()})

    def total(self, direction: str, billed_only: bool = False) -> float:
        """All bytes in ``direction``; ``billed_only`` leaves out ``tcpip`` (absorbed, never billed)."""
        return float(sum(v for c, v in self.side(direction).items() if not (billed_only and c == "tcpip")))

    def get(self, direction: str, category: str) -> float:
        return float(self.side(direction).get(category, 0.0))


class ProtocolConfig(pydantic.BaseModel, extra="forbid", frozen=True):
    """Wire-level settings of one client population. Every default cites its source (PF = protocol-facts.md)."""

    tls: Literal["off", "1.2", "1.3"] = Field(
        "1.3", description="TLS version. PF §6 tls_version: TLS 1.3 dominant on mobile stacks; \"off\" = plain TCP "
        "(messaging seed: TLS can be disabled). 1.2 and 1.3 may be written as numbers (--set protocol.tls=1.2).",
    )

    @pydantic.field_validator("tls", mode="before")
    @classmethod
    def _version_as_text(cls, v: object) -> object:
        """YAML and ``--set`` read 1.2 as a number; the version is a name, so take the number's text."""
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
    cert_chain: Literal["ecdsa", "rsa"] = Field(
        "ecdsa", description="Server certificate chain. PF §6 cert_chain: ECDSA P-256 leaf + 1 intermediate ([M-TLS] "
        "§1.3 \"normal\" rows); alt RSA-2048.",
    )
    chain_includes_root: bool = Field(
        False, description="The server also sends the root certificate. PF §1.3 \"leaf + int + root (misconfig)\" rows.",
    )
    session_tickets: bool = Field(
        True, description="Session tickets (resumption). PF §1.2/§1.4: OpenSSL issues tickets by default (2 x 255-B "
        "records in TLS 1.3, 1 x 191 B in TLS 1.2).",
    )
    tls12_cipher: Literal["gcm", "chacha", "cbc_sha1", "cbc_sha256"] = Field(
        "gcm", description="TLS 1.2 cipher suite family. PF §1.1: record overhead GCM 29 B (RFC 5288 §3), ChaCha20 21 B "
        "(RFC 7905 §2), CBC 42-69 B (RFC 5246 §6.2.3.2). PF §1.3: the TLS 1.2 handshakes were measured with "
        "ECDHE-*-AES128-GCM-SHA256, hence \"gcm\".",
    )
    ip_version: Literal[4, 6] = Field(
        4, description="IP version. PF §6 ip_version: IPv4 (RFC 791, 20-B header); IPv6 (RFC 8200 §3) has a 40-B header.",
    )
    tcp_timestamps: bool = Field(
        True, description="TCP timestamp option. PF §2: RFC 7323 §3, 12 B on every segment; on by default on "
        "Linux/Android/iOS/macOS.",
    )
    mss: int = Field(
        1448, ge=64, description="TCP maximum segment size, B. PF §2/§6 tcp_mss: 1,448 B usable on a 1,500-B MTU with "
        "IPv4 + timestamps (use 1,428 for IPv6, 1,378 cellular).",
    )
    tls_max_record_plaintext: int = Field(
        16384, ge=64, le=16384, description="Largest plaintext per TLS record, B. PF §1.1: 2^14 B (RFC 8446 §5.1); RFC "
        "8449 record_size_limit can lower it.",
    )
    pq_hybrid_keyshare: bool = Field(
        False, description="Post-quantum hybrid key share (TLS 1.3 only). PF §1.3 modifiers / §6 pq_hybrid_keyshare: "
        "X25519MLKEM768 shares add +1,184 B C->S, +1,088 B S->C.",
    )
    app: Literal["mesibo", "mqtt311", "mqtt5", "websocket"] = Field(
        "mesibo", description="Application protocol on the connection: \"mesibo\" (proprietary binary chat framing, "
        "PF §3.4), \"mqtt311\" / \"mqtt5\" (PF §3.1), \"websocket\" (chat frames in WebSocket frames, PF §3.2).",
    )
    app_header_bytes: int = Field(
        40, ge=0, description="Chat application header per message, B. PF §3.4 \"Application framing ~20-60 B header per "
        "message\" (unverified); PF §6 chat_protocol_transport: 40 B. Applies to the chat protocols (\"mesibo\", "
        "\"websocket\"); MQTT's header is computed from the spec instead.",
    )
    login_bytes_c2s: int = Field(
        256, ge=0, description="Chat login request, B: 40-B app header + 190-B access token (the bearer token of PF §3.3's "
        "[M-HTTP] mobile-API example) + 26 B of app/device ids and version (assumption, unverified).",
    )
    login_bytes_s2c: int = Field(
        64, ge=0, description="Chat login reply, B: 40-B app header + 24 B (status, user id, server time, session id) "
        "(assumption).",
    )
    heartbeat_bytes: int = Field(
        8, ge=1, le=125, description="Chat heartbeat payload each way, B: a binary control frame (type 1 + flags 1 + "
        "length 2 + sequence 4 = 8 B, assumption); same order as MQTT PINGREQ 2 B (PF §3.1) and XMPP whitespace ping "
        "1 B (RFC 6120 §4.6.1). Over \"websocket\" it is the Ping frame's application data, echoed by the Pong (RFC "
        "6455 §5.5.2-5.5.3).",
    )
    mqtt_client_id_len: int = Field(
        24, ge=0, le=65535, description="MQTT CONNECT client-id length, B. PF §3.1 \"CONNECT measured (24-B client-id, "
        "13-B user, 32-B password, no will)\" [M-MQTT]; the client-id length prefix is always present (MQTT 3.1.1 "
        "§3.1.3.1).",
    )
    mqtt_username_len: int = Field(
        13, ge=0, le=65535, description="MQTT CONNECT user name length, B; 0 = field absent. PF §3.1 [M-MQTT] (13 B).",
    )
    mqtt_password_len: int = Field(
        32, ge=0, le=65535, description="MQTT CONNECT password length, B; 0 = field absent. PF §3.1 [M-MQTT] (32 B).",
    )
    mqtt_topic_len: int = Field(
        23, ge=0, le=65535, description="MQTT topic length, B (PUBLISH topic and SUBSCRIBE filter). PF §3.1 \"PUBLISH "
        "measured (23-B topic, 100-B payload)\" [M-MQTT].",
    )
    mqtt_qos: Literal[0, 1] = Field(
        1, description="MQTT QoS. PF §3.1: QoS 1 adds a 2-B packet id and a 4-B PUBACK (MQTT 3.1.1 §3.3-3.4; MQTT 5.0 "
        "§3.4.2.1).",
    )
    mqtt_subscriptions: int = Field(
        1, ge=0, description="Topic filters subscribed after CONNACK (one, as in the [M-MQTT] SUBSCRIBE 30/31 B and "
        "SUBACK 5/6 B rows of PF §3.1).",
    )
    ws_upgrade_request_bytes: int = Field(
        335, ge=0, description="WebSocket upgrade request, B. PF §3.2/§6 ws_handshake: typical upgrade with subprotocol, "
        "Origin, UA, permessage-deflate (RFC 6455 §1.2).",
    )
    ws_upgrade_response_bytes: int = Field(
        159, ge=0, description="WebSocket upgrade response (101 Switching Protocols), B. PF §3.2/§6 ws_handshake.",
    )

    @pydantic.model_validator(mode="after")
    def _pq_needs_tls13(self) -> ProtocolConfig:
        if self.pq_hybrid_keyshare and self.tls != "1.3":
            raise ValueError("pq_hybrid_keyshare needs tls='1.3' (hybrid key shares are TLS 1.3 only)")
        return self


# -- TLS handshake flights (TLS bytes incl. record headers), [M-TLS] -----------------------------------------
# Server -> client bytes of a full handshake with leaf + intermediate (+ root), tickets included: PF §1.3 table.
_FULL_S2C: dict[tuple[str, str, bool], int] = {
    ("1.3", "ecdsa", False): 2509,
    ("1.3", "rsa", False): 3648,
    ("1.3", "ecdsa", True): 3077,
    ("1.3", "rsa", True): 5064,
    ("1.2", "ecdsa", False): 2082,
    ("1.2", "rsa", False): 3221,
    ("1.2", "ecdsa", True): 2649,
    ("1.2", "rsa", True): 4635,
}
_FULL_C2S = {"1.3": 330, "1.2": 254}  # PF §1.3: client -> server, independent of the chain.
_T13_CLIENT_FIN = 80  # PF §1.4: CCS 6 + Finished record 74 (SHA-384 suite) after the server flight.
_T13_TICKETS = 510  # PF §1.3: 2 NewSessionTickets x 255-B record, sent after the client Finished.
_T13_RESUMED = (521, 241, 80, 255)  # PF §1.4: ClientHello+PSK, SH+EE+Fin, CCS+Fin, 1 new ticket (601 / 496).
_T12_CLIENT_FIN = 93  # PF §1.2: ClientKeyExchange 37+5 (X25519) + CCS 6 + Finished record 45.
_T12_SERVER_FIN = 51  # PF §1.4: CCS 6 + Finished record 45 (16 B + 29 B GCM overhead).
_T12_TICKET = 191  # PF §1.2: RFC 5077 NewSessionTicket 186 B + 5-B header (2,979 + 191 + 51 = 3,221).
_T12_RESUMED = (517, 141, 51)  # PF §1.4: ClientHello with ticket, SH+CCS+Fin, CCS+Fin (568 / 141).
_PQ_EXTRA = (1184, 1088)  # PF §1.3 modifiers: X25519MLKEM768 shares 1,216 / 1,120 B instead of 32 B.
_FINISHED_LEN = 16  # RFC 5246 §7.4.9: TLS 1.2 Finished (12-B verify_data + 4-B header), encrypted.
_GCM_OVERHEAD = 29  # RFC 5288 §3: what the measured TLS 1.2 Finished records carried.
_CLOSE_NOTIFY = 2  # RFC 8446 §6.1: alert = level + description.
_MQTT_PING = 2  # PINGREQ / PINGRESP: MQTT 3.1.1 §3.12-3.13, MQTT 5.0 same.
_MQTT_DISCONNECT = 2  # MQTT 3.1.1 §3.14; MQTT 5.0 §3.14.2.1 (normal disconnect, Remaining Length 0).
_MQTT_PUBACK = 4  # MQTT 3.1.1 §3.4; MQTT 5.0 §3.4.2.1 (success, no properties).
_WS_CLOSE_STATUS = 2  # RFC 6455 §5.5.1: Close frame body = 2-B status code.

Flight = tuple[str, dict[str, int]]  # (direction, session-layer bytes by category)


def mqtt_remaining_length_size(rl: np.ndarray | int) -> np.ndarray:
    """Bytes of the MQTT variable-length Remaining Length: 1 <= 127, 2 <= 16,383, 3 <= 2,097,151, else 4.

    MQTT 3.1.1 §2.2.3, MQTT 5.0 §1.5.5; larger values cannot be encoded.
    """
    rl = np.asarray(rl, dtype=np.int64)
    if rl.size and (rl.min() < 0 or rl.max() > MQTT_MAX_REMAINING_LENGTH):
        raise ValueError(f"MQTT remaining length must be in 0..{MQTT_MAX_REMAINING_LENGTH}")
    return 1 + (rl > 127).astype(np.int64) + (rl > 16_383) + (rl > 2_097_151)


def ws_frame_header_size(n: np.ndarray | int, client_to_server: bool) -> np.ndarray:
    """RFC 6455 §5.2 frame header for an ``n``-byte payload: 2 / 4 / 10 B, +4 masking key from the client."""
    n = np.asarray(n, dtype=np.int64)
    return 2 + 2 * (n >= 126) + 6 * (n >= 65_536) + (4 if client_to_server else 0)


def _ceil_div(a: np.ndarray | int, b: int) -> np.ndarray:
    return -(-np.asarray(a, dtype=np.int64) // b)


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
        # RFC 5246 §6.2.3.2: HMAC-SHA1 20 B, HMAC-SHA256 32 B; None for AEAD suites and TLS 1.3.
        self._cbc_mac: int | None = (
            {"cbc_sha1": 20, "cbc_sha256": 32}.get(c.tls12_cipher) if c.tls == "1.2" else None
        )
        self._connect = {
            r: self.tcp_handshake() + self.tls_handshake(r) + self.login() for r in (False, True)
        }
        self._disconnect = {True: self._teardown(), False: Bytes()}
        self._keepalive = self._keepalive_cycle()

    # -- TLS record layer --------------------------------------------------------------------------------------
    def tls_record_overhead(self) -> int:
        """Bytes TLS adds to each record: 22 TLS 1.3 (RFC 8446 §5.2), 29 GCM, 21 ChaCha20 (PF §1.1), 0 when off.

        For the CBC suites this is the minimum (IV 16 + MAC + 1 padding byte + header 5 = 42 / 54 B); their
        block padding adds 0-15 B more per record, which :meth:`record_overhead` computes exactly.
        """
        if self.cfg.tls == "off":
            return 0
        if self.cfg.tls == "1.3":
            return 22  # PF §1.1: 5 header + 1 inner content type + 16 tag (RFC 8446 §5.2)
        if self._cbc_mac is not None:
            return 5 + 16 + self._cbc_mac + 1  # PF §1.1: RFC 5246 §6.2.3.2
        return {"gcm": 29, "chacha": 21}[self.cfg.tls12_cipher]  # PF §1.1: RFC 5288 §3, RFC 7905 §2

    def record_overhead(self, n: np.ndarray | int) -> np.ndarray:
        """TLS bytes added to ``n`` bytes of application data written at once (split into 2^14-B records)."""
        n = np.asarray(n, dtype=np.int64)
        size = self.cfg.tls_max_record_plaintext
        if self.cfg.tls == "off":
            return np.zeros_like(n)
        if self._cbc_mac is None:
            return _ceil_div(n, size) * self.tls_record_overhead()
        full, rem = np.divmod(n, size)

        def cbc(p: np.ndarray) -> np.ndarray:  # header 5 + IV 16 + pad_to_16(p + MAC + 1) - p
            return 5 + 16 + _ceil_div(p + self._cbc_mac + 1, 16) * 16 - p

        return full * cbc(np.int64(size)) + np.where(rem > 0, cbc(rem), 0)

    def _rec(self, n: int) -> int:
        return int(self.record_overhead(n))

    # -- handshakes -------------------------------------------------------------------------------------------
    def _handshake_flights(self, resumed: bool) -> list[Flight]:
        c = self.cfg
        if c.tls == "off":
            return []
        resumed = resumed and c.session_tickets  # without tickets there is nothing to resume with
        if c.tls == "1.3":
            if resumed:
                sizes = list(_T13_RESUMED)
            else:
                s2c = _FULL_S2C[("1.3", c.cert_chain, c.chain_includes_root)]
                sizes = [_FULL_C2S["1.3"] - _T13_CLIENT_FIN, s2c - _T13_TICKETS, _T13_CLIENT_FIN]
                if c.session_tickets:
                    sizes.append(_T13_TICKETS)
            if c.pq_hybrid_keyshare:
                sizes[0] += _PQ_EXTRA[0]
                sizes[1] += _PQ_EXTRA[1]
        else:
            # The encrypted Finished (one per direction) is the only handshake record whose size follows the
            # negotiated cipher; the measured flights carried the GCM overhead.
            fin = self._rec(_FINISHED_LEN) + _FINISHED_LEN - (_GCM_OVERHEAD + _FINISHED_LEN)
            if resumed:
                sizes = [_T12_RESUMED[0], _T12_RESUMED[1] + fin, _T12_RESUMED[2] + fin]
            else:
                s2c = _FULL_S2C[("1.2", c.cert_chain, c.chain_includes_root)]
                last = _T12_SERVER_FIN + (_T12_TICKET if c.session_tickets else 0)
                sizes = [
                    _FULL_C2S["1.2"] - _T12_CLIENT_FIN,
                    s2c - _T12_TICKET - _T12_SERVER_FIN,
                    _T12_CLIENT_FIN + fin,
                    last + fin,
                ]
        return [("in" if i % 2 == 0 else "out", {"tls_handshake": n}) for i, n in enumerate(sizes)]

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
        return self._wire(self._handshake_flights(resumed), acks="per_flight")

    def _app_flight(self, direction: str, app_bytes: int) -> Flight:
        return direction, {"app_protocol": app_bytes, "tls_record": self._rec(app_bytes)}

    def login(self) -> Bytes:
        """Application login after TLS: chat login request/reply; MQTT CONNECT/CONNACK (+SUBSCRIBE/SUBACK);
        WebSocket upgrade request/response followed by the chat login in WebSocket frames."""
        c = self.cfg
        if c.app in ("mqtt311", "mqtt5"):
            v5 = int(c.app == "mqtt5")  # MQTT 5.0 adds a property-length byte (no properties)
            optional = sum(2 + n for n in (c.mqtt_username_len, c.mqtt_password_len) if n > 0)
            # MQTT 3.1.1 §3.1: variable header 10 ("MQTT" 6, level 1, flags 1, keep-alive 2) + payload fields.
            connect_rl = 10 + v5 + 2 + c.mqtt_client_id_len + optional
            flights = [
                self._app_flight("in", 1 + int(mqtt_remaining_length_size(connect_rl)) + connect_rl),
                self._app_flight("out", 4 + v5),  # CONNACK 4 / 5 B (PF §3.1)
            ]
            if c.mqtt_subscriptions:
                # §3.8-3.9: SUBSCRIBE 2+2+Σ(2+filter+1) (+1 v5), SUBACK 2+2+1 per filter (+1 v5).
                sub_rl = 2 + v5 + c.mqtt_subscriptions * (2 + c.mqtt_topic_len + 1)
                suback_rl = 2 + v5 + c.mqtt_subscriptions
                flights += [
                    self._app_flight("in", 1 + int(mqtt_remaining_length_size(sub_rl)) + sub_rl),
                    self._app_flight("out", 1 + int(mqtt_remaining_length_size(suback_rl)) + suback_rl),
                ]
        elif c.app == "websocket":
            up, down = c.login_bytes_c2s, c.login_bytes_s2c
            flights = [
                self._app_flight("in", c.ws_upgrade_request_bytes),
                self._app_flight("out", c.ws_upgrade_response_bytes),
                self._app_flight("in", up + int(ws_frame_header_size(up, client_to_server=True))),
                self._app_flight("out", down + int(ws_frame_header_size(down, client_to_server=False))),
            ]
        else:
            flights = [self._app_flight("in", c.login_bytes_c2s), self._app_flight("out", c.login_bytes_s2c)]
        return self._wire(flights, acks="exchange")

    def connect(self, resumed: bool) -> Bytes:
        """TCP 3-way handshake + TLS handshake (full or resumed) + application login, all IP headers included."""
        return self._connect[bool(resumed)]

    def _teardown(self) -> Bytes:
        c = self.cfg
        flights: list[Flight] = []
        if c.app in ("mqtt311", "mqtt5"):
            flights.append(self._app_flight("in", _MQTT_DISCONNECT))
        elif c.app == "websocket":  # Close frame, echoed by the server (RFC 6455 §5.5.1)
            flights.append(self._app_flight("in", _WS_CLOSE_STATUS + 6))
            flights.append(self._app_flight("out", _WS_CLOSE_STATUS + 2))
        if c.tls != "off":  # RFC 8446 §6.1: each party sends close_notify before closing its write side
            cn = _CLOSE_NOTIFY + self._rec(_CLOSE_NOTIFY)
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
        if c.app in ("mqtt311", "mqtt5"):
            ping, pong = _MQTT_PING, _MQTT_PING
        elif c.app == "websocket":  # Ping from the client (masked, 6-B header), Pong echoes the data
            ping, pong = 6 + c.heartbeat_bytes, 2 + c.heartbeat_bytes
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
    def _wire(self, flights: list[Flight], acks: Literal["per_flight", "exchange", "none"]) -> Bytes:
        """Session bytes of ``flights`` plus their IP/TCP headers and pure ACKs (see module docstring)."""
        side: dict[str, dict[str, float]] = {"out": {}, "in": {}}
        h = self.segment_header
        for i, (d, parts) in enumerate(flights):
            for k, v in parts.items():
                side[d][k] = side[d].get(k, 0) + v
            segs = int(_ceil_div(sum(parts.values()), self.cfg.mss))
            if acks == "per_flight":
                pure = max(1, segs // 2) if segs else 0
            elif acks == "exchange":
                pure = (segs + 1) // 2 - (0 if i == len(flights) - 1 else 1)
            else:
                pure = 0
            side[d]["tcpip"] = side[d].get("tcpip", 0) + segs * h
            side[_OTHER[d]]["tcpip"] = side[_OTHER[d]].get("tcpip", 0) + max(pure, 0) * h
        return Bytes(out=side["out"], inb=side["in"])

    # -- messages --------------------------------------------------------------------------------------------------
    def app_overhead(self, payload: np.ndarray, direction: str) -> np.ndarray:
        """Application-protocol bytes around each payload: chat header; + WebSocket frame header; or the
        MQTT PUBLISH header (fixed header 1 + Remaining Length 1-4, topic 2+len, packet id 2 if QoS 1,
        property length 1 in MQTT 5; PF §3.1)."""
        c = self.cfg
        if c.app in ("mqtt311", "mqtt5"):
            var = 2 + c.mqtt_topic_len + (2 if c.mqtt_qos == 1 else 0) + (1 if c.app == "mqtt5" else 0)
            return 1 + mqtt_remaining_length_size(payload + var) + var
        if c.app == "websocket":
            body = payload + c.app_header_bytes
            return c.app_header_bytes + ws_frame_header_size(body, client_to_server=direction == "in")
        return np.full_like(payload, c.app_header_bytes)

    def messages(self, payload: np.ndarray, direction: str) -> dict[str, np.ndarray]:
        """Wire bytes of independent messages with the given payload sizes flowing in ``direction``.

        Keys (int64 arrays, shape of ``payload``): in ``direction`` ``payload``, ``app_protocol``, ``tls_record``
        and ``tcpip`` (data segments, plus for MQTT QoS 1 the sender's ACK of the PUBACK); in the opposite
        direction ``ack_tcpip`` (pure ACKs, ``ceil(segments/2)``; with QoS 1 the PUBACK carries the last ACK and
        its own segment header is counted here), ``ack_app`` (the 4-B PUBACK) and ``ack_tls_record`` (its
        record overhead). ``ack_app`` / ``ack_tls_record`` are zero unless MQTT QoS 1. Each message is one
        application write: ``ceil(n / 2^14)`` records, ``ceil(wire / mss)`` segments.
        """
        _check_direction(direction)
        payload = np.asarray(payload)
        if payload.dtype.kind not in "iu":
            raise TypeError(f"payload sizes must be an integer array, got dtype {payload.dtype}")
        payload = payload.astype(np.int64, copy=False)
        if payload.size and payload.min() < 0:
            raise ValueError("payload sizes must be >= 0")
        h = self.segment_header
        app = self.app_overhead(payload, direction)
        msg = payload + app
        tls = self.record_overhead(msg)
        msg += tls
        segs = _ceil_div(msg, self.cfg.mss)
        del msg
        acks = (segs + 1) // 2
        if self.cfg.app in ("mqtt311", "mqtt5") and self.cfg.mqtt_qos == 1:
            puback_tls = self._rec(_MQTT_PUBACK)
            puback_segs = int(_ceil_div(_MQTT_PUBACK + puback_tls, self.cfg.mss))
            tcpip = (segs + 1) * h  # + the publisher's pure ACK of the PUBACK
            ack_tcpip = (acks - 1 + puback_segs) * h
            ack_app = np.full_like(payload, _MQTT_PUBACK)
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

    def message(self, payload: int, direction: str) -> Bytes:
        """One message as :class:`Bytes` (built on :meth:`messages`)."""
        m = {k: int(v[0]) for k, v in self.messages(np.array([payload], dtype=np.int64), direction).items()}
        other = _OTHER[direction]
        fwd = {k: m[k] for k in ("payload", "app_protocol", "tls_record", "tcpip")}
        back = {"app_protocol": m["ack_app"], "tls_record": m["ack_tls_record"], "tcpip": m["ack_tcpip"]}
        return Bytes(out=fwd, inb=back) if other == "in" else Bytes(out=back, inb=fwd)
