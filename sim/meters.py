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

Meters for other platforms' billing units (AWS IoT Core, Ably, PubNub, Pusher, EMQX; the README lists them):
per-minute ``messages_in`` / ``messages_out`` and the 1d distributions of their payload sizes
(``message_sizes_in`` / ``_out``), connection durations (``connection_seconds``, a 1d distribution, with the
1d series ``connection_minutes`` and ``connection_hours``), ``peak_channels`` and, for an IoT fleet,
``mqtt_session_hours``. A distribution is kept compactly as counts per (day, value) (:class:`ItemCounter`),
never item by item.

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
    #: minute (from ``start``) of each billing month's start and of the period's end, when the world knows them
    #: (a run of ``simulation.months``; its connection meter sets them): an IoT fleet splits its connections there
    month_starts: list[int] | None = None

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
        if self.month_starts is not None:
            out.month_starts = [m - skip_minutes for m in self.month_starts]
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
            # the same categories client -> platform (EMQX bills traffic both ways; TURN and TCP/IP excluded)
            "inbound_bytes": _series(sum(self.bytes[("in", c)] for c in BILLED_OUTBOUND)),
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


#: ``at`` and ``value`` of a distribution entry as one int64 key: ``at << VALUE_BITS | value``
VALUE_BITS = 40
_VALUE_MASK = (1 << VALUE_BITS) - 1
#: pending entries an :class:`ItemCounter` keeps before merging them into its compact table
_PENDING = 1 << 20


class ItemCounter:
    """Counts of items per (interval, value), kept compactly: what a distribution meter (``items``) needs.

    Each batch is reduced to its distinct (interval, value) pairs at once (one ``bincount`` over the batch's
    occupied range when it is small, else a sort), and the pairs are merged from time to time, so memory
    holds distinct pairs (days x distinct sizes or seconds), never one entry per message or connection.
    Values are whole numbers in ``[0, 2**40)``; counts are whole numbers (float64: exact below 2**53).
    """

    def __init__(self, intervals: int) -> None:
        self.intervals = int(intervals)
        self._keys: list[np.ndarray] = []
        self._counts: list[np.ndarray] = []
        self._pending = 0
        self._key = np.zeros(0, dtype=np.int64)
        self._count = np.zeros(0, dtype=np.float64)

    def add(self, at: np.ndarray, value: np.ndarray) -> None:
        """One item of ``value[i]`` in interval ``at[i]`` for each i (entries outside the intervals are ignored)."""
        at = np.asarray(at, dtype=np.int64)
        value = np.asarray(value, dtype=np.int64)
        if at.size == 0:
            return
        ok = (at >= 0) & (at < self.intervals)
        if not ok.all():
            at, value = at[ok], value[ok]
            if at.size == 0:
                return
        a0, a1 = int(at.min()), int(at.max())
        v0, v1 = int(value.min()), int(value.max())
        if v0 < 0 or v1 > _VALUE_MASK:
            raise ValueError(f"distribution values must lie in [0, 2**{VALUE_BITS}), got {v0}..{v1}")
        width = v1 - v0 + 1
        span = (a1 - a0 + 1) * width
        if span <= max(2 * at.size, 1 << 16):  # a dense histogram of the batch's occupied range
            c = np.bincount((at - a0) * width + (value - v0), minlength=span)
            nz = np.flatnonzero(c)
            keys = ((nz // width + a0) << VALUE_BITS) | (nz % width + v0)
            self._append(keys, c[nz].astype(np.float64))
            return
        keys = np.sort((at << VALUE_BITS) | value)
        heads = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        self._append(keys[heads], np.diff(np.r_[heads, keys.size]).astype(np.float64))

    def add_counts(self, at: np.ndarray, value, count: np.ndarray) -> None:
        """``count[i]`` items of ``value`` (a scalar or one per entry) in interval ``at[i]``; zero counts are dropped."""
        at = np.asarray(at, dtype=np.int64)
        count = np.asarray(count, dtype=np.float64)
        value = np.broadcast_to(np.asarray(value, dtype=np.int64), at.shape)
        ok = (count != 0) & (at >= 0) & (at < self.intervals)
        if not ok.any():
            return
        at, value, count = at[ok], value[ok], count[ok]
        if int(value.min()) < 0 or int(value.max()) > _VALUE_MASK:
            raise ValueError(f"distribution values must lie in [0, 2**{VALUE_BITS})")
        self._append((at << VALUE_BITS) | value, count)

    def _append(self, keys: np.ndarray, counts: np.ndarray) -> None:
        self._keys.append(keys)
        self._counts.append(counts)
        self._pending += keys.size
        if self._pending >= _PENDING:
            self._merge()

    def _merge(self) -> None:
        if not self._keys:
            return
        keys = np.concatenate([self._key, *self._keys])
        counts = np.concatenate([self._count, *self._counts])
        self._keys, self._counts, self._pending = [], [], 0
        order = np.argsort(keys, kind="stable")
        keys, counts = keys[order], counts[order]
        heads = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if keys.size else np.zeros(0, dtype=np.int64)
        self._key = keys[heads]
        self._count = np.add.reduceat(counts, heads) if heads.size else np.zeros(0)

    def entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(at, value, count)`` sorted by interval, then value; each pair once."""
        self._merge()
        return self._key >> VALUE_BITS, self._key & _VALUE_MASK, self._count.copy()

    def total(self) -> float:
        """The number of items."""
        self._merge()
        return float(self._count.sum())

    def to_meter(self, interval: str = "1d") -> dict:
        """The distribution meter ``{"interval", "items": {"at", "value", "count"}}``."""
        return distribution(*self.entries(), interval=interval)


def split_at(start: np.ndarray, end: np.ndarray, bounds) -> tuple[np.ndarray, np.ndarray]:
    """Intervals ``[start, end)`` cut at each of ``bounds`` (billing-month starts) they cross: each part its own
    interval (the parts before a bound first, the rest after), so every month's items are its own."""
    parts_s, parts_e = [], []
    for b in bounds:
        cross = (start < b) & (end > b)
        if cross.any():
            parts_s.append(start[cross])
            parts_e.append(np.full(int(cross.sum()), b, dtype=np.int64))
            start = np.where(cross, b, start)
    if parts_s:
        return np.concatenate([*parts_s, start]), np.concatenate([*parts_e, end])
    return start, end


def distribution(at, value, count, interval: str = "1d") -> dict:
    """A distribution meter (``sim/pricing/usage.py`` ``Distribution``): ``count[k]`` items of ``value[k]`` in
    interval ``at[k]``; whole counts as ints (a sampled run's estimates may not be whole)."""
    return {"interval": interval, "items": {"at": np.asarray(at, dtype=np.int64).tolist(),
                                            "value": np.asarray(value, dtype=np.int64).tolist(),
                                            "count": numbers(count)}}


def scale_distribution(meter: dict, ratio: float) -> dict:
    """A distribution meter with every count multiplied by ``ratio`` (a sampled run's estimate of the whole)."""
    items = meter["items"]
    count = np.asarray(items["count"], dtype=np.float64) * ratio
    return {**meter, "items": {**items, "count": numbers(count)}}


def add_meters(a: dict, b: dict) -> dict:
    """Two meters of one name and kind added (e.g. a chat app's and an IoT fleet's on one clock): series of the
    same interval value by value, distributions entry by entry (pairs merged)."""
    if "items" in a and "items" in b:
        keys, counts = [], []
        for m in (a, b):
            it = m["items"]
            keys.append((np.asarray(it["at"], dtype=np.int64) << VALUE_BITS) | np.asarray(it["value"], dtype=np.int64))
            counts.append(np.asarray(it["count"], dtype=np.float64))
        c = ItemCounter(1 << 30)
        c._append(np.concatenate(keys), np.concatenate(counts))
        return {**a, "items": distribution(*c.entries(), interval=a.get("interval", "1d"))["items"]}
    if a.get("interval") != b.get("interval") or len(a["values"]) != len(b["values"]):
        raise ValueError("meters added together need the same interval and length")
    return {**a, "values": numbers(np.asarray(a["values"], dtype=np.float64) + np.asarray(b["values"], dtype=np.float64))}


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
