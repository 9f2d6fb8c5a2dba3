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
        minute = np.asarray(minute, dtype=np.int64)
        weights = np.broadcast_to(np.asarray(nbytes, dtype=np.float64), minute.shape)
        ok = (minute >= 0) & (minute < self.minutes)
        acc += np.bincount(minute[ok], weights=weights[ok], minlength=self.minutes)[: self.minutes]

    def add_series(self, name: str, minute, amount=1.0) -> None:
        """Add to a summed per-minute series (e.g. ``messages`` per minute)."""
        acc = self.series.setdefault(name, np.zeros(self.minutes, dtype=np.float64))
        minute = np.atleast_1d(np.asarray(minute, dtype=np.int64))
        weights = np.broadcast_to(np.asarray(amount, dtype=np.float64), minute.shape)
        ok = (minute >= 0) & (minute < self.minutes)
        acc += np.bincount(minute[ok], weights=weights[ok], minlength=self.minutes)[: self.minutes]

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
    return {"interval": "1min", "values": [_num(v) for v in values]}


def minute_index(start: datetime, t: datetime) -> int:
    return int((t - start) // timedelta(minutes=1))
