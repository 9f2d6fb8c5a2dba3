"""MQTT 3.1.1 and 5.0 on the wire: control packets and the PUBLISH header, from the specifications (PF §3.1),
with the MQTT 5 properties a broker adds (``ProtocolConfig.mqtt_broker``).

mosquitto 2.0 (``mqtt_broker: mosquitto``; read in eclipse/mosquitto v2.0.11 and v2.0.20, the same here):

* CONNACK (src/send_connack.c ``send__connack``, src/handle_connect.c ``connect__on_authorised``) carries
  Receive Maximum = ``max_inflight_messages`` (default 20, src/conf.c) and Topic Alias Maximum = the
  listener's ``max_topic_alias`` (default 10, src/mosquitto.c ``listener__set_defaults``): 3 + 3 B of
  properties, so 11 B instead of the 5-B minimum. Retain Available, Maximum Packet Size and Maximum QoS are only
  sent when configured away from their defaults; Server Keep Alive only when the client's keep-alive exceeds
  ``max_keepalive`` (or is 0, in 2.0.11 whose default max_keepalive is 65535; 2.0.20's default is 0: never).
  A client that connects with an empty client id gets an Assigned Client Identifier: ``auto-`` + a 36-char
  UUID (``client_id_gen``, src/conf.c ``auto_id_prefix``) = 1 + 2 + 41 = 44 B more (MQTT 5.0 §3.2.2.3.7).
* SUBACK (src/send_suback.c): no properties ("We don't use Reason String or User Property yet").
* PUBACK (lib/send_mosq.c ``send__command_with_mid``, src/handle_publish.c): 4 B when the topic has
  subscribers; in MQTT 5 a PUBLISH no one subscribes to is answered with reason code 0x10 (No matching
  subscribers), 5 B (the property length is omitted, MQTT 5.0 §3.4.2.2.1).
* PUBLISH to subscribers: no properties unless the publisher set a Message Expiry Interval (lib/send_publish.c).

Measured against mosquitto 2.0.11 with paho-mqtt 2.2.0 on 127.0.0.1 by tests/test_wire_mqtt.py.
"""

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
#: mosquitto 2.0's default MQTT 5 CONNACK properties, B each (identifier 1 + Two Byte Integer 2, MQTT 5.0 §2.2.2.2).
MOSQUITTO_CONNACK_PROPERTIES = {"receive_maximum": 3, "topic_alias_maximum": 3}
#: mosquitto's assigned client id: auto_id_prefix "auto-" + UUID text (src/handle_connect.c client_id_gen).
MOSQUITTO_ASSIGNED_ID_LEN = 5 + 36


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


def connack_properties(cfg: ProtocolConfig) -> int:
    """Bytes of the MQTT 5 CONNACK properties the broker sends (without the property length); 0 for 3.1.1."""
    if cfg.app != "mqtt5" or cfg.mqtt_broker == "bare":
        return 0
    n = sum(MOSQUITTO_CONNACK_PROPERTIES.values())
    if cfg.mqtt_client_id_len == 0:  # Assigned Client Identifier: identifier 1 + UTF-8 string 2 + len
        n += 1 + 2 + MOSQUITTO_ASSIGNED_ID_LEN
    return n


def connack_bytes(cfg: ProtocolConfig) -> int:
    """CONNACK: 4 B in 3.1.1 (§3.2); in 5.0 flags 1 + reason 1 + property length + properties (§3.2.2)."""
    if cfg.app != "mqtt5":
        return 4
    props = connack_properties(cfg)
    return _packet(2 + int(mqtt_remaining_length_size(props)) + props)


def login_packets(cfg: ProtocolConfig) -> list[tuple[str, int]]:
    """CONNECT, CONNACK (and SUBSCRIBE, SUBACK per ``mqtt_subscriptions``) as (direction, bytes)."""
    v5 = int(cfg.app == "mqtt5")  # MQTT 5.0 adds a property-length byte (the client sends no properties)
    optional = sum(2 + n for n in (cfg.mqtt_username_len, cfg.mqtt_password_len) if n > 0)
    # MQTT 3.1.1 §3.1: variable header 10 ("MQTT" 6, level 1, flags 1, keep-alive 2) + payload fields.
    connect_rl = 10 + v5 + 2 + cfg.mqtt_client_id_len + optional
    packets = [("in", _packet(connect_rl)), ("out", connack_bytes(cfg))]
    if cfg.mqtt_subscriptions:
        # §3.8-3.9: SUBSCRIBE 2+2+Σ(2+filter+1) (+1 v5), SUBACK 2+2+1 per filter (+1 v5; mosquitto sends no
        # SUBACK properties).
        sub_rl = 2 + v5 + cfg.mqtt_subscriptions * (2 + cfg.mqtt_topic_len + 1)
        suback_rl = 2 + v5 + cfg.mqtt_subscriptions
        packets += [("in", _packet(sub_rl)), ("out", _packet(suback_rl))]
    return packets


def publish_overhead(cfg: ProtocolConfig, payload: np.ndarray) -> np.ndarray:
    """The PUBLISH header around each payload: fixed header 1 + Remaining Length 1-4, topic 2+len, packet id 2
    if QoS 1, property length 1 in MQTT 5 (PF §3.1). Either direction: mosquitto forwards a PUBLISH without
    properties (module docstring)."""
    var = 2 + cfg.mqtt_topic_len + (2 if cfg.mqtt_qos == 1 else 0) + (1 if cfg.app == "mqtt5" else 0)
    return 1 + mqtt_remaining_length_size(payload + var) + var


def puback_bytes(cfg: ProtocolConfig, *, subscribed: bool = True) -> int:
    """The PUBACK a QoS 1 PUBLISH gets, B: 4 (MQTT 3.1.1 §3.4, MQTT 5.0 §3.4.2.1; paho's PUBACK of a delivered
    message too). ``subscribed=False``: the topic has no subscriber, which mosquitto answers in MQTT 5 with
    reason code 0x10 (5 B)."""
    if not subscribed and cfg.app == "mqtt5" and cfg.mqtt_broker == "mosquitto":
        return PUBACK + 1
    return PUBACK
