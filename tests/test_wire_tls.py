"""The TLS handshake model (sim/protocol/tls.py, certificates.py) against the real thing on loopback.

Python's ``ssl`` (OpenSSL 3.0) client and server talk through ``ssl.MemoryBIO`` pairs; every byte one side
writes is counted, per direction, until both have finished (TLS 1.3 tickets included). The chains are generated
here with ``cryptography`` and handed to the model as PEM files. Each figure (client -> server, server ->
client) must be within 5 % of the measurement, both ways.

The model's ``openssl`` hello is the [M-TLS] client's (PF §1.2-1.3): for TLS 1.3 a client offering one group
(X25519, 245 B), for TLS 1.2 a TLS 1.2-only client (156 B). :func:`pf_client` builds those; Python's default
context (ten groups, 262 B, padded to 512 B even without SNI) is compared where it sends SNI, as it always does
in practice (``check_hostname``), and then pads exactly as the model does.
"""

from __future__ import annotations

import datetime
import ssl

import numpy as np
import pytest

from sim.protocol import Protocol, ProtocolConfig, tls
from sim.protocol import certificates as certs

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa  # noqa: E402
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID  # noqa: E402

HOST = "mqtt-broker-eu-west.example.com"[:30]  # a 30-character host name
assert len(HOST) == 30
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
TOLERANCE = 0.05


# -- chains ---------------------------------------------------------------------------------------------------------
def _name(cn: str, ca: bool) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if ca:
        attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                 x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Trust Services"), *attrs]
    return x509.Name(attrs)


def _sct_list(n: int = 2) -> bytes:
    """extnValue of a dummy RFC 6962 SCT list: n SCTs (version, 32-B log id, timestamp, no extensions, ECDSA sig)."""
    body = b""
    for i in range(n):
        sct = b"\x00" + bytes([i + 1]) * 32 + (1_767_225_600_000).to_bytes(8, "big") + b"\x00\x00" \
            + b"\x04\x03" + (71).to_bytes(2, "big") + b"\x30" * 71
        body += len(sct).to_bytes(2, "big") + sct
    inner = len(body).to_bytes(2, "big") + body
    return b"\x04\x81" + bytes([len(inner)]) + inner if len(inner) < 256 else b"\x04\x82" + len(inner).to_bytes(2, "big") + inner


def _cert(cn, key, issuer_cn, issuer_key, *, ca, web_pki=False, alg=None):
    b = (x509.CertificateBuilder().subject_name(_name(cn, ca)).issuer_name(_name(issuer_cn, True))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(NOW).not_valid_after(NOW + datetime.timedelta(days=90 if not ca else 3650))
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    else:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    if web_pki:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                            critical=False)
        b = b.add_extension(x509.AuthorityInformationAccess([
            x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                   x509.UniformResourceIdentifier("http://ocsp.example-trust.test")),
            x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                   x509.UniformResourceIdentifier("http://crt.example-trust.test/int.der"))]),
            critical=False)
        b = b.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier("http://crl.example-trust.test/int.crl")], None, None, None)]),
            critical=False)
        b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2"),
                                                       _sct_list()), critical=False)
    return b.sign(issuer_key, alg)


class Chain:
    def __init__(self, tmp, label, leaf_key, certs_, web_pki=False):
        self.key_path = tmp / f"{label}-key.pem"
        self.key_path.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
        self.der = [len(c.public_bytes(serialization.Encoding.DER)) for c in certs_]
        pem = [c.public_bytes(serialization.Encoding.PEM) for c in certs_]
        self.path = tmp / f"{label}-chain.pem"  # leaf + intermediate: what the server sends
        self.path.write_bytes(b"".join(pem[:2]))
        self.full_path = tmp / f"{label}-fullchain-root.pem"  # leaf + intermediate + root
        self.full_path.write_bytes(b"".join(pem))

    def file(self, root: bool) -> str:
        return str(self.full_path if root else self.path)


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls-chains")
    out = {}
    # ECDSA: P-256 leaf signed by a P-384 intermediate signed by a P-384 root (PF §1.2's test chain shape)
    rk, ik, lk = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1()), \
        ec.generate_private_key(ec.SECP256R1())
    root = _cert("Example Root CA", rk, "Example Root CA", rk, ca=True, alg=hashes.SHA384())
    inter = _cert("Example ECC Intermediate CA", ik, "Example Root CA", rk, ca=True, alg=hashes.SHA384())
    out["ecdsa"] = Chain(tmp, "ecdsa", lk, [_cert(HOST, lk, "Example ECC Intermediate CA", ik, ca=False,
                                                  alg=hashes.SHA384()), inter, root])
    # Web-PKI-shaped leaf: 30-character name in CN and SAN, 2 SCTs, key usage, EKU, AIA, CRL DP
    out["webpki"] = Chain(tmp, "webpki", lk, [_cert(HOST, lk, "Example ECC Intermediate CA", ik, ca=False,
                                                    web_pki=True, alg=hashes.SHA384()), inter, root])
    # RSA-2048 throughout (a 4096-bit root would only slow the test)
    rrk, rik, rlk = (rsa.generate_private_key(65537, 2048) for _ in range(3))
    rroot = _cert("Example RSA Root", rrk, "Example RSA Root", rrk, ca=True, alg=hashes.SHA256())
    rinter = _cert("Example RSA Intermediate", rik, "Example RSA Root", rrk, ca=True, alg=hashes.SHA256())
    out["rsa"] = Chain(tmp, "rsa", rlk, [_cert(HOST, rlk, "Example RSA Intermediate", rik, ca=False, web_pki=True,
                                               alg=hashes.SHA256()), rinter, rroot])
    return out


# -- loopback measurement -------------------------------------------------------------------------------------------
def _records(data: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i < len(data):
        n = int.from_bytes(data[i + 3:i + 5], "big")
        out.append((data[i], data[i + 5:i + 5 + n]))
        i += 5 + n
    return out


class Measured:
    def __init__(self, c2s, s2c, flights, reused, client, server_end, client_out):
        self.c2s, self.s2c, self.flights, self.reused = c2s, s2c, flights, reused
        # OpenSSL drops a session from the server's cache when its SSL is freed without a shutdown
        # (ssl_clear_bad_session), so both ends stay alive as long as the measurement.
        self.client, self.server, self.client_out = client, server_end, client_out

    @property
    def client_hello(self) -> int:
        """Length of the first ClientHello handshake message (4-B header included)."""
        return len(_records(self.flights[0][1])[0][1])


def _handshake(cctx, sctx, sni=None, session=None) -> tuple[Measured, ssl.SSLObject]:
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = cctx.wrap_bio(c_in, c_out, server_hostname=sni, session=session)
    s = sctx.wrap_bio(s_in, s_out, server_side=True)
    flights, done = [], [False, False]

    def step(obj, i):
        if not done[i]:
            try:
                obj.do_handshake()
                done[i] = True
            except ssl.SSLWantReadError:
                pass

    for _ in range(12):
        step(c, 0)
        if data := c_out.read():
            flights.append(("c2s", data))
            s_in.write(data)
        step(s, 1)
        if data := s_out.read():
            flights.append(("s2c", data))
            c_in.write(data)
        if all(done) and not data:
            break
    assert all(done)
    try:  # let the client take in the TLS 1.3 tickets
        c.read(1)
    except ssl.SSLWantReadError:
        pass
    c2s = sum(len(d) for k, d in flights if k == "c2s")
    s2c = sum(len(d) for k, d in flights if k == "s2c")
    return Measured(c2s, s2c, flights, c.session_reused, c, s, c_out), c


def pf_client(version: str, alpn=None, curve: str | None = None) -> ssl.SSLContext:
    """The [M-TLS] client of PF §1.2-1.3: TLS 1.3 offering X25519 only; TLS 1.2 capped at 1.2."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    if version == "1.3":
        ctx.set_ecdh_curve(curve or "X25519")  # OpenSSL 3.0: sets the client's group list to this one group
    else:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def default_client(alpn=None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def server(chain: Chain, version: str, *, root=False, alpn=None, tickets=True, ciphers=None, curve=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(chain.file(root), chain.key_path)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if not tickets:
        if version == "1.3":
            ctx.num_tickets = 0
        else:
            ctx.options |= ssl.OP_NO_TICKET  # the server then caches sessions for resumption by session ID
    if ciphers:
        ctx.set_ciphers(ciphers)
    if curve:
        ctx.set_ecdh_curve(curve)
    return ctx


def measure(chain, version, *, client=None, sni=None, alpn=None, root=False, tickets=True, resumed=False):
    cctx = client if client is not None else pf_client(version, alpn)
    sctx = server(chain, version, root=root, alpn=alpn, tickets=tickets)
    full, c = _handshake(cctx, sctx, sni=sni)
    if not resumed:
        return full
    again, _ = _handshake(cctx, sctx, sni=sni, session=c.session)
    assert again.reused
    return again


def model(chain, version, *, sni=None, alpn=None, root=False, tickets=True, resumed=False, **kw):
    cfg = ProtocolConfig(tls=version, certificate_chain=chain.file(root), chain_includes_root=root, server_name=sni,
                         alpn=alpn or [], session_tickets=tickets, **kw)
    return Protocol(cfg).handshake_bytes(resumed)


def close(model_bytes, measured: Measured) -> bool:
    return all(abs(m - r) <= TOLERANCE * r for m, r in zip(model_bytes, (measured.c2s, measured.s2c), strict=True))


def assert_close(model_bytes, measured: Measured):
    got = (measured.c2s, measured.s2c)
    assert close(model_bytes, measured), f"model {model_bytes} vs measured {got}"


# -- the model against the measurements --------------------------------------------------------------------------------
CASES = [  # (chain, tls, sni, alpn, root, tickets, resumed)
    ("ecdsa", "1.3", None, None, False, True, False),
    ("ecdsa", "1.3", HOST, ["mqtt"], False, True, False),
    ("ecdsa", "1.3", None, None, False, True, True),
    ("ecdsa", "1.3", HOST, ["mqtt", "http/1.1"], False, True, True),
    ("ecdsa", "1.3", HOST, None, True, True, False),
    ("ecdsa", "1.3", HOST, None, False, False, False),
    ("rsa", "1.3", None, None, False, True, False),
    ("rsa", "1.3", HOST, ["mqtt"], True, True, False),
    ("webpki", "1.3", HOST, ["mqtt"], False, True, False),
    ("ecdsa", "1.2", None, None, False, True, False),
    ("ecdsa", "1.2", HOST, ["mqtt"], False, True, False),
    ("ecdsa", "1.2", None, None, False, True, True),  # by ticket
    ("ecdsa", "1.2", HOST, ["mqtt"], False, True, True),
    ("ecdsa", "1.2", None, None, False, False, False),  # no tickets: the server caches, 32-B session ID
    ("ecdsa", "1.2", HOST, None, False, False, True),  # by session ID (the issue's 284 / 141 B)
    ("ecdsa", "1.2", None, None, False, False, True),
    ("rsa", "1.2", None, None, True, True, False),
    ("webpki", "1.2", HOST, ["http/1.1"], False, True, False),
]


@pytest.mark.parametrize(("chain", "version", "sni", "alpn", "root", "tickets", "resumed"), CASES)
def test_handshake_matches_loopback(chains, chain, version, sni, alpn, root, tickets, resumed):
    ch = chains[chain]
    got = measure(ch, version, sni=sni, alpn=alpn, root=root, tickets=tickets, resumed=resumed)
    assert_close(model(ch, version, sni=sni, alpn=alpn, root=root, tickets=tickets, resumed=resumed), got)


@pytest.mark.parametrize("resumed", [False, True])
@pytest.mark.parametrize("alpn", [None, ["mqtt"]])
def test_python_default_client_with_sni(chains, alpn, resumed):
    """Python's default context (ten groups) sends SNI in practice; its hello is then padded like the model's."""
    got = measure(chains["webpki"], "1.3", client=default_client(alpn), sni=HOST, alpn=alpn, resumed=resumed)
    assert_close(model(chains["webpki"], "1.3", sni=HOST, alpn=alpn, resumed=resumed), got)
    if not resumed:
        assert got.client_hello == 512 == tls.client_hello(ProtocolConfig(server_name=HOST, alpn=alpn or []))


def test_issue_figures(chains):
    """The issue's loopback figures: 597 B client -> server for a TLS 1.3 full handshake (a 30-character SNI),
    284 / 141 B for a TLS 1.2 resumption by session ID."""
    full = measure(chains["ecdsa"], "1.3", sni=HOST)
    assert full.c2s == 597 == model(chains["ecdsa"], "1.3", sni=HOST)[0]
    by_id = measure(chains["ecdsa"], "1.2", sni=HOST, tickets=False, resumed=True)
    assert (by_id.c2s, by_id.s2c) == (284, 141)
    assert model(chains["ecdsa"], "1.2", sni=HOST, tickets=False, resumed=True) == (283, 141)  # PF hello 1 B shorter


def test_chain_file_is_read(chains):
    for label in ("ecdsa", "rsa", "webpki"):
        ch = certs.load_chain(chains[label].file(True))
        assert ch.der_sizes == tuple(chains[label].der) and ch.self_signed == (False, False, True)
        assert ch.sent(False) == tuple(chains[label].der[:2]) and ch.sent(True) == tuple(chains[label].der)
    assert certs.load_chain(chains["ecdsa"].path).leaf_key == certs.LeafKey("ecdsa", 256, "secp256r1")
    assert certs.load_chain(chains["rsa"].path).leaf_key.signature_bytes == 256
    webpki_leaf, plain_leaf = chains["webpki"].der[0], chains["ecdsa"].der[0]
    assert webpki_leaf - plain_leaf > 240  # the SCT list alone is ~240 B


def test_hello_retry_request(chains):
    """Python can force an HRR: the default client offers X25519 and P-256 with an X25519 share, the server
    accepts P-256 only (set_ecdh_curve sets its group list in OpenSSL 3.0)."""
    ch = chains["ecdsa"]
    sctx = server(ch, "1.3", curve="prime256v1")
    got, _ = _handshake(default_client(), sctx, sni=HOST)
    kinds = [(k, [(t, len(b)) for t, b in _records(d)]) for k, d in got.flights]
    assert kinds[1] == ("s2c", [(22, 88), (20, 1)])  # HRR (93-B record), then the server's CCS
    assert kinds[2][1][0] == (20, 1)  # the client's CCS goes before its second hello
    with_hrr = model(ch, "1.3", sni=HOST, hello_retry_share=1.0)
    assert_close(with_hrr, got)
    plain = model(ch, "1.3", sni=HOST)
    assert (with_hrr[0] - plain[0], with_hrr[1] - plain[1]) == (517, 93 + 33)  # RFC 8446 §4.1.4 arithmetic
    half = model(ch, "1.3", sni=HOST, hello_retry_share=0.5)
    assert half == pytest.approx(((plain[0] + with_hrr[0]) / 2, (plain[1] + with_hrr[1]) / 2))
    flights = tls.handshake_flights(ProtocolConfig(hello_retry_share=0.5), False)
    assert [d for d, _ in flights] == ["in", "out", "in", "out", "in", "out"]  # a flight each way more
    assert Protocol(ProtocolConfig(hello_retry_share=0.5)).tls_handshake(False).total("in") > 0


# -- encrypt-then-MAC -------------------------------------------------------------------------------------------------
def _cbc_session(chain, cipher: str, etm: bool, client_ciphers: bool):
    """A finished TLS 1.2 handshake on a CBC suite: (client SSLObject, its outgoing BIO, C->S, S->C bytes)."""
    cctx = pf_client("1.2")
    if client_ciphers:
        cctx.set_ciphers(cipher)
    if not etm:
        cctx.options |= 0x00080000  # SSL_OP_NO_ENCRYPT_THEN_MAC (OpenSSL 3.0 ssl.h); Python has no name for it
    sctx = server(chain, "1.2", ciphers=cipher)
    got, c = _handshake(cctx, sctx)
    return got


@pytest.mark.parametrize("etm", [True, False])
@pytest.mark.parametrize(("cipher", "family"), [("ECDHE-ECDSA-AES128-SHA", "cbc_sha1"),
                                                ("ECDHE-ECDSA-AES128-SHA256", "cbc_sha256")])
def test_encrypt_then_mac_records(chains, cipher, family, etm):
    # Python's default client list has no SHA-1 suites: offer that one explicitly (a shorter hello, so only the
    # records are compared); the SHA-256 suite is negotiated from the default list, handshake compared too.
    sha1 = family == "cbc_sha1"
    got = _cbc_session(chains["ecdsa"], cipher, etm, client_ciphers=sha1)
    c = got.client
    cfg = ProtocolConfig(tls="1.2", tls12_cipher=family, encrypt_then_mac=etm,
                         certificate_chain=chains["ecdsa"].file(False))
    sizes = np.array([1, 11, 12, 15, 16, 27, 28, 100, 1000, 16384])
    measured = []
    for p in sizes:
        c.write(b"x" * int(p))
        measured.append(len(got.client_out.read()) - int(p))
    assert tls.record_overhead(cfg, sizes).tolist() == measured
    if not sha1:
        assert_close(Protocol(cfg).handshake_bytes(False), got)


def test_encrypt_then_mac_arithmetic():
    # the issue: EtM "adds 4 B" to the CBC-SHA1 records it measured (e.g. 1,000 B: 49 vs 45)
    on, off = (tls.record_overhead(ProtocolConfig(tls="1.2", tls12_cipher="cbc_sha1", encrypt_then_mac=e), 1000)
               for e in (True, False))
    assert (int(on), int(off)) == (5 + 16 + 1008 - 1000 + 20, 5 + 16 + 1024 - 1000)
    # mobile stacks do not offer encrypt_then_mac: MAC-then-encrypt whatever the setting
    bssl = ProtocolConfig(tls="1.2", tls12_cipher="cbc_sha1", client_stack="boringssl")
    assert int(tls.record_overhead(bssl, 1000)) == int(off)


# -- the comparison catches a model fault -------------------------------------------------------------------------------
def test_a_model_fault_is_caught(chains, monkeypatch):
    ch = chains["ecdsa"]
    got = measure(ch, "1.3", sni=HOST, alpn=["mqtt"])
    assert close(model(ch, "1.3", sni=HOST, alpn=["mqtt"]), got)
    monkeypatch.setattr(tls, "pad_openssl", lambda n: n)  # forget RFC 7685 padding
    assert not close(model(ch, "1.3", sni=HOST, alpn=["mqtt"]), got)


# -- hand-computed arithmetic -------------------------------------------------------------------------------------------
def test_extension_lengths():
    assert tls.sni_extension(None) == 0 and tls.sni_extension("") == 0
    assert tls.sni_extension("a" * 30) == 2 + 2 + 2 + 1 + 2 + 30 == 39
    assert tls.alpn_extension([]) == 0
    assert tls.alpn_extension(["mqtt"]) == 2 + 2 + 2 + 1 + 4 == 11
    assert tls.alpn_extension(["h2", "http/1.1"]) == 6 + 3 + 9 == 18
    assert tls.alpn_server_extension(ProtocolConfig(alpn=["mqtt", "x"])) == 2 + 2 + 2 + 1 + 4
    assert tls.alpn_server_extension(ProtocolConfig()) == 0


@pytest.mark.parametrize(("n", "padded"), [(245, 245), (255, 255), (256, 512), (300, 512), (507, 512),
                                           (508, 513), (511, 516), (512, 512), (600, 600)])
def test_openssl_padding_boundaries(n, padded):
    # extensions_clnt.c: 0xff < n < 0x200 -> pad to 0x200; a 1-B padding extension when 512 - n <= 4
    assert tls.pad_openssl(n) == padded


def test_certificate_message_from_der_sizes():
    assert tls.certificate_message("1.3", [922, 701]) == 4 + 1 + 3 + (3 + 922 + 2) + (3 + 701 + 2) == 1641  # PF §1.2
    assert tls.certificate_message("1.3", [1285, 1292]) == 2595
    assert tls.certificate_message("1.2", [1285, 1292]) == 4 + 3 + 1288 + 1295 == 2590


@pytest.mark.parametrize(
    ("version", "kind", "root", "residue"),
    [("1.3", "ecdsa", False, 0), ("1.3", "rsa", False, 0), ("1.3", "ecdsa", True, 1), ("1.3", "rsa", True, 0),
     ("1.2", "ecdsa", False, 0), ("1.2", "rsa", False, 0), ("1.2", "ecdsa", True, 0), ("1.2", "rsa", True, 0)],
)
def test_composition_reproduces_pf_rows(monkeypatch, version, kind, root, residue):
    """PF §1.2 DER sizes (ECDSA 922 + 701, root 564; RSA 1,285 + 1,292, root 1,411) composed by the formula give the
    PF §1.3 rows; the one residue is a 70-B ECDSA signature in that measurement against the expected 71."""
    der = {"ecdsa": (922, 701, 564), "rsa": (1285, 1292, 1411)}[kind]
    key = certs.LeafKey("ecdsa", 256, "secp256r1") if kind == "ecdsa" else certs.LeafKey("rsa", 2048)
    fake = certs.CertificateChain("pf.pem", der, (False, False, True), key)
    monkeypatch.setattr(tls, "_chain", lambda cfg: fake)
    monkeypatch.setattr(certs, "check_chain_file", lambda path: path)  # the chain is the fake, no file to read
    composed = Protocol(ProtocolConfig(tls=version, certificate_chain="pf.pem", chain_includes_root=root))
    measured = Protocol(ProtocolConfig(tls=version, cert_chain=kind, chain_includes_root=root))
    (c1, s1), (c2, s2) = composed.handshake_bytes(False), measured.handshake_bytes(False)
    assert c1 == c2 and s1 - s2 == residue


def test_signature_sizes():
    assert certs.expected_ecdsa_signature(256) == pytest.approx(70.99, abs=0.01)
    assert [certs.LeafKey("ecdsa", b, c).signature_bytes for b, c in ((256, "secp256r1"), (384, "secp384r1"),
                                                                      (521, "secp521r1"))] == [71, 103, 138]
    assert certs.LeafKey("rsa", 3072).signature_bytes == 384 and certs.LeafKey("ed25519", 256).signature_bytes == 64


def test_client_stacks_by_hand():
    base = {"openssl": 245, "boringssl": 228 + 4, "apple": 275}  # tls.py docstring sums (+4: session_ticket ext)
    for stack, n in base.items():
        cfg = ProtocolConfig(client_stack=stack)
        assert tls.client_hello_unpadded(cfg) == n
        assert tls.client_hello(cfg) == (n if n < 256 else 512)
        sni = ProtocolConfig(client_stack=stack, server_name=HOST)
        assert tls.client_hello(sni) == 512  # n + 39 falls in 256..507 for every stack
    assert Protocol(ProtocolConfig(client_stack="apple")).handshake_bytes(False)[0] == 517 + 80
    # BoringSSL does not pad its second hello after an HRR (ssl_add_clienthello_tlsext, !used_hello_retry_request)
    b = ProtocolConfig(client_stack="boringssl", server_name=HOST)
    assert tls.second_client_hello(b) == 232 + 39 - 36 + 69
    assert tls.second_client_hello(ProtocolConfig(server_name=HOST)) == 512
    # post-quantum: OpenSSL PF +1,184 (share replaced); BoringSSL adds an X25519MLKEM768 entry beside X25519
    assert tls.client_hello(ProtocolConfig(pq_hybrid_keyshare=True)) == 245 + 1184
    assert tls.client_hello(ProtocolConfig(client_stack="boringssl", pq_hybrid_keyshare=True)) == 232 + 1222
    # Apple sends no session_ticket extension: TLS 1.2 resumes by session ID, no NewSessionTicket
    apple12 = Protocol(ProtocolConfig(client_stack="apple", tls="1.2"))
    assert apple12.handshake_bytes(True) == (517 + 51, 141)
    assert apple12.handshake_bytes(False)[1] == 2082 - 191


def test_resumption_choices():
    assert ProtocolConfig(tls="1.2", session_tickets=False).resumable
    by_id = Protocol(ProtocolConfig(tls="1.2", session_tickets=False)).handshake_bytes(True)
    assert by_id == (5 + 156 + 32 + 51, 141)  # 193-B hello: under the padding threshold
    none = ProtocolConfig(tls="1.2", session_tickets=False, tls12_session_id_resumption=False)
    assert not none.resumable
    assert Protocol(none).handshake_bytes(True) == Protocol(none).handshake_bytes(False)
    t13 = ProtocolConfig(session_tickets=False)
    assert Protocol(t13).handshake_bytes(True) == Protocol(t13).handshake_bytes(False)


def test_alpn_grows_openssl_tickets():
    # ticket = 64 + AES-CBC(DER session + 4 + len(ALPN)); DER 100 B (TLS 1.2), 136/137 B (TLS 1.3, even odds)
    assert tls.ticket_bytes(ProtocolConfig(tls="1.2")) == 176
    assert tls.ticket_bytes(ProtocolConfig(tls="1.2", alpn=["mqtt"])) == 176
    assert tls.ticket_bytes(ProtocolConfig(tls="1.2", alpn=["x" * 8])) == 192
    assert tls.ticket_bytes(ProtocolConfig()) == 208
    assert tls.ticket_bytes(ProtocolConfig(alpn=["mqtt"])) == 224
    assert tls.ticket_bytes(ProtocolConfig(alpn=["xyz"])) == 216  # 208 or 224


def test_bad_chain_files(tmp_path, chains, monkeypatch):
    missing = tmp_path / "nope.pem"
    with pytest.raises(ValueError, match="cannot read certificate chain") as exc:
        certs.load_chain(missing)
    assert "\n" not in str(exc.value)
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="no PEM certificate"):
        Protocol(ProtocolConfig(certificate_chain=str(empty)))
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(ValueError, match="certificate 1") as exc:
        certs.load_chain(junk)
    assert "\n" not in str(exc.value)
    assert certs.check_chain_file(None) is None and certs.check_chain_file(chains["ecdsa"].path)


def test_pure_python_parser_agrees(chains, tmp_path, monkeypatch):
    key = ed25519.Ed25519PrivateKey.generate()
    ed = _cert("ed.example", key, "ed.example", key, ca=False)
    ed_path = tmp_path / "ed.pem"
    ed_path.write_bytes(ed.public_bytes(serialization.Encoding.PEM))
    paths = [chains[k].file(True) for k in ("ecdsa", "rsa", "webpki")] + [str(ed_path)]
    with_lib = [certs.load_chain(p) for p in paths]
    assert with_lib[-1].leaf_key.kind == "ed25519" and with_lib[-1].sent(False) == with_lib[-1].der_sizes

    def no_lib(ders):
        raise ImportError

    monkeypatch.setattr(certs, "_parse_with_cryptography", no_lib)
    certs._load.cache_clear()
    try:
        assert [certs.load_chain(p) for p in paths] == with_lib
    finally:
        certs._load.cache_clear()
