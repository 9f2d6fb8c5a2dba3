"""sim.protocol reproduces the measured and RFC-computed sizes of shared/reference/protocol-facts.md (PF)."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest

from sim.protocol import (
    Bytes,
    Protocol,
    ProtocolConfig,
    mqtt_remaining_length_size,
    ws_frame_header_size,
)


def proto(**kw) -> Protocol:
    return Protocol(ProtocolConfig(**kw))


def wire(b: Bytes) -> float:
    return b.total("in") + b.total("out")


# -- TLS handshakes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tls", "chain", "root", "expected"),
    [  # PF §1.3 table, [M-TLS]
        ("1.3", "ecdsa", False, (330, 2509)),
        ("1.3", "rsa", False, (330, 3648)),
        ("1.3", "ecdsa", True, (330, 3077)),
        ("1.3", "rsa", True, (330, 5064)),
        ("1.2", "ecdsa", False, (254, 2082)),
        ("1.2", "rsa", False, (254, 3221)),
        ("1.2", "ecdsa", True, (254, 2649)),
        ("1.2", "rsa", True, (254, 4635)),
    ],
)
def test_full_handshake_bytes(tls, chain, root, expected):
    p = proto(tls=tls, cert_chain=chain, chain_includes_root=root)
    assert p.handshake_bytes(resumed=False) == expected
    b = p.connect(resumed=False)
    assert (b.get("in", "tls_handshake"), b.get("out", "tls_handshake")) == expected


def test_no_tickets_drops_ticket_records():
    assert proto(session_tickets=False).handshake_bytes(False) == (330, 2509 - 510)  # PF §1.3: 2 x 255 B
    assert proto(tls="1.2", session_tickets=False).handshake_bytes(False) == (254, 2082 - 191)  # 186 + 5 B
    # nothing to resume with: a "resumed" connect is a full handshake
    assert proto(session_tickets=False).handshake_bytes(True) == (330, 1999)


def test_resumed_handshake_bytes():
    assert proto().handshake_bytes(resumed=True) == (601, 496)  # PF §1.4
    assert proto(tls="1.2").handshake_bytes(resumed=True) == (568, 141)
    assert proto(cert_chain="rsa", chain_includes_root=True).handshake_bytes(True) == (601, 496)


def test_handshake_is_mostly_server_to_client():
    for chain in ("ecdsa", "rsa"):
        c2s, s2c = proto(cert_chain=chain).handshake_bytes(False)
        assert 0.84 <= s2c / (c2s + s2c) <= 0.95  # PF §0


def test_pq_hybrid_keyshare():
    assert proto(pq_hybrid_keyshare=True).handshake_bytes(False) == (330 + 1184, 2509 + 1088)
    with pytest.raises(pydantic.ValidationError):
        ProtocolConfig(tls="1.2", pq_hybrid_keyshare=True)


@pytest.mark.parametrize(
    ("kw", "resumed", "expected"),
    [  # PF §1.3 / §1.4 "wire incl. TCP 3WHS + 52 B/segment + delayed ACKs"
        ({}, False, 3479),
        ({"cert_chain": "rsa"}, False, 4670),
        ({"cert_chain": "rsa", "chain_includes_root": True}, False, 6190),
        ({"chain_includes_root": True}, False, 4047),
        ({"tls": "1.2", "cert_chain": "rsa"}, False, 4167),
        ({"tls": "1.2"}, False, 2976),
        ({}, True, 1685),
        ({"tls": "1.2"}, True, 1193),
    ],
)
def test_handshake_wire_totals(kw, resumed, expected):
    p = proto(**kw)
    assert wire(p.tcp_handshake() + p.tls_handshake(resumed)) == expected


def test_tls12_cipher_changes_only_the_finished_records():
    gcm, chacha = (
        proto(tls="1.2").handshake_bytes(False),
        proto(tls="1.2", tls12_cipher="chacha").handshake_bytes(False),
    )
    assert (gcm[0] - chacha[0], gcm[1] - chacha[1]) == (8, 8)  # 29 - 21 B on one Finished per direction


# -- TCP ------------------------------------------------------------------------------------------------------


def test_tcp_three_way_handshake():
    b = proto().tcp_handshake()
    assert (b.get("in", "tcpip"), b.get("out", "tcpip")) == (60 + 52, 60)  # PF §2: 172 B
    assert wire(proto(ip_version=6).tcp_handshake()) == 232
    assert proto().segment_header == 52 and proto(ip_version=6).segment_header == 72
    assert proto(tcp_timestamps=False).segment_header == 40


def test_teardown():
    plain = proto(tls="off")
    assert wire(plain.disconnect(graceful=True)) == 208  # PF §2: FIN, ACK, FIN, ACK
    assert plain.disconnect(graceful=True).total("out", billed_only=True) == 0
    for p in (proto(), proto(tls="1.2"), proto(app="mqtt5")):
        assert wire(p.disconnect(graceful=False)) == 0  # NAT timeout: nothing on the wire
    b = proto().disconnect(True)
    assert b.get("out", "tls_handshake") == b.get("in", "tls_handshake") == 24  # close_notify, PF §1.1
    assert proto(tls="1.2").disconnect(True).get("out", "tls_handshake") == 31
    mq = proto(app="mqtt311").disconnect(True)
    assert mq.get("in", "app_protocol") == 2 and mq.get("in", "tls_record") == 22  # DISCONNECT


# -- TLS records ----------------------------------------------------------------------------------------------


def test_record_overheads():
    assert proto().tls_record_overhead() == 22  # RFC 8446 §5.2
    assert proto(tls="1.2").tls_record_overhead() == 29  # RFC 5288 §3
    assert proto(tls="1.2", tls12_cipher="chacha").tls_record_overhead() == 21  # RFC 7905 §2
    assert proto(tls="off").tls_record_overhead() == 0
    # [M-TLS] measured plaintext -> record: 1 -> 23, 1000 -> 1022, 16384 -> 16406 (1.3); 1 -> 30 (GCM), 1 -> 22
    assert proto().record_overhead(np.array([1, 1000, 16384])).tolist() == [22, 22, 22]
    assert int(proto(tls="1.2").record_overhead(1)) == 29
    assert int(proto(tls="1.2", tls12_cipher="chacha").record_overhead(1)) == 21


@pytest.mark.parametrize("etm", [False, True])
def test_cbc_padding_ranges(etm):
    n = np.arange(1, 16385)
    sha1 = proto(tls="1.2", tls12_cipher="cbc_sha1", encrypt_then_mac=etm).record_overhead(n)
    sha256 = proto(tls="1.2", tls12_cipher="cbc_sha256", encrypt_then_mac=etm).record_overhead(n)
    assert (sha1.min(), sha1.max()) == (42, 57)  # PF §1.1, RFC 5246 §6.2.3.2
    assert (sha256.min(), sha256.max()) == (54, 69)
    if etm:  # RFC 7366 §3: the padded ciphertext after the IV is whole blocks, the MAC follows it
        assert ((n + sha1 - 5 - 16 - 20) % 16 == 0).all() and ((n + sha256 - 5 - 16 - 32) % 16 == 0).all()
        assert sha1[0] == 5 + 16 + 16 + 20 - 1  # 1 B + 15 B padding = one block, then the 20-B MAC
    else:  # MAC-then-encrypt: the MAC is padded with the plaintext
        assert ((n + sha1 - 5 - 16) % 16 == 0).all()


def test_record_splitting():
    p = proto(app_header_bytes=0)
    assert p.message(40_000, "out").get("out", "tls_record") == 66  # PF §1.1: 3 records x 22 B
    assert p.message(16_384, "out").get("out", "tls_record") == 22
    assert p.message(16_385, "out").get("out", "tls_record") == 44
    assert proto(tls="1.2", app_header_bytes=0).message(40_000, "in").get("in", "tls_record") == 87


# -- MQTT ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("app", "broker", "connect", "connack"),
                         [("mqtt311", "mosquitto", 87, 4), ("mqtt5", "bare", 88, 5), ("mqtt5", "mosquitto", 88, 11)])
def test_mqtt_connect_connack(app, broker, connect, connack):
    # [M-MQTT], PF §3.1; mosquitto's MQTT 5 CONNACK adds Receive Maximum (3 B) and Topic Alias Maximum (3 B)
    b = proto(app=app, tls="off", mqtt_subscriptions=0, mqtt_broker=broker).login()
    assert (b.get("in", "app_protocol"), b.get("out", "app_protocol")) == (connect, connack)
    b = proto(app=app, mqtt_broker=broker).connect(resumed=False)
    sub, suback = (30, 5) if app == "mqtt311" else (31, 6)
    assert (b.get("in", "app_protocol"), b.get("out", "app_protocol")) == (connect + sub, connack + suback)
    assert b.get("in", "tls_record") == b.get("out", "tls_record") == 2 * 22


@pytest.mark.parametrize(
    ("app", "qos", "size"), [("mqtt311", 0, 127), ("mqtt311", 1, 129), ("mqtt5", 0, 128), ("mqtt5", 1, 131)]
)
def test_mqtt_publish_size(app, qos, size):
    b = proto(app=app, mqtt_qos=qos).message(100, "in")  # 23-B topic, [M-MQTT]
    assert b.get("in", "payload") + b.get("in", "app_protocol") == size
    assert b.get("in", "tls_record") == 22
    assert b.get("out", "app_protocol") == (4 if qos else 0)  # PUBACK
    assert b.get("out", "tls_record") == (22 if qos else 0)


def test_mqtt_remaining_length_boundaries():
    rl = np.array([0, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455])
    assert mqtt_remaining_length_size(rl).tolist() == [1, 1, 2, 2, 3, 3, 4, 4]
    with pytest.raises(ValueError):
        mqtt_remaining_length_size(268_435_456)
    # through PUBLISH: MQTT 3.1.1 QoS 0 with a 23-B topic has a 25-B variable header
    m = proto(app="mqtt311", mqtt_qos=0).messages(np.array([102, 103, 16_358, 16_359]), "out")
    assert (m["payload"] + 25).tolist() == [127, 128, 16_383, 16_384]
    assert m["app_protocol"].tolist() == [27, 28, 28, 29]


def test_mqtt_qos1_puback_accounting():
    m = proto(app="mqtt311").messages(np.array([100]), "out")
    # data segment + publisher's ACK of the PUBACK; opposite: the PUBACK segment, which carries the ACK
    assert m["tcpip"].tolist() == [104] and m["ack_tcpip"].tolist() == [52]
    assert m["ack_app"].tolist() == [4] and m["ack_tls_record"].tolist() == [22]


def test_keepalive_cycle():
    b = proto(app="mqtt311").keepalive()  # PF §3.1: 76 + 76 + 52 B
    assert b.get("in", "keepalive") == b.get("out", "keepalive") == 24
    assert (b.get("in", "tcpip"), b.get("out", "tcpip")) == (104, 52)
    assert wire(b) == 204
    assert wire(proto(app="mqtt5", tls="1.2").keepalive()) == 218  # PF §3.1 TLS 1.2-GCM
    assert wire(proto(app="mqtt311", ip_version=6).keepalive()) == 48 + 3 * 72
    assert set(b.out) | set(b.inb) == {"keepalive", "tcpip"}
    ws = proto(app="websocket", heartbeat_bytes=8).keepalive()  # Ping 6+8 up, Pong 2+8 down
    assert (ws.get("in", "keepalive"), ws.get("out", "keepalive")) == (14 + 22, 10 + 22)


def test_websocket_frame_headers():
    n = np.array([0, 125, 126, 65_535, 65_536])
    assert ws_frame_header_size(n, client_to_server=False).tolist() == [2, 2, 4, 4, 10]  # RFC 6455 §5.2
    assert ws_frame_header_size(n, client_to_server=True).tolist() == [6, 6, 8, 8, 14]
    b = proto(app="websocket", app_header_bytes=40, ws_permessage_deflate=False).message(100, "in")
    assert b.get("in", "app_protocol") == 40 + 8  # 140-B frame body from the client
    # permessage-deflate (RFC 7692): the 140-B body compressed by the message ratio, the payload's share of it
    z = proto(app="websocket", app_header_bytes=40, ws_deflate_ratio={"message": 0.5}).message(100, "in")
    assert z.get("in", "payload") == 50 and z.get("in", "payload") + z.get("in", "app_protocol") == 70 + 6


# -- TLS off, billing, vectorisation ------------------------------------------------------------------------------


@pytest.mark.parametrize("app", ["mesibo", "mqtt311", "mqtt5", "websocket"])
def test_tls_off_has_no_tls_bytes(app):
    p = proto(tls="off", app=app)
    assert p.handshake_bytes(False) == p.handshake_bytes(True) == (0, 0)
    events = [p.connect(False), p.connect(True), p.disconnect(True), p.keepalive(), p.message(50_000, "out")]
    for b in events:
        for d in ("in", "out"):
            assert b.get(d, "tls_handshake") == 0 and b.get(d, "tls_record") == 0
    m = p.messages(np.arange(0, 100_000, 997), "in")
    assert not m["tls_record"].any() and not m["ack_tls_record"].any()
    if app != "websocket":  # ping and pong are the same size (WebSocket masks only the client's Ping)
        assert p.keepalive().get("in", "keepalive") == p.keepalive().get("out", "keepalive")


def test_tcpip_never_billed():
    p = proto(app="mqtt5")
    for b in (p.connect(False), p.keepalive(), p.disconnect(True), p.message(3000, "out")):
        for d in ("in", "out"):
            assert b.get(d, "tcpip") > 0
            assert b.total(d, billed_only=True) == b.total(d) - b.get(d, "tcpip")
    assert Bytes(out={"tcpip": 52.0}).total("out", billed_only=True) == 0


CONFIGS = [
    {},
    {"tls": "1.2", "tls12_cipher": "cbc_sha1", "ip_version": 6, "mss": 1428},
    {"tls": "off", "tcp_timestamps": False},
    {"app": "mqtt311", "mqtt_qos": 0},
    {"app": "mqtt5", "mss": 536},
    {"app": "websocket", "tls": "1.2", "tls12_cipher": "chacha", "tls_max_record_plaintext": 4096},
]


@pytest.mark.parametrize("kw", CONFIGS)
@pytest.mark.parametrize("direction", ["in", "out"])
def test_vectorised_equals_scalar(kw, direction):
    p = proto(**kw)
    rng = np.random.default_rng(7)
    sizes = np.concatenate([rng.integers(0, 200_000, 150), [0, 1, 125, 126, 16_384, 65_536, 70_000]])
    m = p.messages(sizes, direction)
    assert all(v.shape == sizes.shape for v in m.values())
    other = "out" if direction == "in" else "in"
    for i, n in enumerate(sizes):
        b = p.message(int(n), direction)
        for key in ("payload", "app_protocol", "tls_record", "tcpip"):
            assert b.get(direction, key) == m[key][i]
        assert b.get(other, "tcpip") == m["ack_tcpip"][i]
        assert b.get(other, "app_protocol") == m["ack_app"][i]
        assert b.get(other, "tls_record") == m["ack_tls_record"][i]


def test_messages_on_a_large_batch_match_the_scalar_path():
    # Speed is measured by benchmarks/bench_protocol.py; here a million-message batch must agree with the
    # scalar path on a sample, element by element.
    p = proto(app="mqtt5")
    sizes = np.random.default_rng(1).integers(0, 40_000, 1_000_000)
    m = p.messages(sizes, "out")
    assert m["tcpip"].shape == (1_000_000,)
    for i in np.random.default_rng(2).integers(0, sizes.size, 50):
        one = p.messages(sizes[i : i + 1], "out")
        assert all(m[k][i] == one[k][0] for k in m)


def test_messages_rejects_bad_input():
    p = proto()
    with pytest.raises(TypeError):
        p.messages(np.array([1.5]), "out")
    with pytest.raises(ValueError):
        p.messages(np.array([-1]), "out")
    with pytest.raises(ValueError):
        p.messages(np.array([1]), "up")


# -- Bytes and config ---------------------------------------------------------------------------------------------


def test_bytes_arithmetic():
    a = Bytes(out={"payload": 10, "tcpip": 52}, inb={"tcpip": 52})
    b = Bytes.of("out", "payload", 5)
    s = a + b
    assert s.get("out", "payload") == 15 and s.get("in", "payload") == 0
    assert s.scaled(2).total("out") == 2 * (15 + 52)
    assert sum([a, b, b]).get("out", "payload") == 20
    assert a + Bytes() == a
    with pytest.raises(ValueError):
        Bytes(out={"bogus": 1})
    with pytest.raises(TypeError):
        a.out["payload"] = 0  # read-only


def test_config_is_strict_and_frozen():
    with pytest.raises(pydantic.ValidationError):
        ProtocolConfig(tls_version="1.3")
    cfg = ProtocolConfig()
    with pytest.raises(pydantic.ValidationError):
        cfg.tls = "off"
    assert Protocol().cfg == cfg


def test_a_hello_retry_share_costs_its_share_of_the_retry_segments_and_acks():
    """With hello_retry_share s, a full TLS 1.3 handshake's bytes -- records and TCP/IP alike -- are the mixture
    (1 - s) x no retry + s x always retry: the HRR and second-hello flights' segments and ACKs count s times."""
    def hs(s):
        return proto(hello_retry_share=s, server_name="chat.example.com").tls_handshake(resumed=False)

    never, always, half = hs(0.0), hs(1.0), hs(0.5)
    for d in ("out", "in"):
        for cat in ("tls_handshake", "tcpip"):
            assert half.get(d, cat) == pytest.approx((never.get(d, cat) + always.get(d, cat)) / 2), (d, cat)
    assert always.get("in", "tcpip") - never.get("in", "tcpip") >= 2 * 52  # the second hello's segment + an ACK
    assert hs(0.5).get("out", "tcpip") != hs(0.0).get("out", "tcpip")
    assert proto(hello_retry_share=0.5).tls_handshake(resumed=True) == proto().tls_handshake(resumed=True)
