"""TLS on the wire: record overhead per cipher suite and the handshake flights, full and resumed.

Handshake sizes are the OpenSSL 3.0 measurements of ``shared/reference/protocol-facts.md`` [M-TLS] (PF §1.2-1.4);
they are not derivable from first principles, so the model starts from them. Record overheads are RFC arithmetic
(PF §1.1).
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
_FULL_C2S = {"1.3": 330, "1.2": 254}  # PF §1.3: client -> server, independent of the chain.
_T13_CLIENT_FIN = 80  # PF §1.4: CCS 6 + Finished record 74 (SHA-384 suite) after the server flight.
_T13_TICKETS = 510  # PF §1.3: 2 NewSessionTickets x 255-B record, sent after the client Finished.
_T13_RESUMED = (521, 241, 80, 255)  # PF §1.4: ClientHello+PSK, SH+EE+Fin, CCS+Fin, 1 new ticket (601 / 496).
_T12_CLIENT_FIN = 93  # PF §1.2: ClientKeyExchange 37+5 (X25519) + CCS 6 + Finished record 45.
_T12_SERVER_FIN = 51  # PF §1.4: CCS 6 + Finished record 45 (16 B + 29 B GCM overhead).
_T12_TICKET = 191  # PF §1.2: RFC 5077 NewSessionTicket 186 B + 5-B header (2,979 + 191 + 51 = 3,221).
_T12_RESUMED = (517, 141, 51)  # PF §1.4: ClientHello with ticket, SH+CCS+Fin, CCS+Fin (568 / 141).
_PQ_EXTRA = (1184, 1088)  # PF §1.3 modifiers: X25519MLKEM768 shares 1,216 / 1,120 B instead of 32 B.
_FINISHED_LEN = 16  # RFC 5246 §7.4.9: TLS 1.2 Finished (12-B verify_data + 4-B header), encrypted.
_GCM_OVERHEAD = 29  # RFC 5288 §3: what the measured TLS 1.2 Finished records carried.
_CLOSE_NOTIFY = 2  # RFC 8446 §6.1: alert = level + description.

Flight = tuple[str, dict[str, int]]  # (direction, session-layer bytes by category)


def ceil_div(a: np.ndarray | int, b: int) -> np.ndarray:
    return -(-np.asarray(a, dtype=np.int64) // b)


def cbc_mac_bytes(cfg: ProtocolConfig) -> int | None:
    """RFC 5246 §6.2.3.2: HMAC-SHA1 20 B, HMAC-SHA256 32 B; None for AEAD suites and TLS 1.3."""
    return {"cbc_sha1": 20, "cbc_sha256": 32}.get(cfg.tls12_cipher) if cfg.tls == "1.2" else None


def record_overhead_min(cfg: ProtocolConfig) -> int:
    """Bytes TLS adds to each record: 22 TLS 1.3 (RFC 8446 §5.2), 29 GCM, 21 ChaCha20 (PF §1.1), 0 when off.

    For the CBC suites this is the minimum (IV 16 + MAC + 1 padding byte + header 5 = 42 / 54 B); their
    block padding adds 0-15 B more per record, which :func:`record_overhead` computes exactly.
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

    def cbc(p: np.ndarray) -> np.ndarray:  # header 5 + IV 16 + pad_to_16(p + MAC + 1) - p
        return 5 + 16 + ceil_div(p + mac + 1, 16) * 16 - p

    return full * cbc(np.int64(size)) + np.where(rem > 0, cbc(rem), 0)


def handshake_flights(cfg: ProtocolConfig, resumed: bool) -> list[Flight]:
    """The handshake's flights in order, alternating client -> server ("in") and server -> client ("out"),
    as ``tls_handshake`` bytes (records incl. headers). Resumed without session tickets: a full handshake."""
    if cfg.tls == "off":
        return []
    resumed = resumed and cfg.session_tickets  # without tickets there is nothing to resume with
    if cfg.tls == "1.3":
        if resumed:
            sizes = list(_T13_RESUMED)
        else:
            s2c = _FULL_S2C[("1.3", cfg.cert_chain, cfg.chain_includes_root)]
            sizes = [_FULL_C2S["1.3"] - _T13_CLIENT_FIN, s2c - _T13_TICKETS, _T13_CLIENT_FIN]
            if cfg.session_tickets:
                sizes.append(_T13_TICKETS)
        if cfg.pq_hybrid_keyshare:
            sizes[0] += _PQ_EXTRA[0]
            sizes[1] += _PQ_EXTRA[1]
    else:
        # The encrypted Finished (one per direction) is the only handshake record whose size follows the
        # negotiated cipher; the measured flights carried the GCM overhead.
        fin = int(record_overhead(cfg, _FINISHED_LEN)) + _FINISHED_LEN - (_GCM_OVERHEAD + _FINISHED_LEN)
        if resumed:
            sizes = [_T12_RESUMED[0], _T12_RESUMED[1] + fin, _T12_RESUMED[2] + fin]
        else:
            s2c = _FULL_S2C[("1.2", cfg.cert_chain, cfg.chain_includes_root)]
            last = _T12_SERVER_FIN + (_T12_TICKET if cfg.session_tickets else 0)
            sizes = [
                _FULL_C2S["1.2"] - _T12_CLIENT_FIN,
                s2c - _T12_TICKET - _T12_SERVER_FIN,
                _T12_CLIENT_FIN + fin,
                last + fin,
            ]
    return [("in" if i % 2 == 0 else "out", {"tls_handshake": n}) for i, n in enumerate(sizes)]


def close_notify(cfg: ProtocolConfig) -> int:
    """One close_notify alert record (RFC 8446 §6.1); 0 when TLS is off."""
    return 0 if cfg.tls == "off" else _CLOSE_NOTIFY + int(record_overhead(cfg, _CLOSE_NOTIFY))
