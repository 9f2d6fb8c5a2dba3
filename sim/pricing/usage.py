"""Usage files: what the pricing engine reads, and what the simulator writes.

::

    period: {start: 2026-11-01, end: 2026-12-01, tz: UTC}   # [start, end); tz optional
    meters:
      mau: 100000                                 # a number: already aggregated for the period
      outbound_bytes: 6000000000
      stored_bytes: {interval: 1d, values: [3.0e9, 3.1e9, ...]}   # one value per interval
      active_users: {interval: 1d, ids: [[1, 2], [2, 3], ...]}    # ids seen per interval
      message_sizes_out:                          # a distribution: how many items of each value
        interval: 1d                              # optional; without it, one distribution for the period
        items: {at: [0, 0, 1], value: [120, 250, 120], count: [40, 3, 38]}

A *distribution* meter keeps, for each interval ``at`` (an index from the period's start), how many
items (messages, connections) had each ``value`` (bytes, whole seconds). It is what a plan needs to
bill each item rounded on its own: a message of s bytes as ceil(s / 5 KB) messages, a connection of d
seconds as ceil(d / 60) minutes (plan metric ``each``). Values are exact, not binned, so any rounding a
plan asks for is exact too.

For summed meters (bytes transferred) a series value is the amount in that interval; for levels
(stored bytes, element counts) it is a snapshot. The plan decides how each meter is aggregated, so
the usage file does not say which is which. A ``unique`` meter may be given as a number, as ``ids``
lists, or as a numeric series holding the count of ids *first seen* in each interval (the
simulator writes MAU this way, so a notification can tell when the count crossed a threshold).

Simulator output carries more sections (``breakdown``, ``counts``, ``enforcement``, ``run``); they
are kept and passed through, never priced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from sim import yamlio
from sim.errors import InputError
from sim.pricing.period import Interval, Period, parse_time, parse_zone

PASSTHROUGH_SECTIONS = ("activity", "breakdown", "counts", "enforcement", "run", "sampling")
_TOP_KEYS = ("period", "meters", *PASSTHROUGH_SECTIONS)
#: Largest meter value, and largest sum of a series: prices are exact Decimals of 28 digits, 9 of them
#: after the point, so a quantity must stay below 10^19 (10^18 bytes is an exabyte).
MAX_TOTAL = 1e18
#: Longest period: a year and a day (a longer one is a mistake, and its calendar costs memory).
MAX_PERIOD_DAYS = 366


@dataclass(frozen=True)
class Series:
    """One value per ``interval`` from the period's start."""

    interval: Interval
    values: np.ndarray


@dataclass(frozen=True)
class IdSeries:
    """Ids seen per interval (``interval`` None: one set for the whole period)."""

    interval: Interval | None
    ids: list[frozenset]

    def first_seen_counts(self) -> np.ndarray:
        seen: set = set()
        counts = np.zeros(len(self.ids))
        for i, group in enumerate(self.ids):
            new = group - seen
            counts[i] = len(new)
            seen |= new
        return counts


@dataclass(frozen=True)
class Distribution:
    """Items by value: ``count[k]`` items of ``value[k]`` in interval ``at[k]`` (``interval`` None: the period).

    ``at`` is None when ``interval`` is None. Entries need not be sorted or unique. Counts are whole in a
    simulated run; a sampled run's estimate of the whole app (sim/sampling.py) scales them, so they may not be."""

    interval: Interval | None
    value: np.ndarray
    count: np.ndarray
    at: np.ndarray | None = None

    def per_interval(self, weights: np.ndarray, n: int) -> np.ndarray:
        """Sum of ``count x weights`` (one weight per entry) in each of ``n`` intervals (n = 1 without interval)."""
        w = self.count * np.asarray(weights, dtype=np.float64)
        if self.at is None:
            return np.array([float(w.sum())])
        return np.bincount(self.at, weights=w, minlength=n)[:n]

    def to_dict(self) -> dict:
        items: dict[str, Any] = {}
        if self.at is not None:
            items["at"] = self.at.tolist()
        whole = bool(np.all(self.value == np.floor(self.value)))
        items["value"] = (self.value.astype(np.int64) if whole else self.value).tolist()
        count = np.asarray(self.count, dtype=np.float64)
        whole = bool(np.all(count == np.floor(count)))  # a sampled run's estimated counts need not be whole
        items["count"] = (count.astype(np.int64) if whole else count).tolist()
        return {"items": items} if self.interval is None else {"interval": self.interval.text, "items": items}


MeterValue = float | Series | IdSeries | Distribution


@dataclass
class Usage:
    """Metered usage over one period."""

    period: Period
    meters: dict[str, MeterValue]
    source: str = "<usage>"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The usage document (JSON-ready), in the same format it is read from."""
        meters: dict[str, Any] = {}
        for name, value in self.meters.items():
            if isinstance(value, Series):
                meters[name] = {"interval": value.interval.text, "values": value.values.tolist()}
            elif isinstance(value, Distribution):
                meters[name] = value.to_dict()
            elif isinstance(value, IdSeries):
                ids = [sorted(g, key=str) for g in value.ids]
                meters[name] = {"ids": ids[0]} if value.interval is None else {
                    "interval": value.interval.text, "ids": ids}
            else:
                meters[name] = value
        period = {"start": self.period.start.isoformat(), "end": self.period.end.isoformat()}
        if self.period.tz.key != "UTC":
            period["tz"] = self.period.tz.key
        return {"period": period, "meters": meters, **self.extra}


def load_usage(path: str | Path) -> Usage:
    """Read a usage file (``.json``, or YAML for anything else)."""
    path = Path(path)
    source = str(path)
    text = yamlio.read_text(path, "usage file")
    return usage_from_dict(yamlio.parse(text, source, json_first=path.suffix == ".json"), source)


def usage_from_dict(doc: Any, source: str = "<usage>") -> Usage:
    """Validate a usage document (already parsed) and build a :class:`Usage`."""
    if not isinstance(doc, dict):
        raise InputError(source, None, "a usage file must be a mapping with 'period' and 'meters'")
    unknown = sorted(set(doc) - set(_TOP_KEYS))
    if unknown:
        raise InputError(source, unknown[0], f"unknown key; allowed: {', '.join(_TOP_KEYS)}")
    period = _period(doc.get("period"), source)
    raw_meters = doc.get("meters")
    if not isinstance(raw_meters, dict):
        raise InputError(source, "meters", "required: a mapping of meter name to a number or a series")
    meters = {str(name): _meter(value, period, source, f"meters.{name}") for name, value in raw_meters.items()}
    extra = {k: doc[k] for k in PASSTHROUGH_SECTIONS if k in doc}
    return Usage(period=period, meters=meters, source=source, extra=extra)


def _period(raw: Any, source: str) -> Period:
    if not isinstance(raw, dict):
        raise InputError(source, "period", "required: {start: DATE, end: DATE} with optional tz")
    unknown = sorted(set(raw) - {"start", "end", "tz"})
    if unknown:
        raise InputError(source, f"period.{unknown[0]}", "unknown key; allowed: start, end, tz")
    try:
        zone = parse_zone(raw.get("tz"))
    except ValueError as exc:
        raise InputError(source, "period.tz", str(exc)) from None
    start, end = (_when(raw, key, zone, source) for key in ("start", "end"))
    try:
        period = Period(start, end, zone)
    except ValueError as exc:
        raise InputError(source, "period", str(exc)) from None
    if period.seconds > MAX_PERIOD_DAYS * 86_400:
        raise InputError(source, "period", f"{period.seconds / 86_400:,.0f} days long; a period may last at most "
                         f"{MAX_PERIOD_DAYS} days")
    return period


def _when(raw: dict, key: str, zone, source: str) -> datetime:
    """``period.start`` or ``period.end`` as an aware datetime; an impossible date (2026-02-30) says why."""
    if key not in raw:
        raise InputError(source, f"period.{key}", "required")
    value = raw[key]
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise InputError(source, f"period.{key}", f"{value!r} is not a valid ISO date or date-time: {exc}") from None
    try:
        return parse_time(value, zone, key)
    except ValueError as exc:
        raise InputError(source, f"period.{key}", str(exc).removeprefix(f"{key}: ")) from None


def _number(value: Any, source: str, field_: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(source, field_, f"expected a number, got {value!r}")
    if value < 0 or not (isinstance(value, int) or np.isfinite(value)):
        raise InputError(source, field_, f"must be a finite non-negative number, got {value!r}")
    if value > MAX_TOTAL:
        raise InputError(source, field_, f"{_short(value)} is more than {MAX_TOTAL:g}, the largest quantity priced exactly")
    return float(value)


def _meter(raw: Any, period: Period, source: str, field_: str) -> MeterValue:
    if not isinstance(raw, dict):
        return _number(raw, source, field_)
    unknown = sorted(set(raw) - {"interval", "values", "ids", "items"})
    if unknown:
        raise InputError(source, f"{field_}.{unknown[0]}", "unknown key; allowed: interval, values, ids, items")
    if sum(k in raw for k in ("values", "ids", "items")) != 1:
        raise InputError(source, field_, "a series needs exactly one of 'values', 'ids' or 'items'")
    interval = None
    if "interval" in raw:
        try:
            interval = Interval.parse(raw["interval"])
        except ValueError as exc:
            raise InputError(source, f"{field_}.interval", str(exc)) from None
    elif "values" in raw:
        raise InputError(source, f"{field_}.interval", "required for a series of values (e.g. 1min, 1h, 1d)")
    if "ids" in raw:
        return _ids(raw["ids"], interval, period, source, f"{field_}.ids")
    if "items" in raw:
        return _items(raw["items"], interval, period, source, f"{field_}.items")
    values = _values(raw["values"], source, f"{field_}.values")
    _check_length(len(values), interval, period, source, f"{field_}.values")
    return Series(interval, values)


def _values(raw: Any, source: str, field_: str) -> np.ndarray:
    if not isinstance(raw, list):
        raise InputError(source, field_, f"expected a list of numbers, got {type(raw).__name__}")
    if not set(map(type, raw)) <= {int, float}:  # the usual case is checked in one pass of C (a month: 44,640)
        bad = next((i for i, v in enumerate(raw) if isinstance(v, bool) or not isinstance(v, int | float)), None)
        if bad is not None:
            raise InputError(source, f"{field_}[{bad}]", f"expected a number, got {raw[bad]!r}")
    try:
        values = np.asarray(raw, dtype=np.float64)
    except OverflowError:  # an integer beyond float range
        values = np.asarray([v if abs(v) < 1e308 else np.inf for v in raw], dtype=np.float64)
    wrong = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if wrong.size:
        i = int(wrong[0])
        raise InputError(source, f"{field_}[{i}]", f"must be a finite non-negative number, got {_short(raw[i])}")
    total = float(values.sum())
    if total > MAX_TOTAL:
        raise InputError(source, field_, f"the values add up to {total:g}, more than {MAX_TOTAL:g}, the largest "
                         "quantity priced exactly")
    return values


def _short(value: Any) -> str:
    """A value as an error shows it: at most 40 characters (a 400-digit number is not an explanation)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _check_length(n: int, interval: Interval, period: Period, source: str, field_: str) -> None:
    try:
        expected = period.length(interval)
    except ValueError as exc:
        raise InputError(source, field_, str(exc)) from None
    if n != expected:
        raise InputError(
            source, field_,
            f"expected {expected} values (one per {interval.text} from {period.start.isoformat()} "
            f"to {period.end.isoformat()}), got {n}",
        )


def _ids(raw: Any, interval: Interval | None, period: Period, source: str, field_: str) -> IdSeries:
    if not isinstance(raw, list):
        raise InputError(source, field_, "expected a list of ids (or of lists of ids per interval)")
    if interval is None:
        return IdSeries(None, [frozenset(_hashable(v, source, field_) for v in raw)])
    groups = []
    for i, group in enumerate(raw):
        if not isinstance(group, list):
            raise InputError(source, f"{field_}[{i}]", "expected a list of ids for this interval")
        groups.append(frozenset(_hashable(v, source, f"{field_}[{i}]") for v in group))
    _check_length(len(groups), interval, period, source, field_)
    return IdSeries(interval, groups)


def _hashable(v: Any, source: str, field_: str):
    if isinstance(v, str | int) and not isinstance(v, bool):
        return v
    raise InputError(source, field_, f"an id must be a string or an integer, got {v!r}")


def _items(raw: Any, interval: Interval | None, period: Period, source: str, field_: str) -> Distribution:
    """A distribution's ``items``: parallel lists ``value`` and ``count`` (and ``at`` with an interval)."""
    keys = ("at", "value", "count") if interval is not None else ("value", "count")
    if not isinstance(raw, dict):
        raise InputError(source, field_, f"expected a mapping of {', '.join(keys)} lists")
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        why = "unknown key" if unknown[0] != "at" else "'at' needs the meter's 'interval'"
        raise InputError(source, f"{field_}.{unknown[0]}", f"{why}; allowed: {', '.join(keys)}")
    for k in keys:
        if k not in raw:
            raise InputError(source, f"{field_}.{k}", "required")
    value = _values(raw["value"], source, f"{field_}.value")
    count = _values(raw["count"], source, f"{field_}.count")
    lengths = {len(value), len(count)}
    at = None
    if interval is not None:
        at_f = _values(raw["at"], source, f"{field_}.at")
        lengths.add(len(at_f))
        n = _expected(interval, period, source, f"{field_}.at")
        bad = np.flatnonzero((at_f != np.floor(at_f)) | (at_f >= n))
        if bad.size:
            i = int(bad[0])
            raise InputError(source, f"{field_}.at[{i}]", f"must be a whole interval index below {n} "
                             f"(one per {interval.text} of the period), got {_short(raw['at'][i])}")
        at = at_f.astype(np.int64)
    if len(lengths) != 1:
        raise InputError(source, field_, f"{' and '.join(keys)} must have the same length")
    if float((value * count).sum()) > MAX_TOTAL:
        raise InputError(source, field_, f"the items add up to more than {MAX_TOTAL:g}, the largest quantity priced exactly")
    return Distribution(interval, value, count, at)


def _expected(interval: Interval, period: Period, source: str, field_: str) -> int:
    try:
        return period.length(interval)
    except ValueError as exc:
        raise InputError(source, field_, str(exc)) from None
