"""WebSocket on the wire (RFC 6455): the upgrade, frame headers, permessage-deflate, ping/pong and close (PF §3.2).

The opening handshake is built from its header lines, as real stacks send them:

* request (RFC 6455 §4.1): ``GET <ws_path> HTTP/1.1``, Host (``server_name``, else RFC 6455 §1.2's
  ``server.example.com``), Upgrade, Connection, Sec-WebSocket-Key (base64 of 16 random bytes: 24 chars),
  Sec-WebSocket-Version 13, then Origin, Sec-WebSocket-Extensions (when permessage-deflate is negotiated,
  websockets' offer ``permessage-deflate; client_max_window_bits``), Sec-WebSocket-Protocol and User-Agent when
  configured. Header order and values are those of the websockets client (websockets 17.4, ``client.py``
  ``ClientProtocol.connect`` and ``asyncio/client.py`` ``handshake``, which adds ``User-Agent:
  Python/3.11 websockets/17.4``); only the order differs from other clients, never the bytes.
* response (RFC 6455 §4.2.2): ``HTTP/1.1 101 Switching Protocols``, Upgrade, Connection, Sec-WebSocket-Accept
  (base64 of a SHA-1: 28 chars), the accepted extension and subprotocol; the ``websockets`` server profile adds
  ``Date`` (an IMF-fixdate, 29 chars, RFC 7231 §7.1.1.1) and ``Server: Python/3.11 websockets/17.4``, and
  answers the deflate offer with ``permessage-deflate; server_max_window_bits=12; client_max_window_bits=12``
  (websockets 17.4 ``server.py`` ``ServerProtocol.accept``, ``asyncio/server.py`` ``handshake``,
  ``extensions/permessage_deflate.py`` ``enable_server_permessage_deflate``); ``bare`` is the RFC minimum
  (no Date or Server, ``permessage-deflate`` without parameters).

Measured on 127.0.0.1 (tests/test_wire_websocket.py, websockets 17.4 client and server): request 265 B with
``Host: 127.0.0.1:<5-digit port>`` (268 B with the 18-char default host), response 303 B.

permessage-deflate (RFC 7692) compresses each data message; the frame carries the compressed body with RSV1
set and without the 4-B ``00 00 ff ff`` tail of the sync flush (§7.2.1); control frames (ping, pong, close)
are never compressed (§6.1). The compressed body is ``ceil(ratio x body)`` with a measured ratio per message
kind (``ProtocolConfig.ws_deflate_ratio``): the chat header and the payload shrink by the same ratio, so
:func:`payload_on_wire` is the payload's share and :func:`frame_overhead` the header's share plus the frame
header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.protocol.config import ProtocolConfig

CLOSE_STATUS = 2  # RFC 6455 §5.5.1: Close frame body = 2-B status code.
DEFAULT_HOST = "server.example.com"  # RFC 6455 §1.2's example host, when no server_name is configured
KEY_CHARS = 24  # RFC 6455 §4.1 item 7: base64 of a 16-byte nonce
ACCEPT_CHARS = 28  # RFC 6455 §4.2.2 item 5.4: base64 of a 20-byte SHA-1
DATE_CHARS = 29  # RFC 7231 §7.1.1.1 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT"
#: websockets' User-Agent and Server value (websockets/http11.py USER_AGENT / SERVER), measured with 17.4.
WEBSOCKETS_AGENT = "Python/3.11 websockets/17.4"
#: The client's permessage-deflate offer (websockets ClientPerMessageDeflateFactory defaults; browsers send the
#: same offer).
DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"
#: The server's answer to it, per server profile.
DEFLATE_ACCEPT = {
    "websockets": "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
    "bare": "permessage-deflate",
}
#: Message kinds with a deflate ratio: chat messages, media messages, receipts (model.py's metered messages),
#: and the chat login request and reply of :func:`login_packets`.
KINDS = ("message", "media", "receipt", "login", "login_reply")


def ws_frame_header_size(n: np.ndarray | int, client_to_server: bool) -> np.ndarray:
    """RFC 6455 §5.2 frame header for an ``n``-byte payload: 2 / 4 / 10 B, +4 masking key from the client."""
    n = np.asarray(n, dtype=np.int64)
    return 2 + 2 * (n >= 126) + 6 * (n >= 65_536) + (4 if client_to_server else 0)


def _line(name: str, value: str | int) -> int:
    """An HTTP header line ``Name: value\\r\\n`` (RFC 7230 §3.2), B; ``value`` as text or as its length."""
    return len(name) + 2 + (value if isinstance(value, int) else len(value)) + 2


def upgrade_request_lines(cfg: ProtocolConfig) -> list[tuple[str, int]]:
    """(header, bytes) of the computed upgrade request, the request line first and the blank line last."""
    lines = [
        ("request-line", len(f"GET {cfg.ws_path} HTTP/1.1\r\n")),
        ("Host", _line("Host", cfg.server_name or DEFAULT_HOST)),
        ("Upgrade", _line("Upgrade", "websocket")),
        ("Connection", _line("Connection", "Upgrade")),
        ("Sec-WebSocket-Key", _line("Sec-WebSocket-Key", KEY_CHARS)),
        ("Sec-WebSocket-Version", _line("Sec-WebSocket-Version", "13")),
    ]
    if cfg.ws_origin is not None:
        lines.append(("Origin", _line("Origin", cfg.ws_origin)))
    if cfg.ws_permessage_deflate:
        lines.append(("Sec-WebSocket-Extensions", _line("Sec-WebSocket-Extensions", DEFLATE_OFFER)))
    if cfg.ws_subprotocol is not None:
        lines.append(("Sec-WebSocket-Protocol", _line("Sec-WebSocket-Protocol", cfg.ws_subprotocol)))
    if cfg.ws_user_agent is not None:
        lines.append(("User-Agent", _line("User-Agent", cfg.ws_user_agent)))
    return [*lines, ("end", 2)]


def upgrade_response_lines(cfg: ProtocolConfig) -> list[tuple[str, int]]:
    """(header, bytes) of the computed 101 response of the ``ws_server`` profile, status line first."""
    websockets = cfg.ws_server == "websockets"
    lines = [("status-line", len("HTTP/1.1 101 Switching Protocols\r\n"))]
    if websockets:
        lines.append(("Date", _line("Date", DATE_CHARS)))
    lines += [
        ("Upgrade", _line("Upgrade", "websocket")),
        ("Connection", _line("Connection", "Upgrade")),
        ("Sec-WebSocket-Accept", _line("Sec-WebSocket-Accept", ACCEPT_CHARS)),
    ]
    if cfg.ws_permessage_deflate:
        lines.append(("Sec-WebSocket-Extensions", _line("Sec-WebSocket-Extensions", DEFLATE_ACCEPT[cfg.ws_server])))
    if cfg.ws_subprotocol is not None:  # the server selects the client's subprotocol (RFC 6455 §4.2.2 item 5.5)
        lines.append(("Sec-WebSocket-Protocol", _line("Sec-WebSocket-Protocol", cfg.ws_subprotocol)))
    if websockets:
        lines.append(("Server", _line("Server", WEBSOCKETS_AGENT)))
    return [*lines, ("end", 2)]


def upgrade_request_bytes(cfg: ProtocolConfig) -> int:
    """The upgrade request, B: ``ws_upgrade_request_bytes`` if set, else computed from its header lines."""
    if cfg.ws_upgrade_request_bytes is not None:
        return cfg.ws_upgrade_request_bytes
    return sum(n for _, n in upgrade_request_lines(cfg))


def upgrade_response_bytes(cfg: ProtocolConfig) -> int:
    """The 101 response, B: ``ws_upgrade_response_bytes`` if set, else computed from its header lines."""
    if cfg.ws_upgrade_response_bytes is not None:
        return cfg.ws_upgrade_response_bytes
    return sum(n for _, n in upgrade_response_lines(cfg))


def deflate_ratio(cfg: ProtocolConfig, kind: str) -> float:
    """Compressed / uncompressed body of a data message of ``kind``; 1.0 without permessage-deflate."""
    if not cfg.ws_permessage_deflate:
        return 1.0
    if kind not in KINDS:
        raise ValueError(f"unknown WebSocket message kind {kind!r}; expected one of {', '.join(KINDS)}")
    return float(cfg.ws_deflate_ratio[kind])


def body_on_wire(cfg: ProtocolConfig, body: np.ndarray | int, kind: str) -> np.ndarray:
    """Bytes of a data frame's payload for a message body of ``body`` bytes: ``ceil(ratio x body)`` with
    permessage-deflate (RFC 7692 §7.2.1, tail removed), else ``body``."""
    body = np.asarray(body, dtype=np.int64)
    if not cfg.ws_permessage_deflate:
        return body
    return np.ceil(body * deflate_ratio(cfg, kind)).astype(np.int64)


def payload_on_wire(cfg: ProtocolConfig, payload: np.ndarray, kind: str = "message") -> np.ndarray:
    """The chat payload's share of the frame payload: ``floor(ratio x payload)`` with permessage-deflate, else
    ``payload``. ``kind``: "message", "media" or "receipt" (see ``ProtocolConfig.ws_deflate_ratio``)."""
    payload = np.asarray(payload, dtype=np.int64)
    if not cfg.ws_permessage_deflate:
        return payload
    return np.floor(payload * deflate_ratio(cfg, kind)).astype(np.int64)


def frame_overhead(cfg: ProtocolConfig, payload: np.ndarray, direction: str, kind: str = "message") -> np.ndarray:
    """Chat header plus the WebSocket frame header around each chat ``payload`` (the uncompressed size).

    With permessage-deflate the header is its compressed share: the frame's payload is
    ``body_on_wire(app_header_bytes + payload)``, of which :func:`payload_on_wire` is the payload's; so
    ``payload_on_wire + frame_overhead`` is the whole frame. Without it: ``app_header_bytes`` + 2-14 B.
    """
    payload = np.asarray(payload, dtype=np.int64)
    body = body_on_wire(cfg, payload + cfg.app_header_bytes, kind)
    header = ws_frame_header_size(body, client_to_server=direction == "in")
    return body - payload_on_wire(cfg, payload, kind) + header


def login_packets(cfg: ProtocolConfig) -> list[tuple[str, int]]:
    """The upgrade request and response, then the chat login request and reply in WebSocket frames."""
    up = int(body_on_wire(cfg, cfg.login_bytes_c2s, "login"))
    down = int(body_on_wire(cfg, cfg.login_bytes_s2c, "login_reply"))
    return [
        ("in", upgrade_request_bytes(cfg)),
        ("out", upgrade_response_bytes(cfg)),
        ("in", up + int(ws_frame_header_size(up, client_to_server=True))),
        ("out", down + int(ws_frame_header_size(down, client_to_server=False))),
    ]


def ping_pong(cfg: ProtocolConfig) -> tuple[int, int]:
    """Ping from the client (masked, 6-B header) and the Pong that echoes its data (RFC 6455 §5.5.2-5.5.3);
    control frames are never compressed (RFC 7692 §6.1)."""
    return 6 + cfg.heartbeat_bytes, 2 + cfg.heartbeat_bytes


def close_frames() -> tuple[int, int]:
    """The client's Close frame (masked) and the server's echo (RFC 6455 §5.5.1)."""
    return CLOSE_STATUS + 6, CLOSE_STATUS + 2
