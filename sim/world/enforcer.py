"""The hook through which a plan's limits act on the world during a run.

Why a hook: plans carry restrictions (messages per second across the app, per-minute limits whose
breach suspends an element for one minute, storage caps that discard new messages). Those change
what happens next (rejected messages, reconnect storms after a suspension, discarded stores), so they
cannot be applied to the usage afterwards. The world therefore consults an :class:`Enforcer` once per
simulated day, at three points of its pipeline, *before* outcomes are decided:

1. :meth:`admit_messages` - after the day's messages are generated (time-sorted view given, with their
   payload ``sizes``), before fan-out: return a mask of accepted originated messages (rate limits per
   second/minute, a daily quota), or an :class:`Admission` when clients retry (accepted messages may
   then go through later, and every refused attempt is listed so that the world can charge its bytes).
   ``sizes`` is a keyword an enforcer may leave out of its signature: the world's wrappers
   (:class:`Shifted`, sim/months/enforcer.py) pass it only to an ``admit_messages`` that takes it
   (:func:`admit_with_sizes`), so enforcers written before it keep working.
2. :meth:`suspensions` - after connection timelines are built: return ``[a, b)`` windows (ms from the
   period start) during which all connections are closed by the server and new ones rejected; the
   world cuts every connection at ``a`` and makes clients that still want to be online reconnect at
   ``b`` + backoff (a reconnect storm, each reconnect paying a handshake). Messages whose sender is
   offline because of a suspension are rejected.
3. :meth:`admit_storage` - for copies about to be stored for offline recipients: return a mask of
   copies that may be stored (a storage cap *discards* the others).

Around these, the world calls :meth:`begin` once (period start and length), :meth:`day_end` after each
day with a callable returning the usage meters known so far (per-minute arrays: what notifications
and throttling watch), :meth:`note_rejected` for rejections the world decides itself (senders cut by
a suspension), and :meth:`finish` with the final usage meters.

The events engine (sim/world/events) meets the same limits one event at a time: ``message_cap``,
``retry_policy``, ``note_refusal``, ``observe_message`` (dry runs) and ``quota_admit`` (a daily quota,
asked for each message the per-second cap lets through).

The default does nothing. Subclasses keep their own state (e.g. a token bucket) and can record what
they did in :attr:`report`, which the world adds to the usage document's ``enforcement`` section.
Enforcers must not draw from the world's random streams: with limits that never bind, a run with an
enforcer is bit-identical to the run without one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

#: Reasons a message is rejected (index = :attr:`Admission.reason` code - 1). New reasons go at the end, so that
#: the codes of the others keep their values.
REJECT_REASONS = ("message_rate", "throttled", "suspended", "enforcer", "daily_quota")


def takes_sizes(fn: Callable) -> bool:
    """Whether an ``admit_messages`` (bound or not) accepts the ``sizes`` keyword (named, or ``**kwargs``)."""
    key = getattr(fn, "__func__", fn)
    hit = _TAKES_SIZES.get(key)
    if hit is None:
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            params = ()
        hit = _TAKES_SIZES[key] = any(p.name == "sizes" or p.kind is p.VAR_KEYWORD for p in params)
    return hit


_TAKES_SIZES: dict = {}


def admit_with_sizes(enforcer: Enforcer, t_ms, sender, fanout, sizes=None):
    """``enforcer.admit_messages``, given ``sizes`` if it takes them (an enforcer written before the keyword
    existed is called as it was)."""
    fn = enforcer.admit_messages
    if sizes is not None and takes_sizes(fn):
        return fn(t_ms, sender, fanout, sizes=sizes)
    return fn(t_ms, sender, fanout)


@dataclass
class Admission:
    """What :meth:`Enforcer.admit_messages` decided for a day's originated messages (time-sorted)."""

    keep: np.ndarray          # bool per message: finally accepted
    t: np.ndarray             # int64 ms per message: when it was accepted (a retry moves it later)
    reason: np.ndarray        # int8 per message: 0 accepted, else 1 + index in REJECT_REASONS
    attempt_msg: np.ndarray   # int64: message index of every refused attempt (retried or final)
    attempt_t: np.ndarray     # int64 ms: time of every refused attempt


class Enforcer:
    """No-op enforcer: admits everything, never suspends."""

    def __init__(self) -> None:
        self.report: dict = {}

    def begin(self, start: datetime, minutes: int) -> None:
        """The run's period: starts at ``start`` and lasts ``minutes`` minutes."""

    def admit_messages(self, t_ms: np.ndarray, sender: np.ndarray, fanout: np.ndarray,
                       sizes: np.ndarray | None = None) -> np.ndarray | Admission | None:
        """Mask of accepted originated messages (``None`` = all). Arrays are sorted by time; ``sizes``: their
        payload bytes (None when the caller does not know them)."""
        return None

    def suspensions(self, day_start_ms: int, day_end_ms: int, messages_per_minute: np.ndarray,
                    connections_per_minute: np.ndarray) -> list[tuple[int, int]]:
        """Windows ``[a, b)`` (ms) in which the app is suspended. Per-minute arrays cover the day."""
        return []

    def admit_storage(self, t_ms: np.ndarray, nbytes: np.ndarray, stored_level_bytes: float) -> np.ndarray | None:
        """Mask of copies that may be stored (``None`` = all), given the stored level at day start."""
        return None

    def note_rejected(self, reason: str, messages: int, copies: int) -> None:
        """The world rejected ``messages`` originated messages (``copies`` recipient copies) itself."""

    # -- the same limits, seen one event at a time (the events engine, sim/world/events) ------------------
    def message_cap(self, t_ms: int) -> int | None:
        """Originated messages the platform accepts in the wall-clock second holding ``t_ms`` (None: no cap).

        The events engine counts attempts per second against it as they happen (first come, first
        served), which is what :meth:`admit_messages` decides for a whole day at once.
        """
        return None

    def retry_policy(self) -> tuple[int, int]:
        """``(retries, backoff_ms)``: a refused client retries ``backoff_ms x 2^k`` later, ``retries`` times."""
        return 0, 0

    def note_refusal(self, t_ms: int, final: bool, copies: int) -> str:
        """An attempt at ``t_ms`` was refused (``final``: the message is rejected, ``copies`` recipient
        copies); record it and return the reason (one of :data:`REJECT_REASONS`)."""
        return "enforcer"

    def observe_message(self, t_ms: int, copies: int) -> None:
        """A dry run, one event at a time: a message was accepted at ``t_ms``; record what the limits
        would have done to it (the world admits everything)."""

    def quota_admit(self, t_ms: int, size: int, copies: int) -> str | None:
        """A message of ``size`` payload bytes and ``copies`` recipient copies got past the per-second cap at
        ``t_ms``: ``None`` if a quota admits it, else the reason it is rejected (one of :data:`REJECT_REASONS`;
        the enforcer has recorded the rejection, the world charges the refused attempt; no retry). What
        :meth:`admit_messages` decides for a day's accepted messages in time order. In a dry run the world
        asks too (the enforcer records what it would refuse) and admits the message whatever the answer."""
        return None

    def day_end(self, day_end_ms: int, usage_so_far: Callable[..., dict[str, np.ndarray]]) -> None:
        """A day is done; ``usage_so_far()`` gives per-minute meters (outbound_bytes, turn_bytes,
        stored_bytes, mau, peak_ccu) as known now; minutes before ``day_end_ms`` are (nearly) final.
        ``usage_so_far(since=m)``: the same arrays, computed only from minute ``m`` on (one month of a
        multi-month run; earlier minutes may read 0)."""

    def finish(self, meters: dict) -> None:
        """The run is over; ``meters`` are the usage document's final meters."""


class Shifted(Enforcer):
    """An enforcer seen from a world whose clock starts ``offset_ms`` before the billing period.

    Why: the world simulates a warm-up before the period (so the period starts in steady state) on
    one clock that starts at the warm-up, while enforcers reason in ms from the *period* start (their
    notification times, per-minute usage and quotas belong to the period). This adapter moves every
    time across, both ways; the world does not consult it during the warm-up, when no plan is in force.
    """

    def __init__(self, inner: Enforcer, offset_ms: int, skip_minutes: int) -> None:
        super().__init__()
        self.inner = inner
        self.offset = int(offset_ms)
        self.skip = int(skip_minutes)

    @property
    def report(self) -> dict:  # type: ignore[override]
        return self.inner.report

    @report.setter
    def report(self, value: dict) -> None:
        pass  # the inner enforcer's report is the one that counts

    def begin(self, start: datetime, minutes: int) -> None:
        self.inner.begin(start, minutes)

    def admit_messages(self, t_ms, sender, fanout, sizes=None):
        res = admit_with_sizes(self.inner, t_ms - self.offset, sender, fanout, sizes)
        if isinstance(res, Admission):
            return Admission(res.keep, np.asarray(res.t) + self.offset, res.reason, res.attempt_msg,
                             np.asarray(res.attempt_t) + self.offset)
        return res

    def suspensions(self, day_start_ms, day_end_ms, messages_per_minute, connections_per_minute):
        windows = self.inner.suspensions(day_start_ms - self.offset, day_end_ms - self.offset,
                                         messages_per_minute, connections_per_minute)
        return [(a + self.offset, b + self.offset) for a, b in windows]

    def admit_storage(self, t_ms, nbytes, stored_level_bytes):
        return self.inner.admit_storage(t_ms - self.offset, nbytes, stored_level_bytes)

    def note_rejected(self, reason: str, messages: int, copies: int) -> None:
        self.inner.note_rejected(reason, messages, copies)

    def message_cap(self, t_ms: int) -> int | None:
        return self.inner.message_cap(t_ms - self.offset)

    def retry_policy(self) -> tuple[int, int]:
        return self.inner.retry_policy()

    def note_refusal(self, t_ms: int, final: bool, copies: int) -> str:
        return self.inner.note_refusal(t_ms - self.offset, final, copies)

    def observe_message(self, t_ms: int, copies: int) -> None:
        self.inner.observe_message(t_ms - self.offset, copies)

    def quota_admit(self, t_ms: int, size: int, copies: int) -> str | None:
        return self.inner.quota_admit(t_ms - self.offset, size, copies)

    @property
    def dry_run(self) -> bool:
        return bool(getattr(self.inner, "dry_run", False))

    def day_end(self, day_end_ms: int, usage_so_far) -> None:
        skip = self.skip
        self.inner.day_end(day_end_ms - self.offset,
                           lambda since=0: {k: v[skip:] for k, v in usage_so_far(since + skip).items()})

    def finish(self, meters: dict) -> None:
        self.inner.finish(meters)


def watched_usage(conn, mm, since: int = 0) -> dict[str, np.ndarray]:
    """Per-minute usage meters as known now (what :meth:`Enforcer.day_end` watches), from a run's
    :class:`~sim.world.connections.ConnectionMeter` and :class:`~sim.world.message_meter.MessageMeter`.

    Built exactly as the final usage will be, so minutes whose contributions are all in are
    bit-identical to it. Only keep-alives of connections still open (spread over the connection's life
    when it closes) and concurrency are added to past minutes later.
    """
    from sim.meters import BILLED_OUTBOUND

    out = conn.provisional_outbound(since)
    return {
        "outbound_bytes": sum(out[c] for c in BILLED_OUTBOUND),
        "turn_bytes": out["turn_media"],
        "stored_bytes": mm.stored_series(),
        "mau": conn.mau_first.copy(),
        "peak_ccu": np.maximum(conn.ccu_max, np.cumsum(conn.ccu_diff)[:-1]),
    }

