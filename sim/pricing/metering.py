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
count      the number of items of a distribution meter (messages, connections)
========== =================================================================================

A *distribution* meter (items by value, ``sim/pricing/usage.py``) sums to the total of its values
(``sum``), counts its items (``count``) or gives its largest value (``max``). With the metric's ``each``
every item is rounded up to whole steps on its own before the sum: a message of s bytes billed in
5 KB increments is ceil(s / 5 KB) messages, a connection of d seconds billed per started minute is
ceil(d / 60) minutes. A composite metric (``sum_of``) adds the quantities of other metrics, each
converted and rounded by its own rule, so that one allowance covers them all.

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
from sim.pricing.usage import Distribution, IdSeries, MeterValue, Series, Usage

QUANTUM = Decimal("1e-9")
_ROUNDING = {"ceil": ROUND_CEILING, "floor": ROUND_FLOOR, "half_up": ROUND_HALF_UP}
_CUMULATIVE = ("sum", "unique", "count")


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


def item_steps(value: np.ndarray, step: Decimal, minimum: int = 0) -> np.ndarray:
    """Each item's value rounded up to whole ``step`` s (a count of steps), at least ``minimum``. Exact for whole
    values and a whole step (bytes, seconds): integer arithmetic; otherwise a float ceiling with a guard against
    float noise (4.0000000001 steps of a value that is 4 steps is 4)."""
    v = np.asarray(value, dtype=np.float64)
    if step == step.to_integral_value() and np.all(v == np.floor(v)) and float(v.max(initial=0)) < 2.0**53:
        s = int(step)
        steps = -(-v.astype(np.int64) // s)
    else:
        q = v / float(step)
        steps = np.ceil(q - 1e-9 * np.maximum(1.0, q))
    return np.maximum(steps, minimum).astype(np.float64)


def _distribution(value: Distribution, aggregation: str, period: Period,
                  step: Decimal | None = None, minimum: int = 0) -> tuple[float, np.ndarray | None]:
    n = 1 if value.interval is None else period.length(value.interval)
    if aggregation == "max":
        if value.at is None:
            return float(value.value[value.count > 0].max(initial=0)), None
        per = np.zeros(n)
        np.maximum.at(per, value.at[value.count > 0], value.value[value.count > 0])
        progress = np.maximum.accumulate(per)
        return float(progress[-1]), progress
    if aggregation == "count":
        weights = np.ones(value.value.size)
    elif aggregation == "sum":
        weights = value.value if step is None else item_steps(value.value, step, minimum)
    else:
        raise ValueError(f"a distribution (items) can be aggregated with sum, count or max, not {aggregation!r}")
    per = value.per_interval(weights, n)
    if value.interval is None:
        return float(per[0]), None
    progress = np.cumsum(per)
    return float(progress[-1]), progress


def aggregate(value: MeterValue, aggregation: str, period: Period, step: Decimal | None = None,
              minimum: int = 0) -> tuple[float, np.ndarray | None]:
    """Aggregate one meter value; returns (quantity in meter units, progress series or None). ``step``: round
    each item of a distribution up to whole steps (``each``), counted in steps."""
    if isinstance(value, Distribution):
        return _distribution(value, aggregation, period, step, minimum)
    if step is not None:
        raise ValueError("each (items rounded one by one) needs a distribution meter (items), not a total or series")
    if aggregation == "count":
        raise ValueError("'count' counts the items of a distribution meter (items)")
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
    minimum = metric.each.minimum if metric.each is not None else 0
    try:
        raw, progress = aggregate(value, metric.aggregation, period, metric.step, minimum) if present else (0.0, None)
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
            for name, metric in plan.metrics.items() if metric.sum_of is None}
    return derive(plan, base)


def derive(plan: Plan, base: dict[str, Measurement]) -> dict[str, Measurement]:
    """From the metrics measured on meters: ``at_least`` derivations and rounding, then the composite
    (``sum_of``) metrics as sums of their parts' final quantities."""
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
    for name, metric in plan.metrics.items():
        if metric.sum_of is None:
            continue
        parts = [out[p] for p in metric.sum_of]
        total = sum((p.quantity for p in parts), Decimal(0))
        intervals = {(p.interval.text if p.interval else None) for p in parts}
        progress = None
        if len(intervals) == 1 and None not in intervals and all(p.progress is not None for p in parts):
            progress = np.sum([p.progress for p in parts], axis=0)
        note = " + ".join(f"{p.name} {quantity_text(p.quantity, p.metric.unit)}" for p in parts)
        out[name] = Measurement(name, metric, any(p.present for p in parts), total, total, _round(total, metric),
                                note, progress, parts[0].interval if progress is not None else None)
    return out


def daily_quantities(plan: Plan, name: str, usage: Usage) -> list[Decimal]:
    """The metric's quantity on each calendar day of the period, each day converted and rounded on its own
    (a charge with ``cadence: daily``). A composite metric adds its parts day by day."""
    metric = plan.metrics[name]
    if metric.sum_of is not None:
        parts = [daily_quantities(plan, p, usage) for p in metric.sum_of]
        return [_round(sum(day, Decimal(0)), metric) for day in zip(*parts, strict=True)]
    days = usage.period.days
    value = usage.meters.get(metric.meter)
    if value is None:
        return [Decimal(0)] * days
    per_day = _per_day(value, metric, usage.period, f"meters.{metric.meter}", usage.source)
    factor = metric.factor
    return [_round((to_decimal(x) * factor).quantize(QUANTUM, rounding=ROUND_HALF_UP), metric) for x in per_day]


def _per_day(value: MeterValue, metric: Metric, period: Period, field: str, source: str) -> np.ndarray:
    """One aggregated value per calendar day, in meter units."""
    agg = metric.aggregation
    if isinstance(value, Distribution):
        if value.interval is None:
            raise InputError(source, field, "a daily charge needs the distribution per interval (interval: 1d)")
        bounds = period.day_bounds(value.interval)
        day = np.searchsorted(bounds, value.at, side="right") - 1
        if agg == "max":
            out = np.zeros(period.days)
            np.maximum.at(out, day, value.value)
            return out
        weights = (np.ones(value.value.size) if agg == "count" else value.value if metric.step is None
                   else item_steps(value.value, metric.step, metric.each.minimum))
        return np.bincount(day, weights=value.count * weights, minlength=period.days)[:period.days]
    if isinstance(value, IdSeries):
        if value.interval is None:
            raise InputError(source, field, "a daily charge needs ids per interval")
        bounds = period.day_bounds(value.interval)
        edges = np.append(bounds, len(value.ids))
        return np.array([float(len(frozenset().union(*value.ids[a:b]))) for a, b in zip(edges, edges[1:], strict=False)])
    if not isinstance(value, Series):
        raise InputError(source, field, "a daily charge needs a series (interval), not a total for the period")
    v = value.values
    bounds = period.day_bounds(value.interval)
    edges = np.append(bounds, v.size)
    if agg in ("sum", "unique"):
        return np.add.reduceat(v, bounds)
    if agg == "max":
        return np.maximum.reduceat(v, bounds)
    if agg in ("avg", "daily_avg"):
        return np.add.reduceat(v, bounds) / np.diff(edges)
    if agg == "latest":
        return v[edges[1:] - 1]
    raise InputError(source, field, f"aggregation {agg!r} has no daily value")
