"""WebSocket on the wire (RFC 6455): the upgrade, frame headers, ping/pong and close (PF §3.2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.protocol.config import ProtocolConfig

CLOSE_STATUS = 2  # RFC 6455 §5.5.1: Close frame body = 2-B status code.


def ws_frame_header_size(n: np.ndarray | int, client_to_server: bool) -> np.ndarray:
    """RFC 6455 §5.2 frame header for an ``n``-byte payload: 2 / 4 / 10 B, +4 masking key from the client."""
    n = np.asarray(n, dtype=np.int64)
    return 2 + 2 * (n >= 126) + 6 * (n >= 65_536) + (4 if client_to_server else 0)


def login_packets(cfg: ProtocolConfig) -> list[tuple[str, int]]:
    """The upgrade request and response, then the chat login request and reply in WebSocket frames."""
    up, down = cfg.login_bytes_c2s, cfg.login_bytes_s2c
    return [
        ("in", cfg.ws_upgrade_request_bytes),
        ("out", cfg.ws_upgrade_response_bytes),
        ("in", up + int(ws_frame_header_size(up, client_to_server=True))),
        ("out", down + int(ws_frame_header_size(down, client_to_server=False))),
    ]


def frame_overhead(cfg: ProtocolConfig, payload: np.ndarray, direction: str) -> np.ndarray:
    """Chat header plus the WebSocket frame header around each chat payload."""
    body = payload + cfg.app_header_bytes
    return cfg.app_header_bytes + ws_frame_header_size(body, client_to_server=direction == "in")


def ping_pong(cfg: ProtocolConfig) -> tuple[int, int]:
    """Ping from the client (masked, 6-B header) and the Pong that echoes its data (RFC 6455 §5.5.2-5.5.3)."""
    return 6 + cfg.heartbeat_bytes, 2 + cfg.heartbeat_bytes


def close_frames() -> tuple[int, int]:
    """The client's Close frame (masked) and the server's echo (RFC 6455 §5.5.1)."""
    return CLOSE_STATUS + 6, CLOSE_STATUS + 2
