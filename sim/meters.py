"""Meters: where the world's traffic becomes usage.

The world (SimPy + numpy) reports what happens on the wire to a :class:`MeterBook`; the book keeps
per-minute series and counters and turns them into a *usage document*: the same format that
``sim price`` reads (see ``sim/pricing/usage.py``), plus a ``breakdown`` of bytes by category and the
``counts`` of connections, handshakes and messages.

Billing rules implemented here (see ``../shared/reference/seeds.md``):

* ``outbound_bytes`` is the server -> client traffic at the session layer: payload, application
  protocol, TLS handshake and record overhead, keep-alives, call signalling. TCP/IP overhead is
  *reported* under ``tcpip`` and never billed (messaging seed, "mesibo absorbs traffic due to
  TCP/IP overheads").
* ``turn_bytes`` is relayed call media (``turn_media``), billed on its own meter.
* ``mau`` is the number of distinct users that connected in the period (messaging seed, "MAU is
  counted when a user connects ... only counted as one").
* ``peak_ccu`` is the largest number of simultaneous connections.

All byte additions are vectorised (``np.bincount``) so that a batch of millions of messages costs
one call, not millions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

#: Outbound/inbound byte categories, in report order. ``tcpip`` is reported, never billed.
CATEGORIES: tuple[str, ...] = (
    "payload",
    "app_protocol",
    "tls_handshake",
    "tls_record",
    "keepalive",
    "call_signalling",
    "turn_media",
    "tcpip",
)
#: Categories that make up the billed ``outbound_bytes`` meter.
BILLED_OUTBOUND: tuple[str, ...] = (
    "payload",
    "app_protocol",
    "tls_handshake",
    "tls_record",
    "keepalive",
    "call_signalling",
)
DIRECTIONS = ("out", "in")  # out = server -> client, in = client -> server


@dataclass
class MeterBook:
    """Per-minute accumulators for one run over ``minutes`` minutes starting at ``start``.

    ``days`` is the number of calendar days of the billing period in its time zone ``tz`` (per-day
    counts such as DAU and element counts have one value per calendar day).
    """

    start: datetime
    minutes: int
    days: int
    tz: str = "UTC"
    bytes: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    series: dict[str, np.ndarray] = field(default_factory=dict)
    daily: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for d in DIRECTIONS:
            for c in CATEGORIES:
                self.bytes[(d, c)] = np.zeros(self.minutes, dtype=np.float64)

    # -- writing -----------------------------------------------------------------------------
    def add_bytes(self, direction: str, category: str, minute, nbytes) -> None:
        """Add ``nbytes`` (scalar or array) at ``minute`` (int index or array of indices)."""
        key = (direction, category)
        if key not in self.bytes:
            raise KeyError(f"unknown byte category {direction}/{category}; known: {CATEGORIES}")
        acc = self.bytes[key]
        if np.isscalar(minute):
            m = int(minute)
            if 0 <= m < self.minutes:
                acc[m] += float(nbytes)
            return
        _add_at(acc, minute, nbytes)

    def add_bytes_series(self, direction: str, category: str, values) -> None:
        """Add a whole-clock per-minute array (one value per minute of the book).

        The same as ``add_bytes(direction, category, np.arange(minutes), values)``, bit for bit.
        """
        key = (direction, category)
        if key not in self.bytes:
            raise KeyError(f"unknown byte category {direction}/{category}; known: {CATEGORIES}")
        _add_clock(self.bytes[key], values)

    def add_bytes_span(self, direction: str, category: str, lo: int, values) -> None:
        """Add per-minute ``values`` to the minutes ``lo, lo + 1, ...`` (those inside the book).

        The same as ``add_bytes`` with ``np.arange(lo, lo + len(values))``, bit for bit.
        """
        key = (direction, category)
        if key not in self.bytes:
            raise KeyError(f"unknown byte category {direction}/{category}; known: {CATEGORIES}")
        _add_span(self.bytes[key], lo, values)

    def add_bytes_many(self, minute, items) -> None:
        """``add_bytes(direction, category, minute, nbytes)`` for each ``(direction, category, nbytes)`` of
        ``items`` in turn, all at the same ``minute`` indices: one scatter for the lot, bit for bit the same
        (each category's bins are summed in the same order, and added to the book in the same order)."""
        items = list(items)
        for d, c, _ in items:
            if (d, c) not in self.bytes:
                raise KeyError(f"unknown byte category {d}/{c}; known: {CATEGORIES}")
        n = self.minutes
        if np.isscalar(minute) or len(items) < 2:
            for d, c, w in items:
                self.add_bytes(d, c, minute, w)
            return
        minute = np.asarray(minute, dtype=np.int64)
        if minute.ndim != 1 or minute.size * _RANGED >= n:
            for d, c, w in items:
                self.add_bytes(d, c, minute, w)
            return
        if minute.size == 0:
            return
        ws = [_weights(w, minute.shape) for _, _, w in items]
        lo, hi = int(minute.min()), int(minute.max())
        if lo < 0 or hi >= n:
            ok = (minute >= 0) & (minute < n)
            minute, ws = minute[ok], [w[ok] for w in ws]
            if minute.size == 0:
                return
            lo, hi = int(minute.min()), int(minute.max())
        size, k = hi - lo + 1, len(items)
        idx = ((minute - lo)[None, :] + (np.arange(k, dtype=np.int64) * size)[:, None]).ravel()
        sums = np.bincount(idx, weights=np.concatenate(ws), minlength=k * size).reshape(k, size)
        for (d, c, _), row in zip(items, sums, strict=True):
            self.bytes[(d, c)][lo : lo + size] += row

    def add_series(self, name: str, minute, amount=1.0) -> None:
        """Add to a summed per-minute series (e.g. ``messages`` per minute)."""
        acc = self.series.get(name)
        if acc is None:
            acc = self.series[name] = np.zeros(self.minutes, dtype=np.float64)
        _add_at(acc, np.atleast_1d(np.asarray(minute, dtype=np.int64)), amount)

    def add_series_clock(self, name: str, values) -> None:
        """``add_series(name, np.arange(minutes), values)``, bit for bit, without the scatter."""
        acc = self.series.get(name)
        if acc is None:
            acc = self.series[name] = np.zeros(self.minutes, dtype=np.float64)
        _add_clock(acc, values)

    def set_level(self, name: str, values: np.ndarray) -> None:
        """Store a level series sampled once per minute (concurrent connections, stored bytes)."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (self.minutes,):
            raise ValueError(f"level {name!r} needs {self.minutes} values, got {values.shape}")
        self.series[name] = values

    def set_daily(self, name: str, values: np.ndarray) -> None:
        """Store a per-day count (channels, devices, daily active users ...)."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (self.days,):
            raise ValueError(f"daily {name!r} needs {self.days} values, got {values.shape}")
        self.daily[name] = values

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(n)

    def tail(self, skip_minutes: int) -> MeterBook:
        """The book without its first ``skip_minutes`` (a discarded warm-up): series cut, the rest kept.

        Per-minute bytes and series are sliced, so a byte is billed in the minute it crossed the wire
        whichever day of the simulation produced it. Per-day counts and counts already describe the
        period (the world writes them so).
        """
        out = MeterBook(self.start + timedelta(minutes=skip_minutes), self.minutes - skip_minutes, self.days,
                        self.tz)
        out.bytes = {k: v[skip_minutes:].copy() for k, v in self.bytes.items()}
        out.series = {k: v[skip_minutes:].copy() for k, v in self.series.items()}
        out.daily = dict(self.daily)
        out.counts = dict(self.counts)
        out.scalars = dict(self.scalars)
        return out

    # -- reading -----------------------------------------------------------------------------
    def total_bytes(self, direction: str, category: str) -> float:
        return float(self.bytes[(direction, category)].sum())

    def outbound_billed_series(self) -> np.ndarray:
        return sum(self.bytes[("out", c)] for c in BILLED_OUTBOUND)

    def breakdown(self) -> dict[str, dict[str, int]]:
        """Bytes by category for each direction, as integers."""
        return {
            ("outbound" if d == "out" else "inbound"): {
                c: int(round(self.total_bytes(d, c))) for c in CATEGORIES
            }
            for d in DIRECTIONS
        }

    def to_usage(self, end: datetime, meters: dict | None = None) -> dict:
        """The usage document (``sim price`` input) for this run.

        ``meters`` holds meters the world computed itself (``mau``, ``peak_ccu``, element counts ...);
        byte meters come from the book.
        """
        usage_meters: dict = {
            "outbound_bytes": _series(self.outbound_billed_series()),
            "turn_bytes": _series(self.bytes[("out", "turn_media")]),
        }
        if "stored_bytes" in self.series:
            usage_meters["stored_bytes"] = _series(self.series["stored_bytes"])
        usage_meters.update(meters or {})
        period = {"start": self.start.isoformat(), "end": end.isoformat()}
        if self.tz != "UTC":
            period["tz"] = self.tz
        return {
            "period": period,
            "meters": usage_meters,
            # what the world reports for information, never priced (daily active users ...)
            "activity": {name: {"interval": "1d", "values": [_num(v) for v in values]}
                         for name, values in self.daily.items()},
            "breakdown": self.breakdown(),
            "counts": dict(sorted(self.counts.items())),
        }

    def to_frame(self):
        """Per-minute series as a pandas DataFrame indexed by UTC time."""
        import pandas as pd

        index = pd.date_range(self.start, periods=self.minutes, freq="1min")
        cols = {f"{d}_{c}_bytes": v for (d, c), v in self.bytes.items()}
        cols.update(self.series)
        return pd.DataFrame(cols, index=index)


def _num(v: float) -> float | int:
    f = float(v)
    return int(f) if f.is_integer() else f


def _series(values: np.ndarray) -> dict:
    return {"interval": "1min", "values": numbers(values)}


def numbers(values) -> list:
    """``[_num(v) for v in values]`` (integral values as ``int``, others as ``float``), vectorised."""
    a = np.asarray(values, dtype=np.float64).ravel()
    whole = np.isfinite(a) & (np.floor(a) == a)
    if not whole.any():
        return a.tolist()
    exact = whole & (np.abs(a) < 2.0**62)  # int64 holds them: astype is int(f)
    if exact.all():
        return a.astype(np.int64).tolist()
    out = a.astype(object)
    out[exact] = a[exact].astype(np.int64).astype(object)
    for i in np.flatnonzero(whole & ~exact).tolist():  # huge integral floats: Python ints
        out[i] = int(a[i])
    return out.tolist()


#: batches at least this fraction of the clock are scattered over the whole clock (a shifted, ranged
#: scatter costs more than the full one for large batches)
_RANGED = 2


def bincount_into(acc: np.ndarray, idx: np.ndarray, weights=None, sign: int = 1) -> None:
    """``acc += np.bincount(idx, weights, minlength=acc.size)[: acc.size]`` (``-=`` if ``sign`` < 0).

    Bit for bit the same: bins are summed in the same order, and only the occupied range
    ``[idx.min(), idx.max()]`` of ``acc`` is touched (adding the other bins' 0.0 changes nothing), so a
    small batch costs its own size, not the clock's. Indices past ``acc`` are ignored, negative ones
    raise (as ``np.bincount``).
    """
    n = acc.size
    if idx.size == 0:
        return
    if idx.size * _RANGED >= n:
        c = np.bincount(idx, weights=weights, minlength=n)[:n]
    else:
        lo = int(idx.min())
        if lo < 0:
            raise ValueError("bincount_into: negative index")
        if lo >= n:
            return
        c = np.bincount(idx - lo if lo else idx, weights=weights)
        k = min(c.size, n - lo)
        acc = acc[lo : lo + k]
        c = c[:k]
    if sign < 0:
        acc -= c
    else:
        acc += c


def span_counts(idx: np.ndarray, n: int) -> tuple[int, np.ndarray]:
    """``np.bincount(idx, minlength=n)[:n]`` as ``(lo, c)``: the counts from bin ``lo`` on (all zero
    outside ``[lo, lo + c.size)``), computed over the occupied bins only for a small batch."""
    if idx.size == 0:
        return 0, np.zeros(0, dtype=np.int64)
    if idx.size * _RANGED >= n:
        return 0, np.bincount(idx, minlength=n)[:n]
    lo = int(idx.min())
    if lo < 0:
        raise ValueError("span_counts: negative index")
    if lo >= n:
        return 0, np.zeros(0, dtype=np.int64)
    return lo, np.bincount(idx - lo if lo else idx)[: n - lo]


def _add_at(acc: np.ndarray, minute, amount) -> None:
    """Add ``amount`` (broadcast) at the indices ``minute`` of ``acc``; out-of-range ones are dropped."""
    n = acc.size
    minute = np.asarray(minute, dtype=np.int64)
    weights = _weights(amount, minute.shape)
    if minute.ndim != 1:
        minute, weights = minute.ravel(), weights.ravel()
    if minute.size == 0:
        return
    if minute.size == n and minute[0] == 0 and minute[-1] == n - 1 and np.array_equal(minute, np.arange(n)):
        _add_clock(acc, weights)  # the whole clock, one value per minute
        return
    lo, hi = int(minute.min()), int(minute.max())
    if lo < 0 or hi >= n:
        ok = (minute >= 0) & (minute < n)
        minute, weights = minute[ok], weights[ok]
    bincount_into(acc, minute, weights)


def _weights(w, shape) -> np.ndarray:
    """``np.broadcast_to(np.asarray(w, dtype=np.float64), shape)`` (skipped when already that shape)."""
    w = np.asarray(w, dtype=np.float64)
    return w if w.shape == shape else np.broadcast_to(w, shape)


def _add_clock(acc: np.ndarray, values) -> None:
    """``acc += np.bincount(np.arange(acc.size), weights=values)``, bit for bit: each bin is ``0.0 + v``."""
    v = np.asarray(values, dtype=np.float64)
    if v.shape != acc.shape:
        v = np.broadcast_to(v, acc.shape)
    acc += v + 0.0


def _add_span(acc: np.ndarray, lo: int, values) -> None:
    """``acc[lo : lo + len(values)] += 0.0 + values`` for the part inside ``acc``: what a whole-clock
    ``bincount`` of these values adds (its other bins are 0.0, which adds nothing to an accumulator: one
    that starts at +0.0 and only ever has sums added never holds -0.0)."""
    v = np.asarray(values, dtype=np.float64)
    a, b = max(lo, 0), min(lo + v.size, acc.size)
    if b > a:
        acc[a:b] += v[a - lo : b - lo] + 0.0


def minute_index(start: datetime, t: datetime) -> int:
    return int((t - start) // timedelta(minutes=1))


#: Levels a world snapshots at each billing month's start (copies waiting in the store), not counters.
_LEVELS = {"stored": "stored_at_start", "receipts_stored": "receipts_stored_at_start"}


def month_counts(snaps: list[dict[str, int]]) -> list[dict[str, int]]:
    """Counts per billing month from a world's snapshots at each month's start and at the end.

    A counter's month figure is its growth within the month; a level (copies waiting in the store) is given
    at the month's start (``stored_at_start``) and end (``stored``), as a one-period run reports them."""
    out = []
    for a, b in zip(snaps, snaps[1:], strict=False):
        row = {k: int(b.get(k, 0)) - int(a.get(k, 0)) for k in sorted(set(a) | set(b)) if k not in _LEVELS}
        for level, at_start in _LEVELS.items():
            row[at_start] = int(a.get(level, 0))
            row[level] = int(b.get(level, 0))
        out.append(dict(sorted(row.items())))
    return out
