"""The IoT tracker fleet's configuration: what a scenario's ``iot:`` section may say.

It exists apart from the engine (:mod:`sim.world.iot.fleet`) so that a newcomer finds every parameter of the
fleet -- elements, behaviour, protocol, cellular links, platform buffers -- with its default and its
source in one place, and so that :mod:`sim.scenario` can validate a scenario without the engine.
Defaults cite ``shared/reference/protocol-facts.md`` as "PF §x"; values marked *assumption* have no
source there and are parameters for that reason.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from pydantic import Field

from sim.protocol import ProtocolConfig

#: Trip starts per local hour: night trough ~0.2 of the mean, commute peaks ~1.7x the mean. The shape
#: follows PF §6 ``diurnal_profile`` (peak/mean 1.7, trough 0.2 at 03:00-05:00, Cisco VNI) -- a traffic
#: profile adopted for vehicle trips (assumption).
DEFAULT_HOUR_WEIGHTS: tuple[float, ...] = (
    0.2, 0.2, 0.2, 0.2, 0.2, 0.5, 1.1, 1.7, 1.7, 1.3, 1.1, 1.1,
    1.2, 1.2, 1.2, 1.3, 1.6, 1.7, 1.6, 1.3, 0.9, 0.6, 0.4, 0.3,
)  # fmt: skip


class IotFleetConfig(pydantic.BaseModel, extra="forbid"):
    """A fleet of GPS trackers publishing telemetry to an IoT platform (flespi-like) over MQTT."""

    # -- fleet and platform elements ------------------------------------------------------------------
    devices: int = Field(
        1000, ge=1, description="Trackers in the fleet; each is one platform device (daily count)."
    )
    sample: int | None = Field(
        None, ge=2, description="Simulate this many of the `devices` and scale the fleet's traffic and stored "
        "bytes to all of them (sim/sampling.py); element counts are the full fleet's. null: every device.",
    )
    channels: int = Field(
        1,
        ge=1,
        description="Channels the devices connect to; devices are split into equal contiguous blocks.",
    )
    streams: int = Field(
        1, ge=0, description="Streams forwarding messages to the owner's servers (element count)."
    )
    containers: int = Field(0, ge=0, description="Containers (static element count per day).")
    abques: int = Field(0, ge=0, description="Abques (static element count per day).")
    cdns: int = Field(0, ge=0, description="CDNs (static element count per day).")
    tokens: int = Field(1, ge=0, description="Access tokens (static element count per day).")
    subaccounts: int = Field(0, ge=0, description="Subaccounts (static element count per day).")
    limits: int = Field(0, ge=0, description="Limits attached to subaccounts (static element count per day).")
    persistent_sessions: bool = Field(
        True,
        description="Devices connect with clean-session off, so each keeps an MQTT session on the broker "
        "(counted as MQTT sessions every day).",
    )
    extra_mqtt_sessions: int = Field(
        1, ge=0, description="Other MQTT sessions, e.g. the owner's application subscribing to the fleet."
    )

    # -- behaviour ----------------------------------------------------------------------------------------
    moving_interval_s: tuple[int, int] = Field(
        (10, 30),
        description="Report interval while moving, seconds; each device draws an integer uniformly in "
        "[min, max] (typical tracker configuration, assumption).",
    )
    parked_interval_s: int = Field(
        300, ge=1, description="Report interval while parked, seconds (assumption)."
    )
    moving_fraction: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        description="Long-run fraction of time a device is moving (1 = always, 0 = never).",
    )
    trip_minutes_mean: float = Field(30.0, gt=0.0, description="Mean trip length, minutes (exponential).")
    hour_weights: tuple[float, ...] = Field(
        DEFAULT_HOUR_WEIGHTS,
        description="Relative trip starts per local hour 0..23 (PF §6 diurnal_profile shape).",
    )
    utc_offset_hours: int = Field(
        0, ge=-12, le=14, description="Fleet's local time zone for the diurnal shape."
    )
    payload_bytes: tuple[int, int] = Field(
        (100, 300),
        description="Telemetry JSON payload size, bytes, uniform integer in [min, max] (position, speed, "
        "ignition, battery ...; assumption).",
    )

    # -- protocol -----------------------------------------------------------------------------------------
    mqtt_version: Literal["3.1.1", "5"] = Field(
        "3.1.1", description="PF §6 mqtt_version: 3.1.1 (5 as option)."
    )
    qos: Literal[0, 1] = Field(
        1,
        description="PUBLISH QoS. 1: PUBACK per message, nothing lost with a dropped link; 0: lost (PF §3.1).",
    )
    topic_len: int = Field(23, ge=0, description="Topic length, bytes (PF §3.1 [M-MQTT] 23-B topic).")
    client_id_len: int = Field(24, ge=0, description="MQTT client id length (PF §3.1 [M-MQTT] CONNECT).")
    keepalive_s: int = Field(
        60, ge=1, le=65535, description="MQTT keep-alive, seconds (PF §6 mqtt_keepalive: 60 s IoT)."
    )
    server_timeout_factor: float = Field(
        1.5,
        ge=1.0,
        description="Server drops a silent client after this x keep-alive (MQTT 3.1.1 [MQTT-3.1.2-24]).",
    )
    tls: Literal["off", "1.2", "1.3"] = Field("1.3", description="PF §6 tls_version: TLS 1.3.")
    cert_chain: Literal["ecdsa", "rsa"] = Field(
        "ecdsa", description="PF §6 cert_chain: ECDSA P-256 + intermediate."
    )
    mss: int = Field(1378, ge=64, description="TCP MSS on cellular (PF §6 tcp_mss: 1,378 B for MTU 1,430).")
    tls_resumption_probability: float = Field(
        0.8, ge=0.0, le=1.0, description="Chance a reconnect within the ticket lifetime resumes (PF §6)."
    )
    ticket_lifetime_s: int = Field(
        7200, ge=0, description="TLS ticket lifetime (PF §1.4: OpenSSL default 7,200 s)."
    )

    protocol: dict[str, Any] = Field(
        {}, description="More wire settings for the fleet's connections, as in the scenario's protocol section "
        "(e.g. certificate_chain, server_name, alpn, client_stack, mqtt_broker, ip_version, tcp_timestamps, "
        "session_tickets); the keys the fleet sets itself (app from mqtt_version, tls, cert_chain, mss, mqtt_qos, "
        "mqtt_topic_len, mqtt_client_id_len) are set here under their own names.",
    )

    # -- cellular links -----------------------------------------------------------------------------------
    drops_per_device_per_day: float = Field(
        2.0,
        ge=0.0,
        description="Silent connection deaths per device per day (cell changes, coverage; assumption).",
    )
    coverage_gap_mean_s: float = Field(
        60.0,
        ge=0.0,
        description="Mean time without coverage after a drop, seconds (exponential; assumption).",
    )
    detect_s: int | None = Field(
        None,
        ge=0,
        description="Seconds until a device notices a dead link; default one keep-alive (the client expects "
        "a PINGRESP 'within a reasonable amount of time', MQTT 3.1.1 §3.1.2.10).",
    )
    backoff_initial_s: int = Field(1, ge=1, description="First reconnect delay (PF §3.1: AWS IoT SDK 1 s).")
    backoff_max_s: int = Field(128, ge=1, description="Reconnect delay cap (PF §3.1: AWS IoT SDK 128 s).")
    max_inflight: int = Field(
        20,
        ge=1,
        description="QoS 1 PUBLISHes a device has unacknowledged at once (paho max_inflight / MQTT 5 Receive "
        "Maximum default 20): at a suspension at most this many per device are sent and rejected; the rest "
        "of its backlog was never sent and stays queued.",
    )
    device_queue_max: int | None = Field(
        10_000,
        ge=0,
        description="Messages a tracker holds while it cannot send (its black-box queue; assumption). "
        "Older messages beyond it are lost: dropped, reason device_queue_full. Bounds the backlog in a "
        "perpetual reconnect storm. None = unbounded.",
    )

    # -- platform buffers ---------------------------------------------------------------------------------
    buffer_ttl_min: int = Field(
        10080,
        ge=1,
        description="Device buffer message TTL, minutes (7 days, assumption; seed tip: lower it).",
    )
    read_every_min: int | None = Field(
        None,
        ge=1,
        description="The owner's application reads and clears all device buffers every K minutes "
        "(seed tip); None = never, messages leave by TTL only.",
    )

    @pydantic.model_validator(mode="after")
    def _ranges(self) -> IotFleetConfig:
        if not 1 <= self.moving_interval_s[0] <= self.moving_interval_s[1]:
            raise ValueError("moving_interval_s must be [min, max] with 1 <= min <= max")
        if not 0 <= self.payload_bytes[0] <= self.payload_bytes[1]:
            raise ValueError("payload_bytes must be [min, max] with 0 <= min <= max")
        if len(self.hour_weights) != 24 or min(self.hour_weights) < 0 or sum(self.hour_weights) <= 0:
            raise ValueError("hour_weights needs 24 non-negative weights with a positive sum")
        return self

    @pydantic.field_validator("protocol")
    @classmethod
    def _protocol_keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        own = {k: f for k, f in _OWN_PROTOCOL_KEYS.items() if k in v}
        if own:
            k, f = next(iter(own.items()))
            raise ValueError(f"{k} is set by the fleet's own key iot.{f}")
        ProtocolConfig(**v)  # unknown keys and bad values are errors here, before the run
        return v

    def protocol_config(self) -> ProtocolConfig:
        return ProtocolConfig(
            app="mqtt311" if self.mqtt_version == "3.1.1" else "mqtt5",
            tls=self.tls,
            cert_chain=self.cert_chain,
            mss=self.mss,
            mqtt_qos=self.qos,
            mqtt_topic_len=self.topic_len,
            mqtt_client_id_len=self.client_id_len,
            **self.protocol,
        )


#: ProtocolConfig keys the fleet derives from its own keys (``iot.protocol`` may not set them)
_OWN_PROTOCOL_KEYS = {"app": "mqtt_version", "tls": "tls", "cert_chain": "cert_chain", "mss": "mss",
                      "mqtt_qos": "qos", "mqtt_topic_len": "topic_len", "mqtt_client_id_len": "client_id_len"}
