"""TLS on the wire: record overhead per cipher suite and the handshake flights, full and resumed.

Record overheads are RFC arithmetic (PF §1.1). Handshakes are composed message by message; the parts that are
not first principles are OpenSSL 3.0 measurements ([M-TLS], PF §1.2-1.4, re-measured on loopback by
tests/test_wire_tls.py). The server is OpenSSL 3.0 with its defaults (TLS_AES_256_GCM_SHA384 in TLS 1.3,
ECDHE with X25519, one record per handshake message, no SNI callback); the client is ``protocol.client_stack``.

**Server -> client.** Without ``certificate_chain`` the server's flights are the PF §1.3 table (``_FULL_S2C``),
unchanged. With a chain (:mod:`sim.protocol.certificates`) the Certificate and the signature messages are
computed from the DER certificates the server sends:

* Certificate: 4 (header) + [1 context, TLS 1.3] + 3 (list length) + sum(3 + DER [+ 2 extensions, TLS 1.3])
  (RFC 8446 §4.4.2, RFC 5246 §7.4.2), in records of +22 B (TLS 1.3, encrypted) or +5 B (TLS 1.2);
* CertificateVerify (TLS 1.3): 4 + 2 (scheme) + 2 (length) + signature (RFC 8446 §4.4.3); ServerKeyExchange
  (TLS 1.2, X25519): 4 + 1 + 2 + 1 + 32 + 2 + 2 + signature (RFC 8422 §5.4); the signature is the leaf key's
  (ECDSA: the expected DER length, P-256 71 B; RSA: the modulus bytes).

  Checked against the PF §1.2 DER sizes (922 + 701 ECDSA, 1,285 + 1,292 RSA, roots 564 / 1,411): the formula
  gives every PF §1.3 row exactly, except TLS 1.3 ECDSA + root, 1 B more than measured (3,078 vs 3,077: that
  handshake's ECDSA signature happened to be 70 B, the expectation is 71).

  A composed TLS 1.2 ServerHello also follows the session-resumption settings: a server that will not issue a
  ticket drops the 4-B session_ticket extension, and one that caches sessions (``tls12_session_id_resumption``)
  sends a 32-B session ID (measured: +28 B without tickets). The PF rows for "no tickets" only subtract the
  ticket record, so without a chain that difference is not applied.

**Client -> server.** The ClientHello is modelled per ``client_stack`` (:func:`client_hello`): a base hello,
+ SNI (RFC 6066 §3: 2 type + 2 length + 2 list length + 1 name type + 2 name length + name), + ALPN (RFC 7301
§3.1: 2 + 2 + 2 + sum(1 + protocol)), + a resumption ticket (TLS 1.2, RFC 5077) or PSK (TLS 1.3, RFC 8446
§4.2.11: 15 B + ticket + binder), then the stack's padding rule (RFC 7685). The server's ALPN selection (the
client's first protocol) costs 2 + 2 + 2 + 1 + len in EncryptedExtensions (TLS 1.3) or the ServerHello (TLS
1.2), and OpenSSL stores it in the session, so its tickets grow (:func:`ticket_bytes`).

Stacks (sources; what could not be found is said, and modelled as OpenSSL):

* ``openssl`` -- Python's ``ssl`` on OpenSSL 3.0, as in [M-TLS]: 245-B hello offering TLS 1.3 (PF §1.2), 156 B
  for a TLS 1.2-only client (PF §1.3: 254 - 93 - 5). Padding: ``tls_construct_ctos_padding`` in OpenSSL's
  ssl/statem/extensions_clnt.c (openssl/openssl, F5_WORKAROUND_MIN_MSG_LEN 0xff / MAX 0x200, on with
  SSL_OP_ALL, which Python sets): a hello of 256-511 B including its 4-B header and the PSK still to come is
  padded to 512 B, and one of 508-511 B gets the smallest (1-B) padding extension, 513-516 B. Re-measured here
  (OpenSSL 3.0.19): 255 B stays 255, 256 -> 512, 507 -> 512, 508 -> 513, 511 -> 516. The [M-TLS] client that
  gave 245 B offered one key-exchange group; Python's default context offers ten (+18 B, 262/263 B) and is
  padded to 512 B even without SNI -- with SNI, which Python's default context always sends, both are 512 B.
* ``boringssl`` -- Android's Conscrypt on BoringSSL. Hello from google/boringssl ssl/extensions.cc (kExtensions
  order and each ``ext_*_add_clienthello``, commit 3c31f33f) and google/conscrypt NativeSsl.java /
  native_crypto.cc: 32-B compatibility session ID (handshake_client.cc), 3 TLS 1.3 + 14 Conscrypt default
  suites (NativeCrypto.DEFAULT_X509_CIPHER_SUITES), extended_master_secret 4, renegotiation_info 5,
  supported_groups X25519/P-256/P-384 12, ec_point_formats 6, session_ticket 4 (Conscrypt sets SSL_OP_NO_TICKET
  unless the app enables tickets, as OkHttp does; counted when ``session_tickets``), status_request 9 (Conscrypt
  always enables OCSP stapling), signature_algorithms 24 (kVerifySignatureAlgorithms, 9), key_share X25519 42,
  psk_key_exchange_modes 6, supported_versions 9 (1.3, 1.2): 228 B (+4). No GREASE (Conscrypt does not enable
  it; Chrome/Cronet do), no encrypt_then_mac (BoringSSL has no such extension), CT request (+4 B) only under a
  CT policy (not counted). Padding: the same 0xff/0x200 rule as OpenSSL (``ssl_add_clienthello_tlsext`` before
  commit eae46df1, "Remove the old F5 padding workaround", Aug 2026, newer than any Android release found), but
  not on the second ClientHello after a HelloRetryRequest. With ``pq_hybrid_keyshare`` BoringSSL sends an
  X25519MLKEM768 share *and* the X25519 one (ssl_setup_key_shares: one post-quantum + one classical): +1,222 B
  (share 4 + 1,216, group 2) instead of OpenSSL's +1,184 (PF §1.3 modifiers).
* ``apple`` -- Network.framework / URLSession, from the captured Safari 16 hello that refraction-networking/utls
  reproduces (u_parrots.go HelloSafari_16_0; its HelloIOS_14 has 27 suites and no certificate compression,
  280 B, padded to the same 512 B): GREASE
  (RFC 8701) cipher, group, key share, version and two extensions; 3 + 17 suites; groups X25519/P-256/P-384/
  P-521; 11 signature algorithms; SCT request; certificate compression (zlib); supported_versions 1.3-1.0:
  275 B, always padded to 512 B by the same rule (utls BoringPaddingStyle). No session_ticket and no
  encrypt_then_mac extension: TLS 1.2 resumption is by session ID only. Not found: Apple's own source, its
  behaviour after a HelloRetryRequest (modelled as OpenSSL: the second hello is padded), its post-quantum
  share (iOS 26's X25519MLKEM768 default is from memory, unverified; modelled as BoringSSL's).

For ``tls: "1.2"`` the ``openssl`` hello is a TLS 1.2-only client's (as measured in PF); the mobile stacks
offer TLS 1.3 whatever the server speaks, so their hello is the same for both versions.

**HelloRetryRequest** (``hello_retry_share``, TLS 1.3 full handshakes): the server asks for secp256r1 (RFC 8446
§4.1.4). It costs an HRR record (a ServerHello-shaped 88-B message: 32-B session ID echoed, supported_versions
6 + key_share 6 B, no cookie from OpenSSL; 93 B) and a second ClientHello (the first with its key share
replaced by a P-256 one, 4 + 65 B, padded again by OpenSSL); the ServerHello then carries a P-256 share (+33 B).
The change_cipher_spec records only move (the server's follows the HRR, the client's precedes its second
hello, RFC 8446 App. D.4), so they cost nothing extra -- all measured with Python's ssl. The HRR and the second
hello are a flight each way more, their bytes scaled by the share; their TCP segments and ACKs are those of the
whole flights times the share (:func:`handshake_weights`, ``Protocol._wire``).

**TLS 1.2 resumption by session ID** (``tls12_session_id_resumption``, used without tickets): the abbreviated
handshake of RFC 5246 §7.3; the client's hello carries the 32-B session ID, the server's flight is ServerHello
+ CCS + Finished (141 B, as for tickets).

**Encrypt-then-MAC** (``encrypt_then_mac``, RFC 7366, CBC suites, OpenSSL clients only): record overhead
5 + 16 (IV) + pad16(p + 1) - p + MAC instead of 5 + 16 + pad16(p + MAC + 1) - p; the server acknowledges it with
a 4-B extension in its ServerHello. Measured: p = 1 -> 57 B (MAC-then-encrypt 53), 1,000 -> 1,049 (1,045).
``encrypt_then_mac`` false reads as the server declining; an OpenSSL client that does not offer it
(SSL_OP_NO_ENCRYPT_THEN_MAC) also sends a 4-B shorter hello, not modelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.protocol.config import ProtocolConfig

# -- TLS handshake flights (TLS bytes incl. record headers), [M-TLS] -----------------------------------------
# Server -> client bytes of a full handshake with leaf + intermediate (+ root), tickets included: PF §1.3 table.
_FULL_S2C: dict[tuple[str, str, bool], int] = {
    ("1.3", "ecdsa", False): 2509,
    ("1.3", "rsa", False): 3648,
    ("1.3", "ecdsa", True): 3077,
    ("1.3", "rsa", True): 5064,
    ("1.2", "ecdsa", False): 2082,
    ("1.2", "rsa", False): 3221,
    ("1.2", "ecdsa", True): 2649,
    ("1.2", "rsa", True): 4635,
}
_T13_CLIENT_FIN = 80  # PF §1.4: CCS 6 + Finished record 74 (SHA-384 suite) after the server flight.
_T12_CKE = 42  # PF §1.2: ClientKeyExchange 37 B (X25519) + 5.
_CCS = 6  # PF §1.1: change_cipher_spec record.
_PQ_EXTRA = (1184, 1088)  # PF §1.3 modifiers: X25519MLKEM768 shares 1,216 / 1,120 B instead of 32 B.
_PQ_EXTRA_BORINGSSL = 4 + 1216 + 2  # a second key share entry + its group in supported_groups (see docstring)
_FINISHED_LEN = 16  # RFC 5246 §7.4.9: TLS 1.2 Finished (12-B verify_data + 4-B header), encrypted.
_CLOSE_NOTIFY = 2  # RFC 8446 §6.1: alert = level + description.

# Server messages (records), [M-TLS] PF §1.2 and re-measured (tests/test_wire_tls.py).
_T13_SH = 127  # ServerHello 122 B (X25519 share) + 5.
_T13_SH_PSK = 6  # + pre_shared_key extension (4 + 2-B selected identity) when resuming: 133 B.
_T13_EE = 28  # EncryptedExtensions 6 B + 22.
_T13_SERVER_FIN = 74  # Finished 52 B (SHA-384) + 22.
_T13_NST = 25 + 22  # NewSessionTicket without the ticket: 4 hdr + 4 lifetime + 4 age_add + 1+8 nonce + 2 + 2 ext.
_T13_TICKETS_FULL = 2  # PF §1.2: OpenSSL sends 2 NewSessionTickets after a full handshake, 1 after resumption.
_T12_SH = 70  # ServerHello 65 B + 5: no session ID; renegotiation_info 5, ec_point_formats 8, session_ticket 4, EMS 4.
_T12_SH_RESUMED = 90  # ServerHello 85 B + 5: echoes the 32-B session ID; no session_ticket, no ec_point_formats.
_T12_SHD = 9  # ServerHelloDone 4 + 5.
_T12_NST = 5 + 4 + 4 + 2  # NewSessionTicket record without the ticket (RFC 5077 §3.3).
_SESSION_ID = 32
_EXT_HEADER = 4
_ETM_ACK = 4  # RFC 7366 §2: empty encrypt_then_mac extension in the ServerHello.
_SKE_FIXED = 4 + 1 + 2 + 1 + 32 + 2 + 2  # ServerKeyExchange without the signature (X25519, RFC 8422 §5.4).
_CV_FIXED = 4 + 2 + 2  # CertificateVerify without the signature (RFC 8446 §4.4.3).
_GCM_OVERHEAD = 29  # RFC 5288 §3: what the measured TLS 1.2 Finished records carried.

# HelloRetryRequest (RFC 8446 §4.1.4), measured with Python's ssl (client X25519 share, server P-256 only).
_HRR = 5 + 4 + 2 + 32 + 1 + _SESSION_ID + 2 + 1 + 2 + 6 + 6  # 93 B
_X25519_SHARE = 4 + 32  # key share entry: group 2 + length 2 + key
_P256_SHARE = 4 + 65
_P256_SH_EXTRA = 65 - 32  # the ServerHello then carries a P-256 share

# Session tickets as OpenSSL 3.0 servers make them (ssl/statem/statem_srvr.c construct_stateless_ticket): key name
# 16 + IV 16 + AES-256-CBC(DER session, PKCS#7-padded) + HMAC-SHA256 32. The DER session (ssl/ssl_asn1.c) was
# measured at 100 B (TLS 1.2) and 136 or 137 B (TLS 1.3: its random ticket_age_add INTEGER takes 4 or 5 bytes,
# even odds); a selected ALPN protocol adds 4 + len ([16] EXPLICIT OCTET STRING). Tickets: 176 / 208 B.
_TICKET_OVERHEAD = 16 + 16 + 32
_SESSION_DER = {"1.2": (100,), "1.3": (136, 137)}

# ClientHello bases (handshake message incl. its 4-B header; no SNI, ALPN, ticket, PSK or padding).
_CH_OPENSSL = {"1.3": 245, "1.2": 156}  # PF §1.2 "Python default client: 245 B"; PF §1.3 TLS 1.2: 254 - 93 - 5
_CH_BORINGSSL = 4 + 2 + 32 + 1 + 32 + 2 + 2 * 17 + 2 + 2 + (4 + 5 + 12 + 6 + 9 + 24 + 42 + 6 + 9)  # 228
_CH_BORINGSSL_TICKET_EXT = 4
_CH_APPLE = (4 + 2 + 32 + 1 + 32 + 2 + 2 * 21 + 2 + 2
             + (4 + 4 + 5 + 16 + 6 + 9 + 28 + 4 + 47 + 6 + 15 + 7 + 5))  # 275
_PSK_FIXED = 2 + 2 + 2 + 2 + 4 + 2 + 1  # OpenSSL PSK_PRE_BINDER_OVERHEAD (extensions_clnt.c)
_BINDER = 48  # SHA-384: the server negotiates TLS_AES_256_GCM_SHA384
_F5_MIN, _F5_MAX = 0xFF, 0x200  # RFC 7685 / OpenSSL F5_WORKAROUND_MIN_MSG_LEN, F5_WORKAROUND_MAX_MSG_LEN

Flight = tuple[str, dict[str, float]]  # (direction, session-layer bytes by category)


def ceil_div(a: np.ndarray | int, b: int) -> np.ndarray:
    return -(-np.asarray(a, dtype=np.int64) // b)


def _num(x: float) -> float | int:
    """Whole byte counts as ints (the measured baselines stay ints), expectations as floats."""
    return int(x) if float(x).is_integer() else float(x)


# -- record layer -----------------------------------------------------------------------------------------------
def cbc_mac_bytes(cfg: ProtocolConfig) -> int | None:
    """RFC 5246 §6.2.3.2: HMAC-SHA1 20 B, HMAC-SHA256 32 B; None for AEAD suites and TLS 1.3."""
    return {"cbc_sha1": 20, "cbc_sha256": 32}.get(cfg.tls12_cipher) if cfg.tls == "1.2" else None


def encrypt_then_mac(cfg: ProtocolConfig) -> bool:
    """Whether CBC records use encrypt-then-MAC (RFC 7366): configured, a CBC suite, and a client that offers it
    (OpenSSL; BoringSSL has no such extension and the captured Apple hellos carry none)."""
    return cfg.encrypt_then_mac and cbc_mac_bytes(cfg) is not None and cfg.client_stack == "openssl"


def record_overhead_min(cfg: ProtocolConfig) -> int:
    """Bytes TLS adds to each record: 22 TLS 1.3 (RFC 8446 §5.2), 29 GCM, 21 ChaCha20 (PF §1.1), 0 when off.

    For the CBC suites this is the minimum (IV 16 + MAC + 1 padding byte + header 5 = 42 / 54 B, with or without
    encrypt-then-MAC); their block padding adds 0-15 B more per record, which :func:`record_overhead` computes.
    """
    if cfg.tls == "off":
        return 0
    if cfg.tls == "1.3":
        return 22  # PF §1.1: 5 header + 1 inner content type + 16 tag (RFC 8446 §5.2)
    mac = cbc_mac_bytes(cfg)
    if mac is not None:
        return 5 + 16 + mac + 1  # PF §1.1: RFC 5246 §6.2.3.2
    return {"gcm": 29, "chacha": 21}[cfg.tls12_cipher]  # PF §1.1: RFC 5288 §3, RFC 7905 §2


def record_overhead(cfg: ProtocolConfig, n: np.ndarray | int) -> np.ndarray:
    """TLS bytes added to ``n`` bytes of application data written at once (split into 2^14-B records)."""
    n = np.asarray(n, dtype=np.int64)
    size = cfg.tls_max_record_plaintext
    if cfg.tls == "off":
        return np.zeros_like(n)
    mac = cbc_mac_bytes(cfg)
    if mac is None:
        return ceil_div(n, size) * record_overhead_min(cfg)
    full, rem = np.divmod(n, size)
    etm = encrypt_then_mac(cfg)

    def cbc(p: np.ndarray) -> np.ndarray:
        if etm:  # RFC 7366 §3: header 5 + IV 16 + pad_to_16(p + 1) - p + MAC after the ciphertext
            return 5 + 16 + ceil_div(p + 1, 16) * 16 - p + mac
        return 5 + 16 + ceil_div(p + mac + 1, 16) * 16 - p  # RFC 5246 §6.2.3.2: MAC inside the padded block

    return full * cbc(np.int64(size)) + np.where(rem > 0, cbc(rem), 0)


def close_notify(cfg: ProtocolConfig) -> int:
    """One close_notify alert record (RFC 8446 §6.1); 0 when TLS is off."""
    return 0 if cfg.tls == "off" else _CLOSE_NOTIFY + int(record_overhead(cfg, _CLOSE_NOTIFY))


# -- extension arithmetic -----------------------------------------------------------------------------------------
def _name_bytes(name: str) -> int:
    try:
        return len(name.encode("idna"))
    except UnicodeError:  # e.g. a label over 63 characters: count it as sent
        return len(name.encode("utf-8"))


def sni_extension(server_name: str | None) -> int:
    """server_name extension in the ClientHello (RFC 6066 §3): 2 type + 2 len + 2 list + 1 type + 2 len + name."""
    return 0 if not server_name else _EXT_HEADER + 2 + 1 + 2 + _name_bytes(server_name)


def alpn_extension(protocols: list[str] | tuple[str, ...]) -> int:
    """ALPN extension in the ClientHello (RFC 7301 §3.1): 2 type + 2 len + 2 list len + sum(1 + protocol)."""
    return 0 if not protocols else _EXT_HEADER + 2 + sum(1 + len(p.encode()) for p in protocols)


def alpn_selected(cfg: ProtocolConfig) -> int:
    """Length of the protocol the server selects (the client's first), 0 without ALPN."""
    return len(cfg.alpn[0].encode()) if cfg.alpn else 0


def alpn_server_extension(cfg: ProtocolConfig) -> int:
    """The server's ALPN answer (RFC 7301 §3.1): 2 type + 2 len + 2 list len + 1 + protocol."""
    return _EXT_HEADER + 2 + 1 + alpn_selected(cfg) if cfg.alpn else 0


def ticket_bytes(cfg: ProtocolConfig, session_der: int | None = None, alpn: bool = True) -> float:
    """An OpenSSL 3.0 session ticket (the opaque identity), B; the expectation over the DER session lengths of
    ``_SESSION_DER`` unless ``session_der`` is given. ``alpn`` False: as if no ALPN had been selected."""
    ders = _SESSION_DER[cfg.tls] if session_der is None else (session_der,)
    extra = 4 + alpn_selected(cfg) if (alpn and cfg.alpn) else 0
    return sum(_TICKET_OVERHEAD + 16 * ((d + extra) // 16 + 1) for d in ders) / len(ders)


def pad_openssl(n: float) -> float:
    """OpenSSL's ClientHello padding (RFC 7685; extensions_clnt.c tls_construct_ctos_padding): ``n`` = hello
    length with its 4-B header, including any PSK extension still to be written."""
    if _F5_MIN < n < _F5_MAX:
        pad = _F5_MAX - n
        return n + _EXT_HEADER + (pad - _EXT_HEADER if pad > _EXT_HEADER else 1)
    return n


# -- ClientHello per stack ----------------------------------------------------------------------------------------
def _hello_base(cfg: ProtocolConfig) -> int:
    if cfg.client_stack == "openssl":
        return _CH_OPENSSL[cfg.tls]
    if cfg.client_stack == "boringssl":
        return _CH_BORINGSSL + (_CH_BORINGSSL_TICKET_EXT if cfg.session_tickets else 0)
    return _CH_APPLE


def _client_offers_tls12_ticket(cfg: ProtocolConfig) -> bool:
    return cfg.session_tickets and cfg.client_stack != "apple"


def _pq_c2s(cfg: ProtocolConfig) -> int:
    if not cfg.pq_hybrid_keyshare:
        return 0
    return _PQ_EXTRA[0] if cfg.client_stack == "openssl" else _PQ_EXTRA_BORINGSSL


def client_hello_unpadded(cfg: ProtocolConfig, mode: str | None = None, session_der: int | None = None) -> float:
    """ClientHello message (4-B header included) before padding; ``mode`` None (full), "psk" (TLS 1.3
    resumption), "ticket" or "id" (TLS 1.2 resumption)."""
    n = _hello_base(cfg) + sni_extension(cfg.server_name) + alpn_extension(cfg.alpn) + _pq_c2s(cfg)
    if cfg.client_stack == "openssl" and cfg.tls == "1.2" and mode in ("ticket", "id"):
        n += _SESSION_ID  # a TLS 1.2-only OpenSSL client sends an empty session ID in a new handshake
    if mode == "ticket":
        n += ticket_bytes(cfg, session_der)
    elif mode == "psk":
        n += _PSK_FIXED + ticket_bytes(cfg, session_der) + _BINDER
    return n


def client_hello(cfg: ProtocolConfig, mode: str | None = None) -> float:
    """ClientHello handshake message after the stack's padding rule (expected bytes over ticket sizes)."""
    ders = _SESSION_DER[cfg.tls] if mode in ("psk", "ticket") else (None,)
    return sum(pad_openssl(client_hello_unpadded(cfg, mode, d)) for d in ders) / len(ders)


def second_client_hello(cfg: ProtocolConfig) -> float:
    """The ClientHello after a HelloRetryRequest for secp256r1: key share replaced by a P-256 one; padded again
    by OpenSSL (measured) and modelled so for Apple, not padded by BoringSSL."""
    share = _X25519_SHARE + (_PQ_EXTRA[0] if cfg.pq_hybrid_keyshare and cfg.client_stack == "openssl" else 0)
    if cfg.pq_hybrid_keyshare and cfg.client_stack != "openssl":
        share += _PQ_EXTRA_BORINGSSL - 2  # both entries go; the group list stays
    n = client_hello_unpadded(cfg) - share + _P256_SHARE
    return n if cfg.client_stack == "boringssl" else pad_openssl(n)


# -- server's certificate messages ----------------------------------------------------------------------------------
def _records(cfg: ProtocolConfig, msg: float) -> float:
    """Handshake message ``msg`` in its own records: +22 B each in TLS 1.3 (encrypted), +5 B in TLS 1.2."""
    per = 22 if cfg.tls == "1.3" else 5
    return msg + per * max(1, -(-int(msg) // 16384))


def certificate_message(tls_version: str, der_sizes: tuple[int, ...] | list[int]) -> int:
    """Certificate handshake message (RFC 8446 §4.4.2 / RFC 5246 §7.4.2) for certificates of these DER sizes."""
    if tls_version == "1.3":
        return 4 + 1 + 3 + sum(3 + d + 2 for d in der_sizes)
    return 4 + 3 + sum(3 + d for d in der_sizes)


def _chain(cfg: ProtocolConfig):
    from sim.protocol.certificates import load_chain

    return load_chain(cfg.certificate_chain)


def certificate_records(cfg: ProtocolConfig) -> float:
    """Certificate + CertificateVerify (TLS 1.3) or Certificate + ServerKeyExchange (TLS 1.2) records, B: from
    ``certificate_chain`` when set, else what the PF §1.3 row leaves for them."""
    if cfg.certificate_chain is None:
        s2c = _FULL_S2C[(cfg.tls, cfg.cert_chain, cfg.chain_includes_root)]
        if cfg.tls == "1.3":
            return s2c - _T13_TICKETS_FULL * (_T13_NST + ticket_bytes(cfg, alpn=False)) \
                - (_T13_SH + _CCS + _T13_EE + _T13_SERVER_FIN)
        return s2c - (_T12_NST + ticket_bytes(cfg, alpn=False)) \
            - (_CCS + _FINISHED_LEN + _GCM_OVERHEAD) - _T12_SH - _T12_SHD
    chain = _chain(cfg)
    sent = chain.sent(cfg.chain_includes_root)
    sig = chain.leaf_key.signature_bytes
    signed = (_CV_FIXED if cfg.tls == "1.3" else _SKE_FIXED) + sig
    return _records(cfg, certificate_message(cfg.tls, sent)) + _records(cfg, signed)


# -- handshakes -------------------------------------------------------------------------------------------------------
def _resumption(cfg: ProtocolConfig, resumed: bool) -> str | None:
    """How a resumed connection resumes: "psk" (TLS 1.3 ticket), "ticket" / "id" (TLS 1.2), None (full)."""
    if not (resumed and cfg.resumable):
        return None
    if cfg.tls == "1.3":
        return "psk"
    if _client_offers_tls12_ticket(cfg):
        return "ticket"
    return "id" if cfg.tls12_session_id_resumption else None


def handshake_flights(cfg: ProtocolConfig, resumed: bool) -> list[Flight]:
    """The handshake's flights in order, alternating client -> server ("in") and server -> client ("out"),
    as ``tls_handshake`` bytes (records incl. headers). A resumed connection that cannot resume (no tickets, and
    for TLS 1.2 no session-ID resumption either) makes a full handshake."""
    if cfg.tls == "off":
        return []
    mode = _resumption(cfg, resumed)
    sizes = _tls13(cfg, mode) if cfg.tls == "1.3" else _tls12(cfg, mode)
    return [("in" if i % 2 == 0 else "out", {"tls_handshake": _num(n)}) for i, n in enumerate(sizes)]


def handshake_weights(cfg: ProtocolConfig, resumed: bool) -> list[float]:
    """The probability each flight of :func:`handshake_flights` happens: 1, but ``hello_retry_share`` for the
    HelloRetryRequest and the second ClientHello of a TLS 1.3 full handshake (their bytes are that expectation)."""
    flights = handshake_flights(cfg, resumed)
    s = cfg.hello_retry_share
    if cfg.tls == "1.3" and s and _resumption(cfg, resumed) is None:
        return [1.0, s, s] + [1.0] * (len(flights) - 3)
    return [1.0] * len(flights)


def _tls13(cfg: ProtocolConfig, mode: str | None) -> list[float]:
    ee = _T13_EE + alpn_server_extension(cfg)
    pq_s2c = _PQ_EXTRA[1] if cfg.pq_hybrid_keyshare else 0
    ticket = _T13_NST + ticket_bytes(cfg)
    hello = 5 + client_hello(cfg, mode)
    if mode == "psk":
        server = _T13_SH + _T13_SH_PSK + pq_s2c + _CCS + ee + _T13_SERVER_FIN
        return [hello, server, _T13_CLIENT_FIN, ticket]
    server = _T13_SH + pq_s2c + _CCS + ee + certificate_records(cfg) + _T13_SERVER_FIN
    tickets = [_T13_TICKETS_FULL * ticket] if cfg.session_tickets else []
    s = cfg.hello_retry_share
    if not s:
        return [hello, server, _T13_CLIENT_FIN, *tickets]
    # HRR: first hello, [HRR + CCS], [CCS + second hello], server flight with a P-256 share, Finished.
    sh_delta = _P256_SH_EXTRA - pq_s2c
    return [hello, s * _HRR, s * (5 + second_client_hello(cfg)), server + s * sh_delta, _T13_CLIENT_FIN, *tickets]


def _tls12(cfg: ProtocolConfig, mode: str | None) -> list[float]:
    # The encrypted Finished (one per direction) is the only handshake record whose size follows the negotiated
    # cipher; the measured flights carried the GCM overhead.
    fin = _CCS + _FINISHED_LEN + int(record_overhead(cfg, _FINISHED_LEN))
    sh_ext = alpn_server_extension(cfg) + (_ETM_ACK if encrypt_then_mac(cfg) else 0)
    hello = 5 + client_hello(cfg, mode)
    if mode is not None:  # abbreviated handshake (RFC 5246 §7.3), by ticket or session ID
        return [hello, _T12_SH_RESUMED + sh_ext + fin, fin]
    tickets = _client_offers_tls12_ticket(cfg)
    sh = _T12_SH + sh_ext
    if cfg.certificate_chain is not None and not tickets:  # see the module docstring
        sh += -_EXT_HEADER + (_SESSION_ID if cfg.tls12_session_id_resumption else 0)
    last = fin + (_T12_NST + ticket_bytes(cfg) if tickets else 0)
    return [hello, sh + certificate_records(cfg) + _T12_SHD, _T12_CKE + fin, last]
