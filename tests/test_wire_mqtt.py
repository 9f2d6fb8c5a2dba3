"""sim.protocol.mqtt against the real thing: mosquitto and paho-mqtt on 127.0.0.1, through a counting relay.

A broker is started on a free port with a temporary configuration (one listener, anonymous access: the client
still sends the default configuration's 13-B user name and 32-B password, which mosquitto accepts unchecked).
paho-mqtt (MQTT 3.1.1 and 5) connects through a TCP relay that forwards bytes both ways and records them per
direction and per flight (a run of bytes in one direction); the byte streams are cut into MQTT control packets
(fixed header + Remaining Length, MQTT 3.1.1 §2.2, MQTT 5.0 §2.1) and each packet is compared with the model,
within 5 % of the measurement.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from sim.protocol import ProtocolConfig, mqtt

paho = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed (pip install -e '.[dev]')")

TOLERANCE = 0.05
USER, PASSWORD = "u" * 13, "p" * 32  # the default configuration's 13-B user and 32-B password (PF §3.1)
CLIENT_ID = "sim-wire-test-client-024"  # 24 B, the default mqtt_client_id_len
# Concurrent sessions need distinct ids (a broker drops the older connection of an id): same length per app.
IDS = {"mqtt311": "sim-wire-test-client-311", "mqtt5": "sim-wire-test-client-005"}
TOPIC = "sim/wire/test/topic/t23"  # 23 B, the default mqtt_topic_len
LONELY_TOPIC = "sim/wire/test/nobody/23"  # 23 B, nobody subscribes to it
PAYLOAD = b"x" * 100  # PF §3.1's 100-B PUBLISH
TIMEOUT = 5.0
TYPES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 8: "SUBSCRIBE", 9: "SUBACK", 12: "PINGREQ",
         13: "PINGRESP", 14: "DISCONNECT"}


def _mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(cond: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Relay:
    """Forwards one TCP connection from 127.0.0.1:``port`` to 127.0.0.1:``upstream``, counting its bytes.

    ``data[d]``: every byte seen in direction ``d`` ("in" = client -> server, "out" = server -> client);
    ``flights``: (direction, bytes) of each run of bytes in one direction.
    """

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.data = {"in": bytearray(), "out": bytearray()}
        self.flights: list[list] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(TIMEOUT)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _record(self, direction: str, chunk: bytes) -> None:
        with self._lock:
            self.data[direction] += chunk
            if self.flights and self.flights[-1][0] == direction:
                self.flights[-1][1] += len(chunk)
            else:
                self.flights.append([direction, len(chunk)])

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        try:
            while chunk := src.recv(65536):
                self._record(direction, chunk)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (dst,):
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

    def _run(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        server = socket.create_connection(("127.0.0.1", self.upstream), timeout=TIMEOUT)
        client.settimeout(None)
        server.settimeout(None)
        up = threading.Thread(target=self._pump, args=(client, server, "in"), daemon=True)
        up.start()
        self._pump(server, client, "out")
        up.join(TIMEOUT)
        client.close()
        server.close()

    def close(self) -> None:
        self._listener.close()
        self._thread.join(TIMEOUT)

    def snapshot(self, direction: str) -> bytes:
        with self._lock:
            return bytes(self.data[direction])


def packets(stream: bytes) -> list[tuple[str, int, bytes]]:
    """(type, size, packet bytes) of each MQTT control packet in ``stream``, which must hold whole packets."""
    out, i = [], 0
    while i < len(stream):
        rl, mult, j = 0, 1, i + 1
        while True:  # Remaining Length: MQTT 3.1.1 §2.2.3 / MQTT 5.0 §1.5.5
            b = stream[j]
            rl += (b & 127) * mult
            mult *= 128
            j += 1
            if not b & 128:
                break
        end = j + rl
        if end > len(stream):
            raise AssertionError(f"truncated MQTT packet at byte {i}")
        out.append((TYPES.get(stream[i] >> 4, f"type{stream[i] >> 4}"), end - i, stream[i:end]))
        i = end
    return out


def _has(relay: Relay, direction: str, kind: str) -> bool:
    try:
        return any(t == kind for t, _, _ in packets(relay.snapshot(direction)))
    except (AssertionError, IndexError):  # a packet still arriving
        return False


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    exe = _mosquitto()
    if exe is None:
        pytest.skip("mosquitto not installed: .ci/run installs it with apt when run as root")
    port = _free_port()
    conf = tmp_path_factory.mktemp("mosquitto") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"mosquitto exited: {proc.stderr.read().decode(errors='replace')[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return True
            except OSError:
                return False
        _wait(up, "mosquitto to listen")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(TIMEOUT)
        proc.stderr.close()


Sizes = dict[tuple[str, str], list[int]]


def session(port: int, app: str, client_id: str, full: bool) -> tuple[Sizes, dict[tuple[str, str], list[bytes]]]:
    """One paho connection through a relay; ``full``: subscribe, publish (to a subscribed and a lonely topic),
    receive, ping and disconnect, else connect and disconnect. Packet sizes, and the packets, by (direction,
    label)."""
    relay = Relay(port)
    v5 = app == "mqtt5"
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=paho.MQTTv5 if v5 else paho.MQTTv311)
    client.username_pw_set(USER, PASSWORD)
    done: dict[str, object] = {}
    client.on_connect = lambda c, u, f, rc, p=None: done.setdefault("connack", rc)
    client.on_subscribe = lambda c, u, mid, rcs, p=None: done.setdefault("suback", rcs)
    client.on_publish = lambda c, u, mid, rc, p=None: done.setdefault(f"puback{mid}", rc)
    client.on_message = lambda c, u, msg: done.setdefault("message", msg.payload)
    mids: dict[int, str] = {}
    try:
        client.connect("127.0.0.1", relay.port, keepalive=1 if full else 60)
        client.loop_start()
        _wait(lambda: "connack" in done, "CONNACK")
        if full:
            client.subscribe(TOPIC, qos=1)
            _wait(lambda: "suback" in done, "SUBACK")
            mid = client.publish(TOPIC, PAYLOAD, qos=1).mid
            mids[mid] = "PUBACK"
            _wait(lambda: f"puback{mid}" in done and "message" in done, "PUBACK and the delivered PUBLISH")
            mid = client.publish(LONELY_TOPIC, PAYLOAD, qos=1).mid
            mids[mid] = "PUBACK lonely"
            _wait(lambda: f"puback{mid}" in done, "PUBACK of the lonely PUBLISH")
            _wait(lambda: _has(relay, "out", "PINGRESP"), "PINGREQ/PINGRESP (keep-alive 1 s)", timeout=4.0)
        client.disconnect()
        _wait(lambda: _has(relay, "in", "DISCONNECT"), "DISCONNECT")
    finally:
        client.loop_stop()
        relay.close()
    sizes: Sizes = {}
    raw_packets: dict[tuple[str, str], list[bytes]] = {}
    for d in ("in", "out"):
        stream = relay.snapshot(d)
        parsed = packets(stream)
        assert sum(n for _, n, _ in parsed) == len(stream) == sum(n for dd, n in relay.flights if dd == d)
        for kind, n, raw in parsed:
            if kind == "PUBACK" and d == "out":
                kind = mids[int.from_bytes(raw[2:4], "big")]
            sizes.setdefault((d, kind), []).append(n)
            raw_packets.setdefault((d, kind), []).append(raw)
    return sizes, raw_packets


def model(app: str, client_id_len: int, broker_profile: str = "mosquitto") -> dict[tuple[str, str], int]:
    """The model's size of each packet of :func:`session` for the matching configuration."""
    cfg = ProtocolConfig(app=app, tls="off", mqtt_client_id_len=client_id_len, mqtt_username_len=len(USER),
                         mqtt_password_len=len(PASSWORD), mqtt_topic_len=len(TOPIC), mqtt_qos=1,
                         mqtt_subscriptions=1, mqtt_broker=broker_profile)
    (_, connect), (_, connack), (_, subscribe), (_, suback) = mqtt.login_packets(cfg)
    publish = len(PAYLOAD) + int(mqtt.publish_overhead(cfg, np.array([len(PAYLOAD)]))[0])
    return {
        ("in", "CONNECT"): connect, ("out", "CONNACK"): connack,
        ("in", "SUBSCRIBE"): subscribe, ("out", "SUBACK"): suback,
        ("in", "PUBLISH"): publish, ("out", "PUBLISH"): publish,
        ("out", "PUBACK"): mqtt.puback_bytes(cfg), ("in", "PUBACK"): mqtt.puback_bytes(cfg),
        ("out", "PUBACK lonely"): mqtt.puback_bytes(cfg, subscribed=False),
        ("in", "PINGREQ"): mqtt.PING, ("out", "PINGRESP"): mqtt.PING, ("in", "DISCONNECT"): mqtt.DISCONNECT,
    }


def mismatches(measured: Sizes, expected: dict[tuple[str, str], int],
               tolerance: float = TOLERANCE) -> list[str]:
    """Each measured packet whose model size is off by more than ``tolerance`` of the measurement, and each
    packet seen on one side only."""
    bad = [f"{k}: measured, not modelled" for k in measured if k not in expected]
    for key, want in expected.items():
        if key not in measured:
            bad.append(f"{key}: modelled, not measured")
            continue
        bad += [f"{key}: measured {n} B, model {want} B" for n in measured[key] if abs(want - n) > tolerance * n]
    return bad


@pytest.fixture(scope="module")
def sessions(broker: int) -> dict[tuple[str, str], tuple[Sizes, dict[tuple[str, str], list[bytes]]]]:
    """Sessions run once for the module: per (app, client id) their packet sizes. The four run concurrently
    (each waits a second for its keep-alive ping)."""
    runs = [(app, cid, cid != "") for app in ("mqtt311", "mqtt5") for cid in (CLIENT_ID, "")]
    results: dict[tuple[str, str], object] = {}

    def one(app: str, cid: str, full: bool) -> None:
        try:
            results[app, cid] = session(broker, app, IDS[app] if cid else "", full)
        except BaseException as e:  # re-raised in the test thread
            results[app, cid] = e

    threads = [threading.Thread(target=one, args=r, daemon=True) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(4 * TIMEOUT)
    for key, r in results.items():
        if isinstance(r, BaseException):
            raise AssertionError(f"session {key} failed: {r!r}") from r
    assert len(results) == len(runs), "a session did not finish"
    return results  # type: ignore[return-value]


@pytest.fixture(scope="module")
def measured(sessions) -> dict[tuple[str, str], Sizes]:
    """Packet sizes per (app, client id) of :func:`sessions`."""
    return {k: sizes for k, (sizes, _) in sessions.items()}


@pytest.mark.parametrize("app", ["mqtt311", "mqtt5"])
def test_every_packet_matches_mosquitto(measured, app):
    got = measured[app, CLIENT_ID]
    expected = model(app, len(CLIENT_ID))
    if app == "mqtt311":  # 3.1.1 has no reason codes: the lonely PUBLISH gets a plain PUBACK
        assert got["out", "PUBACK lonely"] == [mqtt.PUBACK]
    assert mismatches(got, expected) == []


@pytest.mark.parametrize("app", ["mqtt311", "mqtt5"])
def test_assigned_client_identifier(measured, app):
    got = measured[app, ""]
    expected = model(app, 0)
    login = {k: expected[k] for k in (("in", "CONNECT"), ("out", "CONNACK"), ("in", "DISCONNECT"))}
    assert mismatches(got, login) == []
    # mosquitto 2.0: MQTT 5 CONNACK = 11 B + Assigned Client Identifier (1 + 2 + len("auto-<uuid>")) = 55 B
    assert got["out", "CONNACK"] == [55 if app == "mqtt5" else 4]


def test_connack_and_puback_properties_measured(sessions):
    """The figures the model cites: mosquitto 2.0's MQTT 5 CONNACK is 11 B, not the 5-B minimum, and carries
    Receive Maximum 20 and Topic Alias Maximum 10 (MQTT 5.0 §3.2.2.3.3, §3.2.2.3.8); an empty client id adds
    the Assigned Client Identifier (§3.2.2.3.7) "auto-" + UUID."""
    v5, raw = sessions["mqtt5", CLIENT_ID]
    assert v5["out", "CONNACK"] == [11] and v5["out", "SUBACK"] == [6]
    assert v5["out", "PUBACK"] == [4] and v5["out", "PUBACK lonely"] == [5]
    assert raw["out", "PUBACK lonely"][0][4] == 0x10  # No matching subscribers
    connack = raw["out", "CONNACK"][0]
    assert connack[4] == 6 and sorted([connack[5:8], connack[8:11]]) == [b"\x21\x00\x14", b"\x22\x00\x0a"]
    assigned = sessions["mqtt5", ""][1]["out", "CONNACK"][0]
    assert b"\x12\x00\x29auto-" in assigned and len(assigned) == 55
    assert sessions["mqtt311", CLIENT_ID][0]["out", "CONNACK"] == [4]


def test_a_model_fault_fails_the_comparison(measured):
    """The comparison is not vacuous: the spec-minimum ("bare") CONNACK is 5 B against mosquitto's 11 B."""
    bad = mismatches(measured["mqtt5", CLIENT_ID], model("mqtt5", len(CLIENT_ID), broker_profile="bare"))
    assert any("CONNACK" in b for b in bad)
    assert any("PUBACK lonely" in b for b in bad)
    off_by_one = model("mqtt311", len(CLIENT_ID)) | {("in", "PINGREQ"): mqtt.PING + 1}
    assert mismatches(measured["mqtt311", CLIENT_ID], off_by_one) == ["('in', 'PINGREQ'): measured 2 B, model 3 B"]
