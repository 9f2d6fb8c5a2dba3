"""sim.protocol.websocket against the real thing: a websockets server and client on 127.0.0.1, through a
counting relay.

The relay forwards the TCP connection both ways and records its bytes per direction and per flight (a run of
bytes in one direction). The upgrade request and response are the bytes up to the blank line; the rest is cut
into RFC 6455 §5.2 frames. A session is a chat over one connection: the login request and reply, then rounds
of a message and a receipt each way, with a media message each way every fifth round, then a ping and the
close. Messages are compact chat JSON whose bulk is base64 of E2E ciphertext (PF §6 text_payload_bytes: the
payload is an encrypted envelope), at the default sizes: message 40 + 250 B, media 40 + 6,000 B, receipt
40 + 24 B, login 256 B up and 64 B down. Each figure (upgrade request, upgrade response, and the mean frame
of each message kind in each direction) must be within 5 % of the model.

``python tests/test_wire_websocket.py`` prints the permessage-deflate ratios of ten sessions (seeds 0-9): the
measurement behind ``ProtocolConfig.ws_deflate_ratio``. The tests use other seeds.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import struct

import numpy as np
import pytest

from sim.protocol import ProtocolConfig, websocket

pytest.importorskip("websockets.asyncio.server", reason="websockets >= 13 not installed (pip install -e '.[dev]')")
from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import serve  # noqa: E402
from websockets.http11 import USER_AGENT  # noqa: E402

TOLERANCE = 0.05
TIMEOUT = 10.0
APP_HEADER = 40  # ProtocolConfig.app_header_bytes
SIZES = {"message": APP_HEADER + 250, "media": APP_HEADER + 6000, "receipt": APP_HEADER + 24,
         "login": 256, "login_reply": 64}  # scenario defaults: mean text, media_message_bytes, receipt_bytes
ROUNDS = 30
PING_DATA = b"\x01\x00\x00\x08seq1"  # 8 B, the default heartbeat_bytes


def chat(kind: str, size: int, rng: random.Random, seq: int) -> str:
    """A compact chat JSON message of ``kind`` of exactly ``size`` bytes; its bulk (body, thumbnail, token,
    ids) is base64 of random bytes, as ciphertext and random identifiers are."""
    ts = 1_700_000_000_000 + seq * 7919

    def uid() -> str:
        return f"u{rng.randrange(10**8):08d}"

    if kind == "message":
        d = {"type": "message", "id": rng.randbytes(16).hex(), "from": uid(), "to": uid(), "ts": ts, "body": ""}
        var = "body"
    elif kind == "media":
        d = {"type": "media", "id": rng.randbytes(16).hex(), "from": uid(), "to": uid(), "ts": ts,
             "url": "https://files.example.com/m/" + rng.randbytes(12).hex(), "mime": "image/jpeg", "thumb": ""}
        var = "thumb"
    elif kind == "receipt":
        d, var = {"type": "receipt", "id": "", "status": "read"}, "id"
    elif kind == "login":
        d = {"type": "login", "token": "", "app": "com.example.chat", "device": rng.randbytes(8).hex(),
             "v": "4.12.0"}
        var = "token"
    else:  # login_reply
        d, var = {"type": "welcome", "session": ""}, "session"
    fill = size - len(json.dumps(d, separators=(",", ":")))
    d[var] = base64.b64encode(rng.randbytes(fill)).decode()[:fill]
    text = json.dumps(d, separators=(",", ":"))
    assert len(text) == size
    return text


def script(rounds: int) -> list[tuple[str, str]]:
    """(direction, kind) of the data messages after the login."""
    out = []
    for j in range(rounds):
        out += [("in", "message"), ("out", "receipt"), ("out", "message"), ("in", "receipt")]
        if j % 5 == 4:
            out += [("in", "media"), ("out", "media")]
    return out


def frames(buf: bytes) -> list[tuple[int, bool, int, int]]:
    """(opcode, RSV1, header bytes, payload bytes) of each RFC 6455 §5.2 frame in ``buf``."""
    out, i = [], 0
    while i < len(buf):
        b0, b1 = buf[i], buf[i + 1]
        n, h = b1 & 127, 2
        if n == 126:
            n, h = struct.unpack(">H", buf[i + 2 : i + 4])[0], 4
        elif n == 127:
            n, h = struct.unpack(">Q", buf[i + 2 : i + 10])[0], 10
        h += 4 if b1 & 128 else 0
        out.append((b0 & 15, bool(b0 & 64), h, n))
        i += h + n
    assert i == len(buf), "truncated frame"
    return out


class Relay:
    """A counting TCP relay: 127.0.0.1:``port`` -> 127.0.0.1:``upstream``; ``data`` / ``flights`` per direction."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.data = {"in": bytearray(), "out": bytearray()}
        self.flights: list[list] = []
        self.finished = asyncio.Event()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, d: str) -> None:
        try:
            while chunk := await r.read(65536):
                self.data[d] += chunk
                if self.flights and self.flights[-1][0] == d:
                    self.flights[-1][1] += len(chunk)
                else:
                    self.flights.append([d, len(chunk)])
                w.write(chunk)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    async def _relay(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", self.upstream)
            await asyncio.gather(self._pipe(cr, sw, "in"), self._pipe(sr, cw, "out"))
        finally:
            self.finished.set()

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()


async def _session(deflate: bool, seed: int, rounds: int) -> dict:
    steps = script(rounds)
    compression = "deflate" if deflate else None

    async def handler(ws) -> None:
        rng = random.Random(2 * seed + 1)
        await ws.recv()
        await ws.send(chat("login_reply", SIZES["login_reply"], rng, 0))
        for j, (d, kind) in enumerate(steps):
            if d == "in":
                await ws.recv()
            else:
                await ws.send(chat(kind, SIZES[kind], rng, j))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=compression, ping_interval=None) as server:
        relay = Relay(server.sockets[0].getsockname()[1])
        port = await relay.start()
        try:
            rng = random.Random(2 * seed)
            async with connect(f"ws://127.0.0.1:{port}/", compression=compression, ping_interval=None,
                               user_agent_header=USER_AGENT) as ws:
                await ws.send(chat("login", SIZES["login"], rng, 0))
                await ws.recv()
                for j, (d, kind) in enumerate(steps):
                    if d == "in":
                        await ws.send(chat(kind, SIZES[kind], rng, j))
                    else:
                        await ws.recv()
                await (await ws.ping(PING_DATA))
            await relay.finished.wait()  # both sides closed the TCP connection after the close handshake
        finally:
            await relay.stop()
    result: dict = {"port": port, "flights": relay.flights}
    for d in ("in", "out"):
        stream = bytes(relay.data[d])
        end = stream.index(b"\r\n\r\n") + 4
        result[d, "upgrade"] = stream[:end]
        fr = frames(stream[end:])
        assert sum(h + n for _, _, h, n in fr) + end == len(stream) == sum(n for dd, n in relay.flights if dd == d)
        data = [f for f in fr if f[0] in (1, 2)]
        kinds = ["login" if d == "in" else "login_reply"] + [k for dd, k in steps if dd == d]
        assert len(data) == len(kinds)
        for kind, f in zip(kinds, data, strict=True):
            result.setdefault((d, kind), []).append(f)
        result[d, "control"] = [f for f in fr if f[0] >= 8]
    return result


def session(deflate: bool, seed: int, rounds: int = ROUNDS) -> dict:
    """One chat session (see module docstring): the upgrade bytes, data frames by (direction, kind), control
    frames by (direction, "control"), and the relay's port (the Host header's)."""
    return asyncio.run(asyncio.wait_for(_session(deflate, seed, rounds), TIMEOUT))


def config(port: int, deflate: bool, **kw) -> ProtocolConfig:
    """The model's configuration for a session through relay ``port``: Host 127.0.0.1:<port>, the installed
    websockets' User-Agent."""
    return ProtocolConfig(app="websocket", tls="off", server_name=f"127.0.0.1:{port}", ws_user_agent=USER_AGENT,
                          ws_permessage_deflate=deflate, app_header_bytes=APP_HEADER,
                          login_bytes_c2s=SIZES["login"], login_bytes_s2c=SIZES["login_reply"],
                          heartbeat_bytes=len(PING_DATA), **kw)


def model_frame(cfg: ProtocolConfig, kind: str, direction: str) -> int:
    """The model's whole data frame (header + payload) of a message of ``kind``."""
    if kind in ("login", "login_reply"):
        return websocket.login_packets(cfg)[2 if kind == "login" else 3][1]
    p = np.array([SIZES[kind] - cfg.app_header_bytes])
    return int(websocket.payload_on_wire(cfg, p, kind)[0] + websocket.frame_overhead(cfg, p, direction, kind)[0])


def figures(sessions: list[dict]) -> dict[tuple[str, str], float]:
    """Measured figures: upgrade request / response bytes (mean over sessions) and the mean frame per
    (direction, kind)."""
    out: dict[tuple[str, str], float] = {
        ("in", "upgrade"): float(np.mean([len(s["in", "upgrade"]) for s in sessions])),
        ("out", "upgrade"): float(np.mean([len(s["out", "upgrade"]) for s in sessions])),
    }
    for d in ("in", "out"):
        for kind in SIZES:
            fr = [f for s in sessions for f in s.get((d, kind), [])]
            if fr:
                out[d, kind] = float(np.mean([h + n for _, _, h, n in fr]))
    return out


def model_figures(cfg: ProtocolConfig) -> dict[tuple[str, str], float]:
    login = websocket.login_packets(cfg)
    out: dict[tuple[str, str], float] = {("in", "upgrade"): login[0][1], ("out", "upgrade"): login[1][1]}
    for d in ("in", "out"):
        for kind in SIZES:
            if kind not in ("login", "login_reply") or (kind == "login") == (d == "in"):
                out[d, kind] = model_frame(cfg, kind, d)
    return out


def mismatches(measured: dict, expected: dict, tolerance: float = TOLERANCE) -> list[str]:
    assert measured.keys() == expected.keys()
    return [f"{k}: measured {measured[k]:.1f} B, model {expected[k]} B" for k in measured
            if abs(expected[k] - measured[k]) > tolerance * measured[k]]


@pytest.fixture(scope="module")
def deflated() -> list[dict]:
    return [session(True, seed) for seed in (100, 101, 102)]


@pytest.fixture(scope="module")
def plain() -> dict:
    return session(False, 200, rounds=10)


def test_upgrade_headers_are_what_websockets_sends(deflated, plain):
    s = deflated[0]
    req, resp = s["in", "upgrade"].decode(), s["out", "upgrade"].decode()
    assert req.startswith("GET / HTTP/1.1\r\n") and f"Host: 127.0.0.1:{s['port']}\r\n" in req
    names = [line.split(":")[0] for line in req.split("\r\n")[1:] if line]
    assert names == [n for n, _ in websocket.upgrade_request_lines(config(s["port"], True))[1:-1]]
    names = [line.split(":")[0] for line in resp.split("\r\n")[1:] if line]
    assert names == [n for n, _ in websocket.upgrade_response_lines(config(s["port"], True))[1:-1]]
    assert f"Sec-WebSocket-Extensions: {websocket.DEFLATE_OFFER}\r\n" in req
    assert f"Sec-WebSocket-Extensions: {websocket.DEFLATE_ACCEPT['websockets']}\r\n" in resp
    assert "Sec-WebSocket-Extensions" not in plain["in", "upgrade"].decode()
    for d in ("in", "out"):
        assert len(s[d, "upgrade"]) == websocket.login_packets(config(s["port"], True))[d == "out"][1]
        assert len(plain[d, "upgrade"]) == websocket.login_packets(config(plain["port"], False))[d == "out"][1]


def test_deflated_frames_match_the_model(deflated):
    cfg = config(deflated[0]["port"], True)
    assert mismatches(figures(deflated), model_figures(cfg)) == []
    for s in deflated:
        # each session alone: its upgrade (its own port in Host) and its login frames, within 5 %
        one, model = figures([s]), model_figures(config(s["port"], True))
        keys = [("in", "upgrade"), ("out", "upgrade"), ("in", "login"), ("out", "login_reply")]
        assert mismatches({k: one[k] for k in keys}, {k: model[k] for k in keys}) == []
        # RSV1 on every data frame, never on control frames (RFC 7692 §6, §6.1)
        assert all(f[1] for d in ("in", "out") for kind in SIZES for f in s.get((d, kind), []))
        assert not any(f[1] for d in ("in", "out") for f in s[d, "control"])


def test_deflate_shrinks_chat_json(deflated):
    """Compressed body / JSON size, per kind and direction (the figures behind ws_deflate_ratio)."""
    for d in ("in", "out"):
        for kind, (lo, hi) in {"message": (0.72, 0.82), "media": (0.74, 0.79), "receipt": (0.45, 0.62)}.items():
            ratio = np.mean([n for s in deflated for _, _, _, n in s[d, kind]]) / SIZES[kind]
            assert lo < ratio < hi, (d, kind, ratio)
            assert abs(ratio - ProtocolConfig().ws_deflate_ratio[kind]) < TOLERANCE * ratio


def test_plain_frames_match_the_model_exactly(plain):
    cfg = config(plain["port"], False)
    for d in ("in", "out"):
        for kind in SIZES:
            for _, rsv1, h, n in plain.get((d, kind), []):
                assert not rsv1 and n == SIZES[kind]
                assert h + n == model_frame(cfg, kind, d)
    ping, pong = websocket.ping_pong(cfg)
    close_in, close_out = websocket.close_frames()
    assert [h + n for op, _, h, n in plain["in", "control"]] == [ping, close_in]  # opcodes 9, 8
    assert [h + n for op, _, h, n in plain["out", "control"]] == [pong, close_out]  # opcodes 10, 8
    assert [op for op, *_ in plain["in", "control"]] == [9, 8]
    assert [op for op, *_ in plain["out", "control"]] == [10, 8]


def test_a_model_fault_fails_the_comparison(deflated):
    port = deflated[0]["port"]
    measured = figures(deflated)
    undeflated = model_figures(config(port, True, ws_deflate_ratio={"message": 1.0, "media": 1.0}))
    bad = mismatches(measured, undeflated)
    assert any("message" in b for b in bad) and any("media" in b for b in bad)
    bare = mismatches(measured, model_figures(config(port, True, ws_server="bare")))
    assert bare == [f"('out', 'upgrade'): measured {measured['out', 'upgrade']:.1f} B, model "
                    f"{model_figures(config(port, True, ws_server='bare'))['out', 'upgrade']} B"]
    legacy = mismatches(measured, model_figures(config(port, True, ws_upgrade_request_bytes=335,
                                                       ws_upgrade_response_bytes=159)))
    assert [b.split(":")[0] for b in legacy] == ["('in', 'upgrade')", "('out', 'upgrade')"]


# -- the model alone -----------------------------------------------------------------------------------------


def test_upgrade_defaults_and_overrides():
    c = ProtocolConfig(app="websocket")
    assert websocket.login_packets(c)[:2] == [("in", 268), ("out", 303)]  # websockets 17.4 profile
    bare = ProtocolConfig(app="websocket", ws_server="bare", ws_permessage_deflate=False, ws_user_agent=None)
    assert websocket.upgrade_response_bytes(bare) == 129  # PF §3.2: RFC-minimal response 129 B
    assert websocket.upgrade_request_bytes(bare) == 268 - 70 - 41  # without the extension and User-Agent lines
    legacy = ProtocolConfig(app="websocket", ws_upgrade_request_bytes=335, ws_upgrade_response_bytes=159)
    assert websocket.login_packets(legacy)[:2] == [("in", 335), ("out", 159)]  # PF §3.2 ws_handshake
    sub = ProtocolConfig(app="websocket", ws_subprotocol="mqtt", ws_origin="https://app.example.com")
    extra = len("Sec-WebSocket-Protocol: mqtt\r\n")
    assert websocket.upgrade_request_bytes(sub) == 268 + extra + len("Origin: https://app.example.com\r\n")
    assert websocket.upgrade_response_bytes(sub) == 303 + extra


def test_payload_on_wire_and_overhead_add_up():
    p = np.array([0, 1, 24, 85, 86, 250, 6000, 70_000])
    for deflate in (False, True):
        c = ProtocolConfig(app="websocket", ws_permessage_deflate=deflate)
        for kind in ("message", "media", "receipt"):
            for d in ("in", "out"):
                wire = websocket.payload_on_wire(c, p, kind) + websocket.frame_overhead(c, p, d, kind)
                body = websocket.body_on_wire(c, p + c.app_header_bytes, kind)
                assert (wire == body + websocket.ws_frame_header_size(body, d == "in")).all()
                assert (websocket.frame_overhead(c, p, d, kind) >= 0).all()
    off = ProtocolConfig(app="websocket", ws_permessage_deflate=False)
    assert (websocket.payload_on_wire(off, p, "message") == p).all()
    assert websocket.frame_overhead(off, np.array([100]), "in").tolist() == [40 + 8]
    with pytest.raises(ValueError):
        websocket.payload_on_wire(ProtocolConfig(), p, "chat")


if __name__ == "__main__":  # the ws_deflate_ratio measurement: python tests/test_wire_websocket.py
    runs = [session(True, seed) for seed in range(10)]
    for d, kind in sorted(k for k in figures(runs) if k[1] in SIZES):
        body = np.mean([n for s in runs for _, _, _, n in s[d, kind]])
        print(f"{d:3} {kind:11} {SIZES[kind]:5} B -> {body:7.1f} B  ratio {body / SIZES[kind]:.3f}")
