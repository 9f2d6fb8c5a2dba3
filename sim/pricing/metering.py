"""Metering: a usage meter + a plan's metric -> a quantity (no money here).

Aggregations (billing conventions, "Shape: meter -> rate -> adjust"):

========== =================================================================================
sum        total over the period (bytes transferred)
max        peak (concurrent connections)
latest     the last value
avg        time-weighted average of snapshots (series are regular, so the mean)
daily_avg  average of the calendar days' averages (IoT seed: storage "snapshot every minute ...
           calculate the daily average ... based on the daily averages we calculate the monthly
           average"; element counts likewise)
unique     distinct ids (a number, ``ids`` lists, or per-interval counts of first-seen ids)
========== =================================================================================

A meter given as a number is already aggregated and is taken as it is, whatever the aggregation.
Then: unit conversion, the ``at_least`` derivation (billable MAU = max(MAU, 10 x peak CCU)), and the
metric's rounding. Quantities are carried as Decimal, first quantized to 1e-9 of their unit so
that float noise (4.0000000000000005 GB) cannot tip a ceiling into the next unit.

Each measurement also keeps a *progress* series: the metric's value so far at the end of each
interval (cumulative for sums and unique counts, the running peak of the level otherwise), from
which notifications and violations take the time they happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

import numpy as np

from sim.errors import InputError
from sim.pricing.bill import quantity_text
from sim.pricing.period import Interval, Period
from sim.pricing.plan import Metric, Plan
from sim.pricing.usage import IdSeries, MeterValue, Series, Usage

QUANTUM = Decimal("1e-9")
_ROUNDING = {"ceil": ROUND_CEILING, "floor": ROUND_FLOOR, "half_up": ROUND_HALF_UP}
_CUMULATIVE = ("sum", "unique")


@dataclass(frozen=True)
class Measurement:
    """One metric measured on one usage."""

    name: str
    metric: Metric
    present: bool                     # False: the usage lacks the meter (counted as zero)
    aggregated: Decimal               # the aggregation, in the meter's unit
    converted: Decimal                # in the metric's unit, before derivation and rounding
    quantity: Decimal                 # after at_least and rounding: what charges and limits see
    derived_from: str | None = None   # explanation when at_least raised the quantity
    progress: np.ndarray | None = None    # metric units, value so far at the end of each interval
    interval: Interval | None = None

    def time_reaching(self, period: Period, level: float) -> datetime | None:
        """When the progress first reached ``level`` (interpolated inside the interval for sums)."""
        if self.progress is None or self.interval is None:
            return None
        hit = first_reach(self.progress, level, self.metric.aggregation in _CUMULATIVE)
        if hit is None:
            return None
        i, frac = hit
        start, end = period.interval_start(self.interval, i), period.interval_end(self.interval, i)
        a, b = period_offset(period, start), period_offset(period, end)
        return period.at(a + (b - a) * frac)


def progress_of(values: np.ndarray, aggregation: str) -> np.ndarray:
    """The metric's value so far at the end of each interval: cumulative for sum and unique, the running peak
    of the level otherwise. Notifications and violations take their times from it."""
    return np.cumsum(values) if aggregation in _CUMULATIVE else np.maximum.accumulate(values)


def first_reach(progress: np.ndarray, level: float, cumulative: bool) -> tuple[int, float] | None:
    """The interval in which ``progress`` first reaches ``level``, and how far into it (0..1).

    A cumulative amount is taken to grow evenly inside its interval; a level counts from the interval's start.
    """
    hit = np.flatnonzero(progress >= level)
    if hit.size == 0:
        return None
    i = int(hit[0])
    if not cumulative:
        return i, 0.0
    before = float(progress[i - 1]) if i else 0.0
    step = float(progress[i]) - before
    return i, 0.0 if step <= 0 else min(1.0, max(0.0, (level - before) / step))


def period_offset(period: Period, t: datetime) -> float:
    return (t.astimezone(UTC) - period.start.astimezone(UTC)).total_seconds()


def to_decimal(x: float) -> Decimal:
    return Decimal(repr(float(x))).quantize(QUANTUM, rounding=ROUND_HALF_UP)


def aggregate(value: MeterValue, aggregation: str, period: Period) -> tuple[float, np.ndarray | None]:
    """Aggregate one meter value; returns (quantity in meter units, progress series or None)."""
    if isinstance(value, IdSeries):
        counts = value.first_seen_counts()
        if aggregation != "unique":
            raise ValueError(f"ids can only be aggregated with 'unique', not {aggregation!r}")
        progress = np.cumsum(counts) if value.interval is not None else None
        return float(counts.sum()), progress
    if not isinstance(value, Series):
        return float(value), None
    v = value.values
    progress = progress_of(v, aggregation)
    if aggregation in _CUMULATIVE:
        return float(progress[-1]), progress
    if aggregation == "max":
        return float(progress[-1]), progress
    if aggregation == "latest":
        return float(v[-1]), progress
    if aggregation == "avg":
        return float(v.mean()), progress
    if aggregation == "daily_avg":
        bounds = period.day_bounds(value.interval)
        counts = np.diff(np.append(bounds, v.size))
        daily = np.add.reduceat(v, bounds) / counts
        return float(daily.mean()), progress
    raise ValueError(f"unknown aggregation {aggregation!r}")


def _round(q: Decimal, metric: Metric) -> Decimal:
    if metric.round is None:
        return q
    exp = Decimal(1).scaleb(-metric.round.precision)
    return q.quantize(exp, rounding=_ROUNDING[metric.round.mode])


def measure_metric(name: str, metric: Metric, value: MeterValue | None, period: Period, source: str = "<usage>",
                   context: str = "") -> Measurement:
    """One metric on one meter value (None: absent, counted as zero): aggregated and converted, before any
    ``at_least`` derivation or rounding (which :func:`measure` applies, as they need the plan)."""
    present = value is not None
    try:
        raw, progress = aggregate(value, metric.aggregation, period) if present else (0.0, None)
    except ValueError as exc:
        raise InputError(source, f"meters.{metric.meter}", f"{exc}{context}") from None
    aggregated = to_decimal(raw)
    factor = metric.factor
    converted = (aggregated * factor).quantize(QUANTUM, rounding=ROUND_HALF_UP)
    if progress is not None and factor != 1:
        progress = progress * float(factor)
    interval = value.interval if isinstance(value, Series | IdSeries) else None
    return Measurement(name, metric, present, aggregated, converted, converted, None, progress, interval)


def measure(plan: Plan, usage: Usage) -> dict[str, Measurement]:
    """Measure every metric of ``plan`` on ``usage``. Metrics used by ``at_least`` come first."""
    base = {name: measure_metric(name, metric, usage.meters.get(metric.meter), usage.period,
                                 usage.source, f" (plan {plan.name}, metric {name})")
            for name, metric in plan.metrics.items()}

    out: dict[str, Measurement] = {}
    for name, m in base.items():
        quantity, note = m.converted, None
        if m.metric.at_least is not None:
            rule = m.metric.at_least
            other = base[rule.metric]
            floor = other.converted * rule.multiplier
            if floor > quantity:
                quantity = floor
                note = (f"{rule.multiplier} x {rule.metric} ({quantity_text(other.converted)}) = {quantity_text(floor)}"
                        + (f": {rule.reason}" if rule.reason else ""))
        out[name] = Measurement(m.name, m.metric, m.present, m.aggregated, m.converted,
                                _round(quantity, m.metric), note, m.progress, m.interval)
    return out
