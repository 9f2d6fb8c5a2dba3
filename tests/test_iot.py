"""The IoT tracker fleet (sim/world/iot/fleet.py): closed-form counts, exact wire bytes, buffers, limits."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from conservation import iot_conserved as conserved

from sim.meters import MeterBook
from sim.protocol import Protocol, ProtocolConfig
from sim.world.iot.fleet import IotFleetConfig, IotLimits, simulate_fleet

START = datetime(2026, 11, 1)
QUIET = {"drops_per_device_per_day": 0.0, "payload_bytes": (100, 100)}


def run(days: int = 1, seed: int = 1, enforcer=None, **kw):
    cfg = IotFleetConfig(**kw)
    book = MeterBook(start=START, minutes=days * 1440, days=days)
    meters = simulate_fleet(
        cfg, start=START, days=days, seed=np.random.SeedSequence(seed), book=book, enforcer=enforcer
    )
    return book, meters




def test_always_moving_fleet_sends_devices_x_period_over_interval_exactly():
    book, _ = run(days=2, devices=50, moving_fraction=1.0, moving_interval_s=(30, 30), **QUIET)
    assert book.counts["iot_messages_sent"] == 50 * 2 * 86400 // 30 == 288_000
    assert book.counts["iot_delivered"] == 288_000
    assert book.counts["iot_keepalives"] == 0  # a report every 30 s < 60 s keep-alive: no PINGREQ needed
    assert (book.series["iot_messages"] == 50 * 2).all()  # two reports per device per minute


def test_per_device_intervals_that_divide_a_day():
    # intervals 10..30 s dividing 86,400: each device sends exactly 86,400 / I per day, whatever its phase
    book, _ = run(devices=200, moving_fraction=1.0, moving_interval_s=(24, 25), seed=3, **QUIET)
    n = book.counts["iot_messages_sent"]
    k24 = (n - 200 * 3456) // (3600 - 3456)  # 86,400/25 = 3,456 and 86,400/24 = 3,600
    assert 0 < k24 < 200 and 200 * 3456 + k24 * 144 == n


@pytest.mark.parametrize(
    ("version", "qos", "app_bytes"),
    [("3.1.1", 1, 129), ("3.1.1", 0, 127), ("5", 1, 131), ("5", 0, 128)],  # PF §3.1 [M-MQTT], 23-B topic
)
def test_publish_bytes_are_the_protocol_figures(version, qos, app_bytes):
    book, _ = run(
        devices=10, moving_fraction=1.0, moving_interval_s=(30, 30), mqtt_version=version, qos=qos, **QUIET
    )
    n = book.counts["iot_delivered"]
    per_msg = (book.total_bytes("in", "payload") + book.total_bytes("in", "app_protocol")) / n
    assert per_msg == app_bytes
    proto = Protocol(IotFleetConfig(mqtt_version=version, qos=qos).protocol_config())
    m = proto.messages(np.array([100]), "in")
    assert (
        book.total_bytes("in", "tls_record") == n * m["tls_record"][0] == n * 22
    )  # TLS 1.3 record (PF §1.1)
    assert book.total_bytes("out", "app_protocol") == n * (4 if qos == 1 else 0)  # PUBACK


def test_keepalive_when_idle_one_packet_per_keepalive_interval():
    # always parked, a report every hour: between reports a PINGREQ every 60 s -> T/K packets in all
    book, _ = run(devices=20, moving_fraction=0.0, parked_interval_s=3600, keepalive_s=60, **QUIET)
    assert book.counts["iot_messages_sent"] == 20 * 24
    assert book.counts["iot_keepalives"] == 20 * (1440 - 24)
    cycle = Protocol(ProtocolConfig(app="mqtt311", mss=1378)).keepalive()
    assert book.total_bytes("out", "keepalive") == book.counts["iot_keepalives"] * cycle.get(
        "out", "keepalive"
    )
    # parked 300 s with K = 60 s: 4 pings per 5-minute gap
    book, _ = run(devices=20, moving_fraction=0.0, parked_interval_s=300, **QUIET)
    assert book.counts["iot_keepalives"] == 20 * (1440 - 288)


def test_buffer_level_is_littles_law_with_ttl():
    # 2 messages/min/device x 100 B x 40 devices = 8,000 B/min; TTL 60 min -> 480,000 B from minute 59 on
    book, meters = run(
        devices=40, moving_fraction=1.0, moving_interval_s=(30, 30), buffer_ttl_min=60, **QUIET
    )
    stored = np.array(meters["stored_bytes"]["values"])
    assert (stored[59:] == 8000 * 60).all()
    assert (stored[:59] == 8000 * np.arange(1, 60)).all()
    c = book.counts
    assert c["iot_in_buffer_end"] == 80 * 60 and c["iot_expired"] == 80 * (1440 - 60) and c["iot_read"] == 0
    conserved(c)


def test_reads_clear_buffers_every_k_minutes():
    book, meters = run(
        devices=40,
        moving_fraction=1.0,
        moving_interval_s=(30, 30),
        buffer_ttl_min=60,
        read_every_min=15,
        **QUIET,
    )
    stored = np.array(meters["stored_bytes"]["values"])
    assert (stored == 8000 * (np.arange(1440) % 15 + 1)).all()
    c = book.counts
    assert c["iot_expired"] == 0 and c["iot_read"] == 80 * (1440 - 15)
    conserved(c)


def test_stored_bytes_daily_then_monthly_average_as_the_seed():
    # seed: snapshot every minute -> daily average -> monthly average of the daily averages
    days = 3
    _, meters = run(
        days=days, devices=40, moving_fraction=1.0, moving_interval_s=(30, 30), buffer_ttl_min=1440, **QUIET
    )
    stored = np.array(meters["stored_bytes"]["values"], float)
    daily = stored.reshape(days, 1440).mean(axis=1)
    full = 8000 * 1440
    assert daily[0] == pytest.approx(8000 * (1440 + 1) / 2)  # ramp-up day: mean of 1..1440 minutes
    assert daily[1] == daily[2] == full  # steady state: lambda * TTL * size
    assert daily.mean() == pytest.approx((8000 * 1441 / 2 + 2 * full) / 3)


def test_element_counts_per_day():
    _, meters = run(days=2, devices=10, channels=3, streams=2, containers=5, tokens=7, **QUIET)
    assert meters["channels"] == {"interval": "1d", "values": [3, 3]}
    assert meters["streams"]["values"] == [2, 2] and meters["devices"]["values"] == [10, 10]
    assert meters["mqtt_sessions"]["values"] == [11, 11]  # 10 persistent sessions + the owner's app
    assert meters["containers"]["values"] == [5, 5] and meters["tokens"]["values"] == [7, 7]
    assert meters["peak_ccu"] == 10


@pytest.mark.parametrize("qos", [0, 1])
def test_drops_conservation_and_handshakes(qos):
    book, meters = run(days=2, devices=300, drops_per_device_per_day=6.0, qos=qos, seed=5)
    c = book.counts
    conserved(c)
    assert c["connections"] > 0.8 * 300 * 2 * 6  # Poisson(3,600): a few overlapping drops are void
    assert c["full_handshakes"] + c["resumed_handshakes"] == c["connections"]
    assert c["resumed_handshakes"] > 0
    assert (c["iot_dropped"] > 0) == (qos == 0)  # QoS 1 loses nothing with a dead link
    conn = book.series["iot_connections"]
    assert conn.min() < 300 and meters["peak_ccu"] <= 300


def test_random_fleet_message_count_within_poisson_free_bounds():
    # mixed moving/parked: every device-minute sends between 60/I_max-1 and 60/I_min+1 reports (parked: 0..1)
    book, _ = run(devices=100, seed=9, **QUIET)
    n = book.counts["iot_messages_sent"]
    assert 100 * 1440 * 0.2 <= n <= 100 * 1440 * 7
    # long-run moving fraction 0.25: expected reports/min ~ 0.25 * 60/20 + 0.75 * 0.2 = 0.9 (1/E[I] ~ 3.3/min)
    assert 0.5 < n / (100 * 1440) < 1.5


def test_same_seed_same_result_different_seed_differs():
    a, ma = run(devices=50, seed=11)
    b, mb = run(devices=50, seed=11)
    c, _ = run(devices=50, seed=12)
    assert a.counts == b.counts and ma == mb
    assert all(np.array_equal(a.bytes[k], b.bytes[k]) for k in a.bytes)
    assert a.counts != c.counts


def test_channel_suspension_rejects_and_causes_a_reconnect_storm():
    events = []
    limits = IotLimits(channel_messages_per_minute=18)
    limits.notify = lambda event, **info: events.append((event, info))  # type: ignore[attr-defined]
    # 10 devices per channel x 2 reports/min = 20/min > 18: the channel trips every cycle
    book, _ = run(
        devices=20,
        channels=2,
        moving_fraction=1.0,
        moving_interval_s=(30, 30),
        qos=0,
        enforcer=limits,
        **QUIET,
    )
    c = book.counts
    conserved(c)
    assert c["channel_suspensions"] == len(events) > 100
    assert c["iot_rejected"] > 0  # beyond the limit at the crossing second, QoS 0: lost
    assert c["rejected_connections"] > 0  # reconnects during the 60-s suspension pay a handshake each
    assert c["full_handshakes"] + c["resumed_handshakes"] == c["connections"] + c["rejected_connections"]
    assert (book.series["iot_messages"] <= 2 * 18).all()  # delivered per minute never above the limits


def test_limit_above_bursts_never_suspends_and_qos1_loses_nothing():
    limits = IotLimits(channel_messages_per_minute=1000)
    # 100 devices x 2/min = 200/min; one reconnect burst cannot exceed 1,000: no suspension at all
    book, _ = run(devices=100, moving_fraction=1.0, moving_interval_s=(30, 30), enforcer=limits, **QUIET)
    assert book.counts["channel_suspensions"] == 0
    # a limit just below the steady rate suspends, and QoS 1 keeps every message (re-sent after reconnecting)
    limits = IotLimits(channel_messages_per_minute=38)  # 20 devices x 2/min = 40/min
    book, _ = run(
        devices=20, moving_fraction=1.0, moving_interval_s=(30, 30), qos=1, enforcer=limits, **QUIET
    )
    c = book.counts
    conserved(c)
    assert c["channel_suspensions"] > 0 and c["iot_rejected"] == 0 and c["iot_retransmitted"] > 0


def test_scenario_file_validates():
    from sim.scenario import load_scenario

    s = load_scenario("scenarios/iot-trackers.yaml")
    assert isinstance(s.iot, IotFleetConfig) and s.iot.devices == 1000
