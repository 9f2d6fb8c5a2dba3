"""``sim protocol``: the wire model's bytes per connection and per message, as a table or JSON, for a scenario's
protocol settings; every figure is the model's own (:class:`sim.protocol.Protocol`), added up as the world adds it."""

from __future__ import annotations

import json

import pytest

from sim.cli import main
from sim.protocol import Protocol, ProtocolConfig


def run_json(capsys, *argv) -> dict:
    assert main(["protocol", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_defaults_are_the_models_figures(capsys):
    doc = run_json(capsys)
    app, p = doc["app"], Protocol(ProtocolConfig())
    full = app["connection"]["connect (full handshake)"]
    b = p.connect(False)
    for d in ("out", "in"):
        assert full[d]["wire"] == b.total(d) and full[d]["session"] == b.total(d, billed_only=True)
        assert sum(full[d]["bytes"].values()) == full[d]["wire"]
    assert full["out"]["bytes"]["tls_handshake"] == 2509  # PF §1.3: TLS 1.3, ECDSA leaf + intermediate
    assert app["tls_handshake"]["full"] == {"in": 330, "out": 2509}
    assert sum(f["bytes"] for f in app["tls_flights"]["full"] if f["direction"] == "out") == 2509
    text = app["messages"]["text"]
    assert text["payload"] == 250
    assert text["delivered"]["out"]["wire"] == p.message(250, "out").total("out") == 250 + 40 + 22 + 52
    receipt = app["messages"]["receipt"]["delivered"]["out"]["bytes"]
    assert "payload" not in receipt and receipt["app_protocol"] == 24 + 40  # metered as protocol, as the world does


def test_settings_change_the_figures(capsys):
    doc = run_json(capsys, "--set", "protocol.tls=1.2", "--set", "protocol.cert_chain=rsa")
    assert doc["app"]["tls_handshake"]["full"]["out"] == 3221  # PF §1.3: TLS 1.2 RSA leaf + intermediate
    assert doc["app"]["protocol"]["tls"] == "1.2"


def test_a_scenario_with_a_fleet_shows_both(capsys):
    doc = run_json(capsys, "scenarios/iot-trackers.yaml")
    assert "app" not in doc  # the scenario's population is no chat app (monthly_active_fraction 0)
    assert doc["iot"]["protocol"]["app"] == "mqtt311" and "telemetry" in doc["iot"]["messages"]
    both = run_json(capsys, "scenarios/iot-trackers.yaml", "--set", "population.monthly_active_fraction=0.5")
    assert set(both) == {"scenario", "app", "iot"}
    up = doc["iot"]["messages"]["telemetry"]["uploaded"]
    assert up["out"]["bytes"]["app_protocol"] == 4  # the QoS 1 PUBACK (MQTT 3.1.1 §3.4)


def test_the_table_prints_every_event_and_the_handshake(capsys):
    assert main(["protocol", "--set", "protocol.app=mqtt5"]) == 0
    out = capsys.readouterr().out
    for row in ("connect (full handshake)", "keep-alive cycle", "disconnect (silent)", "text (250 B) uploaded"):
        assert row in out
    assert "TLS handshake full: client -> server 330 B, server -> client 2,509 B" in out


@pytest.mark.parametrize("argv", [["--set", "protocol.tls=9"], ["--set", "population.users=3"],
                                  ["no-such-scenario.yaml"], ["--set", "protocol.nope=1"]])
def test_bad_input_is_one_line_and_exit_2(capsys, argv):
    assert main(["protocol", *argv]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and len(cap.err.strip().splitlines()) == 1 and cap.err.startswith("sim: error:")


def test_a_fleet_takes_more_wire_settings_under_iot_protocol(capsys):
    v4 = run_json(capsys, "scenarios/iot-trackers.yaml")["iot"]["connection"]["keep-alive cycle"]
    v6 = run_json(capsys, "scenarios/iot-trackers.yaml", "--set", "iot.protocol.ip_version=6")
    ka = v6["iot"]["connection"]["keep-alive cycle"]
    assert v6["iot"]["protocol"]["ip_version"] == 6
    # PINGREQ + PINGRESP + the ACK: three segments, each 20 B more behind an IPv6 header (RFC 8200 §3)
    assert ka["in"]["wire"] + ka["out"]["wire"] - v4["in"]["wire"] - v4["out"]["wire"] == 3 * 20
    assert ka["in"]["session"] == v4["in"]["session"]
    assert main(["protocol", "scenarios/iot-trackers.yaml", "--set", "iot.protocol.tls=1.2"]) == 2
    assert "set by the fleet's own key iot.tls" in capsys.readouterr().err


def _self_signed_pem(host: str) -> bytes:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=90))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def test_a_chain_beside_the_scenario_sizes_the_handshake_and_a_bad_one_is_one_line(tmp_path, capsys):
    """A relative certificate_chain is read beside the scenario file; the Certificate message grows with the DER
    certificate (RFC 8446 §4.4.2: 4 + 1 + 3 + 3 + DER + 2, in a record of +22 B)."""
    from cryptography import x509

    pem = _self_signed_pem("chat.example.com")
    (tmp_path / "chain.pem").write_bytes(pem)
    der = len(x509.load_pem_x509_certificate(pem).public_bytes(__import__("cryptography").hazmat.primitives
                                                               .serialization.Encoding.DER))
    (tmp_path / "s.yaml").write_text("name: s\npopulation: {users: 10}\n"
                                     "protocol: {certificate_chain: chain.pem, chain_includes_root: true}\n")
    flights = run_json(capsys, str(tmp_path / "s.yaml"))["app"]["tls_flights"]["full"]
    assert flights[1]["direction"] == "out"
    cert_record = 22 + 4 + 1 + 3 + 3 + der + 2
    # + ServerHello 127, change_cipher_spec 6, EncryptedExtensions 28, CertificateVerify 22 + 8 + the P-256 signature
    # (expected DER length, ~71 B), Finished 74 (PF §1.2)
    assert flights[1]["bytes"] == pytest.approx(127 + 6 + 28 + cert_record + 22 + 8 + 71 + 74, abs=1)
    (tmp_path / "bad.yaml").write_text("name: s\npopulation: {users: 10}\nprotocol: {certificate_chain: nope.pem}\n")
    assert main(["protocol", str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err
    assert "protocol.certificate_chain" in err and "cannot read certificate chain" in err and len(err.splitlines()) == 1
