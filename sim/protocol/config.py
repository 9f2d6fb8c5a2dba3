"""The wire-level settings of one client population (:class:`ProtocolConfig`, the scenario's ``protocol``)."""

from __future__ import annotations

from typing import Literal

import pydantic
from pydantic import Field


class ProtocolConfig(pydantic.BaseModel, extra="forbid", frozen=True):
    """Wire-level settings of one client population. Every default cites its source (PF = protocol-facts.md)."""

    tls: Literal["off", "1.2", "1.3"] = Field(
        "1.3", description="TLS version. PF §6 tls_version: TLS 1.3 dominant on mobile stacks; \"off\" = plain TCP "
        "(messaging seed: TLS can be disabled). 1.2 and 1.3 may be written as numbers (--set protocol.tls=1.2).",
    )

    @pydantic.field_validator("tls", mode="before")
    @classmethod
    def _version_as_text(cls, v: object) -> object:
        """YAML and ``--set`` read 1.2 as a number; the version is a name, so take the number's text."""
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
    cert_chain: Literal["ecdsa", "rsa"] = Field(
        "ecdsa", description="Server certificate chain. PF §6 cert_chain: ECDSA P-256 leaf + 1 intermediate ([M-TLS] "
        "§1.3 \"normal\" rows); alt RSA-2048.",
    )
    chain_includes_root: bool = Field(
        False, description="The server also sends the root certificate. PF §1.3 \"leaf + int + root (misconfig)\" rows.",
    )
    session_tickets: bool = Field(
        True, description="Session tickets (resumption). PF §1.2/§1.4: OpenSSL issues tickets by default (2 x 255-B "
        "records in TLS 1.3, 1 x 191 B in TLS 1.2).",
    )
    tls12_cipher: Literal["gcm", "chacha", "cbc_sha1", "cbc_sha256"] = Field(
        "gcm", description="TLS 1.2 cipher suite family. PF §1.1: record overhead GCM 29 B (RFC 5288 §3), ChaCha20 21 B "
        "(RFC 7905 §2), CBC 42-69 B (RFC 5246 §6.2.3.2). PF §1.3: the TLS 1.2 handshakes were measured with "
        "ECDHE-*-AES128-GCM-SHA256, hence \"gcm\".",
    )
    ip_version: Literal[4, 6] = Field(
        4, description="IP version. PF §6 ip_version: IPv4 (RFC 791, 20-B header); IPv6 (RFC 8200 §3) has a 40-B header.",
    )
    tcp_timestamps: bool = Field(
        True, description="TCP timestamp option. PF §2: RFC 7323 §3, 12 B on every segment; on by default on "
        "Linux/Android/iOS/macOS.",
    )
    mss: int = Field(
        1448, ge=64, description="TCP maximum segment size, B. PF §2/§6 tcp_mss: 1,448 B usable on a 1,500-B MTU with "
        "IPv4 + timestamps (use 1,428 for IPv6, 1,378 cellular).",
    )
    tls_max_record_plaintext: int = Field(
        16384, ge=64, le=16384, description="Largest plaintext per TLS record, B. PF §1.1: 2^14 B (RFC 8446 §5.1); RFC "
        "8449 record_size_limit can lower it.",
    )
    pq_hybrid_keyshare: bool = Field(
        False, description="Post-quantum hybrid key share (TLS 1.3 only). PF §1.3 modifiers / §6 pq_hybrid_keyshare: "
        "X25519MLKEM768 shares add +1,184 B C->S, +1,088 B S->C.",
    )
    app: Literal["mesibo", "mqtt311", "mqtt5", "websocket"] = Field(
        "mesibo", description="Application protocol on the connection: \"mesibo\" (proprietary binary chat framing, "
        "PF §3.4), \"mqtt311\" / \"mqtt5\" (PF §3.1), \"websocket\" (chat frames in WebSocket frames, PF §3.2).",
    )
    app_header_bytes: int = Field(
        40, ge=0, description="Chat application header per message, B. PF §3.4 \"Application framing ~20-60 B header per "
        "message\" (unverified); PF §6 chat_protocol_transport: 40 B. Applies to the chat protocols (\"mesibo\", "
        "\"websocket\"); MQTT's header is computed from the spec instead.",
    )
    login_bytes_c2s: int = Field(
        256, ge=0, description="Chat login request, B: 40-B app header + 190-B access token (the bearer token of PF §3.3's "
        "[M-HTTP] mobile-API example) + 26 B of app/device ids and version (assumption, unverified).",
    )
    login_bytes_s2c: int = Field(
        64, ge=0, description="Chat login reply, B: 40-B app header + 24 B (status, user id, server time, session id) "
        "(assumption).",
    )
    heartbeat_bytes: int = Field(
        8, ge=1, le=125, description="Chat heartbeat payload each way, B: a binary control frame (type 1 + flags 1 + "
        "length 2 + sequence 4 = 8 B, assumption); same order as MQTT PINGREQ 2 B (PF §3.1) and XMPP whitespace ping "
        "1 B (RFC 6120 §4.6.1). Over \"websocket\" it is the Ping frame's application data, echoed by the Pong (RFC "
        "6455 §5.5.2-5.5.3).",
    )
    mqtt_client_id_len: int = Field(
        24, ge=0, le=65535, description="MQTT CONNECT client-id length, B. PF §3.1 \"CONNECT measured (24-B client-id, "
        "13-B user, 32-B password, no will)\" [M-MQTT]; the client-id length prefix is always present (MQTT 3.1.1 "
        "§3.1.3.1).",
    )
    mqtt_username_len: int = Field(
        13, ge=0, le=65535, description="MQTT CONNECT user name length, B; 0 = field absent. PF §3.1 [M-MQTT] (13 B).",
    )
    mqtt_password_len: int = Field(
        32, ge=0, le=65535, description="MQTT CONNECT password length, B; 0 = field absent. PF §3.1 [M-MQTT] (32 B).",
    )
    mqtt_topic_len: int = Field(
        23, ge=0, le=65535, description="MQTT topic length, B (PUBLISH topic and SUBSCRIBE filter). PF §3.1 \"PUBLISH "
        "measured (23-B topic, 100-B payload)\" [M-MQTT].",
    )
    mqtt_qos: Literal[0, 1] = Field(
        1, description="MQTT QoS. PF §3.1: QoS 1 adds a 2-B packet id and a 4-B PUBACK (MQTT 3.1.1 §3.3-3.4; MQTT 5.0 "
        "§3.4.2.1).",
    )
    mqtt_subscriptions: int = Field(
        1, ge=0, description="Topic filters subscribed after CONNACK (one, as in the [M-MQTT] SUBSCRIBE 30/31 B and "
        "SUBACK 5/6 B rows of PF §3.1).",
    )
    ws_upgrade_request_bytes: int | None = Field(
        None, ge=0, description="WebSocket upgrade request, B; None: computed from its header lines "
        "(sim/protocol/websocket.py: request line with ws_path, Host = server_name or server.example.com, Upgrade, "
        "Connection, Sec-WebSocket-Key, Sec-WebSocket-Version, Origin, Sec-WebSocket-Extensions, "
        "Sec-WebSocket-Protocol, User-Agent as configured), 268 B by default as the websockets 17.4 client sends "
        "it (measured on 127.0.0.1 by tests/test_wire_websocket.py). PF §3.2/§6 ws_handshake's typical browser-app "
        "upgrade with subprotocol, Origin, UA and permessage-deflate is 335 B.",
    )
    ws_upgrade_response_bytes: int | None = Field(
        None, ge=0, description="WebSocket upgrade response (101 Switching Protocols), B; None: computed from the "
        "ws_server profile's header lines, 303 B by default (websockets 17.4 server: Date, Server, the "
        "permessage-deflate parameters; measured by tests/test_wire_websocket.py). PF §3.2/§6 ws_handshake: 159 B; "
        "RFC-minimal 129 B (ws_server: bare, ws_permessage_deflate: false).",
    )
    ws_path: str = Field("/", description="Path of the upgrade request line (GET <path> HTTP/1.1, RFC 6455 §4.1).")
    ws_origin: str | None = Field(
        None, description="Origin header of the upgrade (browsers send one, RFC 6455 §4.1 item 8; the websockets "
        "client and native apps do not). None: absent.",
    )
    ws_subprotocol: str | None = Field(
        None, description="Sec-WebSocket-Protocol the client asks for and the server echoes (RFC 6455 §4.1 item 10, "
        "§4.2.2), e.g. mqtt (MQTT 3.1.1 §6). None: absent.",
    )
    ws_user_agent: str | None = Field(
        "Python/3.11 websockets/17.4", description="User-Agent of the upgrade request: the websockets client's "
        "default (websockets/http11.py USER_AGENT, measured with websockets 17.4 on Python 3.11). None: absent.",
    )
    ws_server: Literal["websockets", "bare"] = Field(
        "websockets", description="WebSocket server profile for the 101 response: \"websockets\" (websockets 17.4's "
        "default: Date, Server: Python/3.11 websockets/17.4, permessage-deflate; server_max_window_bits=12; "
        "client_max_window_bits=12; server.py ServerProtocol.accept, asyncio/server.py), \"bare\" (RFC 6455 "
        "§4.2.2's minimum: status line, Upgrade, Connection, Sec-WebSocket-Accept, and the negotiated extension "
        "and subprotocol without parameters).",
    )
    ws_permessage_deflate: bool = Field(
        True, description="permessage-deflate (RFC 7692) is negotiated: the client offers it (the websockets "
        "client does by default, as browsers do) and the server accepts (websockets' server default). Data "
        "frames then carry the compressed message (RSV1, the 4-B 00 00 ff ff tail removed, §7.2.1) of "
        "ws_deflate_ratio x its size; control frames are not compressed (§6.1).",
    )
    ws_deflate_ratio: dict[Literal["message", "media", "receipt", "login", "login_reply"], float] = Field(
        default_factory=lambda: {"message": 0.77, "media": 0.77, "receipt": 0.53, "login": 0.88, "login_reply": 1.01},
        description="permessage-deflate compressed / "
        "uncompressed size of a message (app_header_bytes + payload) per kind, measured with websockets 17.4 "
        "(12-bit windows, memLevel 5, context takeover) on 127.0.0.1 over chat JSON sessions (tests/"
        "test_wire_websocket.py: compact JSON whose bulk is base64 of E2E ciphertext, PF §6 text_payload_bytes; "
        "30 rounds of message + receipt each way and a media message each way every 5th round, 10 sessions): "
        "message (290-B JSON) 0.77 (0.771 up, 0.765 down), media (6,040 B, base64 thumbnail) 0.77, receipt "
        "(64 B) 0.53 (0.517 up, 0.547 down), login request (256 B, first message of the connection) 0.88, login "
        "reply (64 B) 1.01 (deflate adds a byte to a short first message). Kinds not given keep these values.",
    )

    @pydantic.field_validator("ws_deflate_ratio", mode="before")
    @classmethod
    def _ratio_defaults(cls, v: object) -> object:
        """Kinds left out keep the measured ratio; every ratio is in (0, 2]."""
        if isinstance(v, dict):
            v = {**cls.model_fields["ws_deflate_ratio"].default_factory(), **v}
            bad = {k: r for k, r in v.items() if isinstance(r, int | float) and not 0 < r <= 2}
            if bad:
                raise ValueError(f"ws_deflate_ratio values must be in (0, 2], got {bad}")
        return v

    # -- handshakes as real stacks send them (issue 13; sim/protocol/tls.py, sim/protocol/certificates.py) ------
    certificate_chain: str | None = Field(
        None, description="PEM file of the certificates the server sends (e.g. its fullchain.pem): handshake sizes "
        "come from the DER certificates it holds (the leaf and intermediates; a self-signed root only with "
        "chain_includes_root). A relative path is read beside the scenario file (else from the working "
        "directory). Certificate = 4 + [1] + 3 + "
        "sum(3 + DER [+ 2]), and the signature (CertificateVerify / ServerKeyExchange) is sized from the leaf's key "
        "(sim/protocol/certificates.py; reproduces the PF §1.3 rows from their DER sizes to 1 B). A missing or "
        "unreadable file raises ValueError when the wire model is built. None: the measured cert_chain profile "
        "(PF §1.2-1.3).",
    )
    server_name: str | None = Field(
        None, description="Host name the client sends in SNI (RFC 6066 §3: 9 + len B in the ClientHello, which then "
        "usually crosses the 256-B padding threshold and is padded to 512 B: 597 B client->server for a TLS 1.3 "
        "full handshake with a 30-character name, measured). The server (OpenSSL without an SNI callback) sends "
        "no acknowledgement. None: no SNI, as in the [M-TLS] measurement (PF §1.2); real clients nearly always "
        "send it (Python's default context does).",
    )
    alpn: list[str] = Field(
        [], description="ALPN protocols the client offers (RFC 7301), e.g. [mqtt] or [http/1.1]; the server selects "
        "the first, so EncryptedExtensions (TLS 1.3) or ServerHello (TLS 1.2) carries it (7 + len B; PF §1.2: EE "
        "+~9 B). ClientHello + 6 + sum(1 + len) B. OpenSSL stores the selection in the session, so each ticket "
        "grows by 4 + len rounded up to the 16-B cipher block (measured: \"mqtt\" makes TLS 1.3 tickets 224 B "
        "instead of 208).",
    )
    client_stack: Literal["openssl", "boringssl", "apple"] = Field(
        "openssl", description="Client TLS stack, for its ClientHello: \"openssl\" (Python's ssl on OpenSSL 3.0: the "
        "[M-TLS] client's 245-B hello -- it offered one group; Python's default context offers ten, 262 B -- 156 B "
        "for a TLS 1.2-only client, padded to 512 B when 256-511 B, RFC 7685); \"boringssl\" (Android's Conscrypt: "
        "228 B + 4 with tickets, same padding, no GREASE, no encrypt-then-MAC); \"apple\" (Network.framework as the "
        "captured Safari 16 hello: 275 B with GREASE, so always padded to 512 B; no TLS 1.2 tickets). See "
        "sim/protocol/tls.py for each model's sources and what is unverified.",
    )
    hello_retry_share: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of full handshakes in which the server asks for another key share "
        "(HelloRetryRequest, RFC 8446 §4.1.4), TLS 1.3 only: the server asks for secp256r1, so + the 93-B HRR and "
        "its P-256 share in the ServerHello (+33 B) server->client, + a second ClientHello with a P-256 share "
        "(517 B for a padded OpenSSL hello) client->server, + 1 round trip (a flight each way; measured with "
        "Python's ssl). Bytes per connection are the expectation; the two extra flights' TCP segments and ACKs "
        "count in full. Resumed handshakes are assumed not to retry.",
    )
    tls12_session_id_resumption: bool = Field(
        True, description="TLS 1.2 without tickets resumes by session ID from the server's session cache (RFC 5246 "
        "§7.3; OpenSSL's default server cache): a reconnect within ticket_lifetime_s can resume even with "
        "session_tickets off. The abbreviated handshake's hello carries the 32-B session ID instead of a ticket, "
        "so it usually stays under the padding threshold (measured with a 30-character SNI: 284 B client->server, "
        "141 B server->client). Also the route for client_stack \"apple\", whose hello offers no TLS 1.2 ticket. "
        "False: without tickets every handshake is full.",
    )
    encrypt_then_mac: bool = Field(
        True, description="Encrypt-then-MAC for the TLS 1.2 CBC suites (RFC 7366), negotiated by default between "
        "OpenSSL peers: the MAC follows the padded ciphertext instead of being padded with it, record = 5 + 16 + "
        "pad16(p + 1) + MAC (measured: 1,000 B -> 1,049-B record instead of 1,045), and the ServerHello carries a "
        "4-B acknowledgement. Applies with client_stack \"openssl\" only: BoringSSL and the captured Apple hellos "
        "do not offer it.",
    )
    mqtt_broker: Literal["mosquitto", "bare"] = Field(
        "mosquitto", description="Which properties the broker puts in its MQTT 5 CONNACK and PUBACK: \"mosquitto\" "
        "(mosquitto 2.0's defaults, src/send_connack.c and src/handle_connect.c: Receive Maximum 20 + Topic Alias "
        "Maximum 10, so CONNACK 11 B instead of 5; + Assigned Client Identifier \"auto-<uuid>\" (44 B) when "
        "mqtt_client_id_len is 0; SUBACK without properties; PUBACK 4 B, 5 B with reason 0x10 for a topic without "
        "subscribers; measured by tests/test_wire_mqtt.py, see sim/protocol/mqtt.py), \"bare\" (none: the spec's "
        "minimum, PF §3.1). MQTT 3.1.1 has no properties.",
    )

    @pydantic.field_validator("certificate_chain")
    @classmethod
    def _chain_readable(cls, v: str | None) -> str | None:
        """A chain file that cannot be read or holds no certificate is an error of the scenario, not of the run."""
        from sim.protocol.certificates import check_chain_file

        return check_chain_file(v)

    @property
    def resumable(self) -> bool:
        """Whether a reconnect can resume its TLS session: with tickets, or TLS 1.2 by session ID."""
        if self.tls == "off":
            return False
        return self.session_tickets or (self.tls == "1.2" and self.tls12_session_id_resumption)

    @pydantic.model_validator(mode="after")
    def _pq_needs_tls13(self) -> ProtocolConfig:
        if self.pq_hybrid_keyshare and self.tls != "1.3":
            raise ValueError("pq_hybrid_keyshare needs tls='1.3' (hybrid key shares are TLS 1.3 only)")
        return self

