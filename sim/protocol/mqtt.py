"""MQTT 3.1.1 and 5.0 on the wire: control packets and the PUBLISH header, from the specifications (PF §3.1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.protocol.config import ProtocolConfig

#: Largest MQTT Remaining Length (4-byte variable integer). MQTT 3.1.1 §2.2.3, MQTT 5.0 §1.5.5.
MQTT_MAX_REMAINING_LENGTH = 268_435_455
PING = 2  # PINGREQ / PINGRESP: MQTT 3.1.1 §3.12-3.13, MQTT 5.0 same.
DISCONNECT = 2  # MQTT 3.1.1 §3.14; MQTT 5.0 §3.14.2.1 (normal disconnect, Remaining Length 0).
PUBACK = 4  # MQTT 3.1.1 §3.4; MQTT 5.0 §3.4.2.1 (success, no properties).


def is_mqtt(cfg: ProtocolConfig) -> bool:
    return cfg.app in ("mqtt311", "mqtt5")


def mqtt_remaining_length_size(rl: np.ndarray | int) -> np.ndarray:
    """Bytes of the MQTT variable-length Remaining Length: 1 <= 127, 2 <= 16,383, 3 <= 2,097,151, else 4.

    MQTT 3.1.1 §2.2.3, MQTT 5.0 §1.5.5; larger values cannot be encoded.
    """
    rl = np.asarray(rl, dtype=np.int64)
    if rl.size and (rl.min() < 0 or rl.max() > MQTT_MAX_REMAINING_LENGTH):
        raise ValueError(f"MQTT remaining length must be in 0..{MQTT_MAX_REMAINING_LENGTH}")
    return 1 + (rl > 127).astype(np.int64) + (rl > 16_383) + (rl > 2_097_151)


def _packet(rl: int) -> int:
    """A control packet of Remaining Length ``rl``: fixed header byte + Remaining Length + ``rl``."""
    return 1 + int(mqtt_remaining_length_size(rl)) + rl


def login_packets(cfg: ProtocolConfig) -> list[tuple[str, int]]:
    """CONNECT, CONNACK (and SUBSCRIBE, SUBACK per ``mqtt_subscriptions``) as (direction, bytes)."""
    v5 = int(cfg.app == "mqtt5")  # MQTT 5.0 adds a property-length byte (no properties)
    optional = sum(2 + n for n in (cfg.mqtt_username_len, cfg.mqtt_password_len) if n > 0)
    # MQTT 3.1.1 §3.1: variable header 10 ("MQTT" 6, level 1, flags 1, keep-alive 2) + payload fields.
    connect_rl = 10 + v5 + 2 + cfg.mqtt_client_id_len + optional
    packets = [("in", _packet(connect_rl)), ("out", 4 + v5)]  # CONNACK 4 / 5 B (PF §3.1)
    if cfg.mqtt_subscriptions:
        # §3.8-3.9: SUBSCRIBE 2+2+Σ(2+filter+1) (+1 v5), SUBACK 2+2+1 per filter (+1 v5).
        sub_rl = 2 + v5 + cfg.mqtt_subscriptions * (2 + cfg.mqtt_topic_len + 1)
        suback_rl = 2 + v5 + cfg.mqtt_subscriptions
        packets += [("in", _packet(sub_rl)), ("out", _packet(suback_rl))]
    return packets


def publish_overhead(cfg: ProtocolConfig, payload: np.ndarray) -> np.ndarray:
    """The PUBLISH header around each payload: fixed header 1 + Remaining Length 1-4, topic 2+len, packet id 2
    if QoS 1, property length 1 in MQTT 5 (PF §3.1)."""
    var = 2 + cfg.mqtt_topic_len + (2 if cfg.mqtt_qos == 1 else 0) + (1 if cfg.app == "mqtt5" else 0)
    return 1 + mqtt_remaining_length_size(payload + var) + var


def puback_bytes(cfg: ProtocolConfig) -> int:
    """The PUBACK a QoS 1 PUBLISH gets, B."""
    return PUBACK
