"""The server's certificate chain as TLS sends it: DER sizes and the leaf's signature size, from a PEM file.

``protocol.certificate_chain`` names a PEM file such as a server's ``fullchain.pem``. :func:`load_chain` reads
every ``CERTIFICATE`` block in it, in file order (leaf first, as servers send them, RFC 8446 §4.4.2), and gives

* the DER size of each certificate (the bytes a Certificate message carries per entry);
* which of them are self-signed (subject == issuer: roots, sent only with ``chain_includes_root``);
* the leaf's key (from its SubjectPublicKeyInfo, RFC 5280 §4.1.2.7) and so the size of the signature the
  server makes with it: CertificateVerify in TLS 1.3 (RFC 8446 §4.4.3), ServerKeyExchange in TLS 1.2 (RFC
  5246 §7.4.3).

It uses the ``cryptography`` package when installed (the dev extra) and otherwise a small pure-Python PEM/DER
reader: both give the same numbers. Problems raise :class:`ValueError` with a one-line message.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
import re
from dataclasses import dataclass

# -- signature sizes --------------------------------------------------------------------------------------------
# ECDSA signatures are DER SEQUENCE { INTEGER r, INTEGER s } (RFC 8446 §4.2.3 / RFC 3279 §2.2.3), so their length
# varies: an INTEGER takes bitlen(x) // 8 + 1 bytes (a leading 0 byte when its top bit is set). For r, s uniform
# below a group order of ``bits`` bits the expected content length is computed below; the model uses the
# expected signature, rounded to whole bytes (P-256: 70.99 -> 71 B, P-384: 103 B, P-521: 138 B).
_EC_CURVE_BITS = {"secp256r1": 256, "secp384r1": 384, "secp521r1": 521}
_EC_CURVE_OIDS = {"1.2.840.10045.3.1.7": "secp256r1", "1.3.132.0.34": "secp384r1", "1.3.132.0.35": "secp521r1"}
_EDDSA_SIG = {"ed25519": 64, "ed448": 114}  # RFC 8032 §5.1.6 / §5.2.6
_OID_EC = "1.2.840.10045.2.1"  # id-ecPublicKey, RFC 5480 §2.1.1
_OID_RSA = ("1.2.840.113549.1.1.1", "1.2.840.113549.1.1.10")  # rsaEncryption, id-RSASSA-PSS (RFC 8017 App. C)
_OID_EDDSA = {"1.3.101.112": "ed25519", "1.3.101.113": "ed448"}  # RFC 8410 §3


def _der_length_bytes(n: float) -> int:
    """Bytes of a DER length field for ``n`` content bytes (X.690 §8.1.3)."""
    return 1 if n < 128 else 1 + (int(n).bit_length() + 7) // 8


def expected_ecdsa_signature(bits: int) -> float:
    """Expected DER length of an ECDSA signature over a group of ``bits``-bit order (r, s uniform)."""
    integer = sum(2.0 ** (b - 1 - bits) * (b // 8 + 1) for b in range(1, bits + 1))  # E[content bytes]
    content = 2 * (2 + integer)  # two INTEGERs, each tag + 1-byte length
    return 1 + _der_length_bytes(content) + content


@dataclass(frozen=True)
class LeafKey:
    """The leaf certificate's public key: ``kind`` "ecdsa" (with ``curve``), "rsa" or "ed25519"/"ed448"."""

    kind: str
    bits: int
    curve: str | None = None

    @property
    def signature_bytes(self) -> int:
        """Bytes of one signature made with this key (the expected length for ECDSA, rounded)."""
        if self.kind == "ecdsa":
            return round(expected_ecdsa_signature(self.bits))
        if self.kind == "rsa":
            return (self.bits + 7) // 8  # RSASSA-PSS / PKCS #1 v1.5: the modulus size (RFC 8017 §8.1.1, §8.2.1)
        return _EDDSA_SIG[self.kind]

    def describe(self) -> str:
        return f"ECDSA {self.curve}" if self.kind == "ecdsa" else (f"RSA-{self.bits}" if self.kind == "rsa"
                                                                  else self.kind.capitalize())


@dataclass(frozen=True)
class CertificateChain:
    """What a PEM chain file holds: DER sizes in file order, which are self-signed, and the leaf's key."""

    path: str
    der_sizes: tuple[int, ...]
    self_signed: tuple[bool, ...]
    leaf_key: LeafKey

    def sent(self, include_root: bool) -> tuple[int, ...]:
        """DER sizes of the certificates the server sends: the leaf always (even a self-signed one), the others
        unless they are self-signed roots and ``include_root`` is off."""
        return tuple(n for i, (n, root) in enumerate(zip(self.der_sizes, self.self_signed, strict=True))
                     if i == 0 or include_root or not root)


_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.*?)\s*-----END CERTIFICATE-----", re.S)


def load_chain(path: str | os.PathLike[str]) -> CertificateChain:
    """Read a PEM certificate chain (cached per file path, size and modification time).

    Raises :class:`ValueError` with a one-line message when the file cannot be read, holds no PEM certificate,
    or a certificate cannot be parsed or has a key type TLS signing is not modelled for.
    """
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        raise ValueError(f"cannot read certificate chain {p!r}: {exc.strerror or exc}") from None
    return _load(os.path.abspath(p), st.st_size, st.st_mtime_ns, p)


def check_chain_file(path: str | None) -> str | None:
    """For a pydantic validator on ``certificate_chain``: ``path`` unchanged if it reads, else ValueError."""
    if path is not None:
        load_chain(path)
    return path


@functools.lru_cache(maxsize=64)
def _load(abspath: str, size: int, mtime_ns: int, shown: str) -> CertificateChain:
    try:
        with open(abspath, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ValueError(f"cannot read certificate chain {shown!r}: {exc.strerror or exc}") from None
    blocks = _PEM.findall(data)
    if not blocks:
        raise ValueError(f"certificate chain {shown!r} holds no PEM certificate (-----BEGIN CERTIFICATE----- block)")
    ders = []
    for i, b64 in enumerate(blocks, 1):
        try:
            ders.append(base64.b64decode(b"".join(b64.split()), validate=True))
        except (binascii.Error, ValueError):
            raise ValueError(f"certificate chain {shown!r}: certificate {i} is not valid base64") from None
    try:
        parsed = _parse_with_cryptography(ders)
    except ImportError:
        parsed = None
    if parsed is None:
        parsed = [_parse_der(der) for der in ders]
    for i, item in enumerate(parsed, 1):
        if isinstance(item, str):
            raise ValueError(f"certificate chain {shown!r}: certificate {i}: {item}")
    self_signed = tuple(s for s, _ in parsed)
    leaf = parsed[0][1]
    if isinstance(leaf, str):
        raise ValueError(f"certificate chain {shown!r}: leaf certificate: {leaf}")
    return CertificateChain(shown, tuple(len(d) for d in ders), self_signed, leaf)


# -- with the cryptography package ----------------------------------------------------------------------------
def _parse_with_cryptography(ders: list[bytes]) -> list:
    """[(self_signed, LeafKey | problem string)] per certificate; ImportError without ``cryptography``."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    out: list = []
    for der in ders:
        try:
            cert = x509.load_der_x509_certificate(der)
            subject, issuer = cert.subject, cert.issuer
        except ValueError as exc:
            out.append(_first_line(f"not a valid X.509 certificate ({exc})"))
            continue
        try:
            key = cert.public_key()
        except (ValueError, TypeError) as exc:  # unsupported algorithm
            out.append((subject == issuer, _first_line(f"unsupported public key ({exc})")))
            continue
        if isinstance(key, ec.EllipticCurvePublicKey):
            bits = _EC_CURVE_BITS.get(key.curve.name)
            lk: LeafKey | str = (LeafKey("ecdsa", bits, key.curve.name) if bits
                                 else f"unsupported ECDSA curve {key.curve.name}")
        elif isinstance(key, rsa.RSAPublicKey):
            lk = LeafKey("rsa", key.key_size)
        elif isinstance(key, ed25519.Ed25519PublicKey):
            lk = LeafKey("ed25519", 256)
        elif isinstance(key, ed448.Ed448PublicKey):
            lk = LeafKey("ed448", 456)
        else:
            lk = f"unsupported public key type {type(key).__name__}"
        out.append((subject == issuer, lk))
    return out


def _first_line(text: str) -> str:
    return " ".join(text.split())


# -- pure-Python DER reader (RFC 5280 §4.1, X.690) ---------------------------------------------------------------
def _tlv(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at ``pos``."""
    if pos + 2 > len(buf):
        raise ValueError("truncated DER")
    tag, n = buf[pos], buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4 or pos + k > len(buf):
            raise ValueError("bad DER length")
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    if pos + n > len(buf):
        raise ValueError("truncated DER")
    return tag, pos, pos + n


def _children(buf: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out, pos = [], start
    while pos < end:
        t, s, e = _tlv(buf, pos)
        out.append((t, s, e))
        pos = e
    return out


def _oid(raw: bytes) -> str:
    first, rest = divmod(raw[0], 40) if raw[0] < 80 else (2, raw[0] - 80)
    parts, v = [first, rest], 0
    for b in raw[1:]:
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(v)
            v = 0
    return ".".join(map(str, parts))


def _parse_der(der: bytes) -> tuple[bool, LeafKey | str] | str:
    """(self_signed, LeafKey or problem) from one DER certificate, or a problem string."""
    try:
        t, s, e = _tlv(der, 0)
        if t != 0x30 or e != len(der):
            return "not a DER certificate (SEQUENCE expected)"
        tbs_t, tbs_s, tbs_e = _children(der, s, e)[0]
        fields = _children(der, tbs_s, tbs_e)
        if fields and fields[0][0] == 0xA0:  # [0] EXPLICIT version
            fields = fields[1:]
        # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
        issuer, subject, spki = fields[2], fields[4], fields[5]
        self_signed = der[issuer[1]:issuer[2]] == der[subject[1]:subject[2]]
        alg, key_bits = _children(der, spki[1], spki[2])[:2]
        alg_parts = _children(der, alg[1], alg[2])
        oid = _oid(der[alg_parts[0][1]:alg_parts[0][2]])
        if oid == _OID_EC:
            curve_oid = _oid(der[alg_parts[1][1]:alg_parts[1][2]]) if len(alg_parts) > 1 and alg_parts[1][0] == 6 \
                else ""
            curve = _EC_CURVE_OIDS.get(curve_oid)
            key: LeafKey | str = (LeafKey("ecdsa", _EC_CURVE_BITS[curve], curve) if curve
                                  else f"unsupported ECDSA curve {curve_oid or '(parameters not a named curve)'}")
        elif oid in _OID_RSA:
            # BIT STRING: 1 unused-bits byte, then RSAPublicKey SEQUENCE { modulus INTEGER, exponent INTEGER }
            _, rs, re_ = _tlv(der, key_bits[1] + 1)
            mt, ms, me = _children(der, rs, re_)[0]
            key = LeafKey("rsa", int.from_bytes(der[ms:me], "big").bit_length())
        elif oid in _OID_EDDSA:
            kind = _OID_EDDSA[oid]
            key = LeafKey(kind, 256 if kind == "ed25519" else 456)
        else:
            key = f"unsupported public key algorithm {oid}"
        return self_signed, key
    except (ValueError, IndexError) as exc:
        return f"not a valid X.509 certificate ({exc})"
