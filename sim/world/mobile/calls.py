"""Voice and video calls: signalling through the messaging server, media direct or via TURN.

Per call (messaging seed, "Audio/Video calling"; PF §5, §6 call_setup_signalling):

* setup: SDP offer and answer (1.2 KB audio / 5.1 KB audio+video, each with ``candidates_per_side``
  ICE candidates of 150 B) and ``control_messages`` call-control messages (ring, ringing, connected,
  hangup) of 200 B: 6 messages by default, within the seed's 5-8. Each passes the server once: in
  from one end, out to the other.
* during the call each end sends a keep-alive/quality message every ``keepalive_interval_s`` (5 s)
  which the server relays to the other end.
* ``turn_relay_fraction`` of calls are relayed: the relay receives both ends' media and sends it on,
  so ``turn_media`` is 2 streams in and 2 streams out at the wire bitrate (PF §5.3).

Both ends are connected for the call (the callee is woken by a VoIP push), so calls add connection
intervals. Calls are few (~0.3 per DAU per day) and are generated in numpy like messages.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from sim.meters import MeterBook
from sim.scenario import Calls
from sim.world.connections import MINUTE_MS, spread_span, spread_span_many
from sim.world.distributions import lognormal_mean_one
from sim.world.mobile.sessions import Sessions
from sim.world.population import Population
from sim.world.timeline import CALL, Intervals

SIGNAL_KEYS = ("payload", "app_protocol", "tls_record", "tcpip")


@dataclass
class CallBatch:
    caller: np.ndarray
    callee: np.ndarray
    t: np.ndarray  # int64 ms
    dur: np.ndarray  # int64 ms
    video: np.ndarray  # bool
    relayed: np.ndarray  # bool

    def __len__(self) -> int:
        return int(self.t.size)


def draw_calls(rng: np.random.Generator, pop: Population, sessions: Sessions, users: np.ndarray,
               cfg: Calls, day_end: int) -> CallBatch:
    """Calls placed by the day-active ``users`` from one of their foreground sessions."""
    counts = rng.poisson(cfg.calls_per_dau_per_day, users.size)
    caller = np.repeat(users, counts)
    m = caller.size
    first, nsess = sessions.first_index(pop.n)
    caller = caller[nsess[caller] > 0]
    m = caller.size
    pick = first[caller] + (rng.random(m) * nsess[caller]).astype(np.int64)
    # inside the part of the session that lies in this day (clamping to the day's last millisecond piled the calls
    # of sessions running past midnight there)
    inside = np.minimum(sessions.dur[pick], day_end - sessions.start[pick])
    t = sessions.start[pick] + (rng.random(m) * inside).astype(np.int64)
    ids = pop.active_ids
    pos = rng.integers(0, ids.size, m)
    callee = ids[pos]
    if ids.size > 1:
        same = callee == caller
        callee[same] = ids[(pos[same] + 1) % ids.size]
    dur = np.maximum(1000, np.round(cfg.duration_mean_s * 1000 * lognormal_mean_one(rng, cfg.duration_sigma, m)))
    video = rng.random(m) < cfg.video_fraction
    relayed = rng.random(m) < cfg.turn_relay_fraction
    return CallBatch(caller, callee, t, dur.astype(np.int64), video, relayed)


def call_intervals(cb: CallBatch, push_delay_ms: int) -> Intervals:
    """Both ends online for the call; the callee joins after its (VoIP) push wake-up delay."""
    caller = Intervals.new(cb.caller, cb.t, cb.t + cb.dur, CALL)
    callee = Intervals.new(cb.callee, cb.t + push_delay_ms, cb.t + push_delay_ms + cb.dur, CALL)
    return Intervals.concat([caller, callee])


def setup_sizes(cfg: Calls, video: bool) -> np.ndarray:
    """Payload sizes of one call's setup messages (offer, answer, control messages)."""
    sdp = (cfg.offer_bytes_video if video else cfg.offer_bytes_audio) + cfg.candidates_per_side * cfg.candidate_bytes
    return np.array([sdp, sdp] + [cfg.control_bytes] * cfg.control_messages, dtype=np.float64).round().astype(np.int64)


_PRICED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _priced(protocol, sizes: np.ndarray, direction: str) -> dict[str, np.ndarray]:
    """``protocol.messages(sizes, direction)``, remembered per protocol for the few fixed call message
    sizes (the same every day). The arrays are shared: read them, do not write."""
    try:
        memo = _PRICED.setdefault(protocol, {})
    except TypeError:  # not weak-referenceable: price every time
        return protocol.messages(sizes, direction)
    key = (sizes.tobytes(), str(sizes.dtype), direction)
    m = memo.get(key)
    if m is None:
        m = memo[key] = protocol.messages(sizes, direction)
    return m


def _message_items(protocol, sizes: np.ndarray, direction: str, reps: int = 1,
                   weight: np.ndarray | float = 1.0) -> list[tuple[str, str, np.ndarray]]:
    """``(direction, category, bytes)`` of relayed signalling messages, payload as ``call_signalling``.

    ``reps``: the bytes of ``sizes`` repeated ``reps`` times (``np.tile``: messages are priced one by one).
    """
    other = "in" if direction == "out" else "out"
    m = _priced(protocol, sizes, direction)
    if reps != 1:
        rep = np.tile(np.arange(sizes.size), reps)  # = np.tile(v, reps) for each array v, by one gather each
        m = {k: v[rep] for k, v in m.items()}
    items = []
    for key in SIGNAL_KEYS:
        cat = "call_signalling" if key == "payload" else key
        items.append((direction, cat, m[key] * weight))
    items.append((other, "tcpip", m["ack_tcpip"] * weight))
    items.append((other, "app_protocol", m["ack_app"] * weight))
    items.append((other, "tls_record", m["ack_tls_record"] * weight))
    return items


def meter_calls(book: MeterBook, protocol, cb: CallBatch, cfg: Calls, counts: dict[str, int]) -> None:
    """Signalling, keep-alive and TURN bytes of a batch of calls (all metered from the call start on)."""
    if len(cb) == 0:
        return
    counts["calls"] = counts.get("calls", 0) + len(cb)
    counts["calls_video"] = counts.get("calls_video", 0) + int(cb.video.sum())
    counts["calls_relayed"] = counts.get("calls_relayed", 0) + int(cb.relayed.sum())
    minute = cb.t // MINUTE_MS
    for video in (False, True):
        sel = cb.video == video
        n_sel = int(sel.sum())
        if not n_sel:
            continue
        sizes = setup_sizes(cfg, video)
        mins = np.repeat(minute[sel], sizes.size)
        # both directions at the same minutes: one scatter (the book adds them in the same order)
        book.add_bytes_many(mins, [it for d in ("in", "out") for it in _message_items(protocol, sizes, d, n_sel)])
        counts["call_signalling_messages"] = counts.get("call_signalling_messages", 0) + sizes.size * n_sel * 2
    # keep-alive / quality messages: each end every interval, relayed to the other end
    n_per_end = cb.dur // int(cfg.keepalive_interval_s * 1000)
    total = 2 * n_per_end
    counts["call_keepalive_messages"] = counts.get("call_keepalive_messages", 0) + int(total.sum()) * 2
    ka = np.array([int(round(cfg.keepalive_bytes))], dtype=np.int64)
    spreads = []  # (direction, category, amount): all over the calls' intervals
    for d in ("in", "out"):
        other = "in" if d == "out" else "out"
        m = {k: float(v[0]) for k, v in _priced(protocol, ka, d).items()}
        for key, direction, cat in (
            ("payload", d, "call_signalling"), ("app_protocol", d, "app_protocol"), ("tls_record", d, "tls_record"),
            ("tcpip", d, "tcpip"), ("ack_tcpip", other, "tcpip"), ("ack_app", other, "app_protocol"),
            ("ack_tls_record", other, "tls_record"),
        ):
            if m[key]:
                spreads.append((direction, cat, total * m[key]))
    lo, rows, tails = spread_span_many(cb.t, cb.t + cb.dur, [a for _, _, a in spreads], book.minutes)
    for (direction, cat, _), values, tail in zip(spreads, rows, tails, strict=True):
        _add_spread(book, direction, cat, lo, values, float(tail))
    # TURN relay: 2 media streams in, 2 out, at the wire bitrate
    rel = cb.relayed
    if rel.any():
        kbps = cfg.audio_wire_kbps + np.where(cb.video[rel], cfg.video_kbps, 0.0)
        stream = kbps * 1000 / 8 * (cb.dur[rel] / 1000)
        t = cb.t[rel]
        lo, values, tail = spread_span(t, t + cb.dur[rel], 2 * stream, book.minutes)  # the same both ways
        for d in ("in", "out"):
            _add_spread(book, d, "turn_media", lo, values, tail)


def _add_spread(book: MeterBook, direction: str, cat: str, lo: int, values: np.ndarray, tail: float) -> None:
    m = book.minutes
    book.add_bytes_span(direction, cat, lo, values)
    if tail != 0.0 and lo + values.size < m:  # float dust that settle() kept: it runs to the clock's end
        book.add_bytes_span(direction, cat, lo + values.size, np.full(m - lo - values.size, tail))
