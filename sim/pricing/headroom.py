"""Free-tier headroom: how much of each free limit an app uses, and how far it can grow before it leaves the tier.

:func:`headroom` is a pure function of a usage and a plan (no SimPy, no I/O), like :func:`sim.pricing.price`. For
each of the plan's hard limits it gives

* the metric's **quantity** in the plan's unit, exactly as pricing checks it (after unit conversion, the
  ``at_least`` derivation and the metric's rounding), and the **limit** (``max``, or for ``max_fraction_of``
  the fraction x the other metric's measured quantity, as :func:`sim.pricing.pricing.price` computes it);
* **usage_fraction** = quantity / limit (a float), and whether the limit is **exceeded** (the same test as the
  bill's violations);
* the **growth factor** g: the factor at which the limit is first exceeded when *all* the app's usage is
  multiplied by g.

**The growth model.** An app that grows by g has g times the users, so every meter scales by g: MAU, bytes
transferred, the stored level, peak CCU, element counts (the peaks of users who keep their habits scale with
their number). Each meter is scaled, value by value, and measured again by the real metering function
(:func:`sim.pricing.metering.measure`), so a derived quantity scales as the rule says (mesibo's billable MAU =
max(MAU, 10 x peak CCU): both sides scale by g, so does the maximum).

* A ``max`` limit L on a quantity q(g): g is where q(g) first exceeds L (``q(g) > L`` for every g above it, never
  below). Without rounding that is L / q(1). With rounding it is where the *rounded* quantity first exceeds L,
  not L / round(q(1)): storage ceiled to whole GB with a 1 GB limit and 0.3 GB stored is exceeded as soon as the
  unrounded 0.3 g GB passes 1, at g = 1/0.3 = 3.33 (ceil(0.3 x 3.34) = 2 GB > 1), whereas scaling the rounded
  1 GB would say g = 1. The closed form (the threshold of the unrounded quantity / its value today) is checked
  through the metering function just below and just above it; where the metering's own quantisation (quantities
  are carried to 10^-9 of their unit) moves the boundary, the boundary is found by bisection on the scaled usage
  through the metering function, to float precision. Either way, scaling the usage by g x (1 + 1e-9) exceeds
  the limit and by g x (1 - 1e-9) does not (tested).
* A ``max_fraction_of`` limit (mesibo: peak CCU at most 10 % of MAU) compares two quantities that both scale
  by g, so their ratio does not move with growth: g is **inf** when the limit holds (growth never breaks it) and
  **0** when it is already exceeded (no growth, nor shrinking, brings it back). Rounding of either metric is not
  modelled there (no shipped plan rounds a metric a fraction limit is on).
* A metric the app does not use (quantity 0) never exceeds a limit by growth: g = inf. A limit of 0 on a metric
  the app uses (flespi Free's subaccounts) is exceeded at any scale: g = 0.

The app's growth factor is the smallest over its limits, and the limits that reach it (within a relative 1e-9:
ties are reported together) **bind first**. Below 1 (or ``exceeded`` true) the app is already outside the free
tier: for a ``max`` limit, g < 1 is the factor the app would have to shrink to for that limit to hold again.

Quantities and limits are Decimals (as the metering carries them); fractions and growth factors are floats
(``math.inf`` for never). :meth:`Headroom.to_dict` is the JSON (``headroom.json`` of ``sim run``), where an
infinite value is ``null``.

Note: ``sim.pricing`` exports the function as ``sim.pricing.headroom``, which hides this module's name as an
attribute of the package; import the rest from it with ``from sim.pricing.headroom import Headroom, scale_usage``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

import numpy as np

from sim.pricing.bill import _num, quantity_text
from sim.pricing.metering import Measurement, measure
from sim.pricing.plan import Limit, Metric, Plan
from sim.pricing.usage import Distribution, IdSeries, MeterValue, Series, Usage

#: Growth factors within this relative distance of the smallest bind together (a tie).
TIE = 1e-9


@dataclass(frozen=True)
class LimitHeadroom:
    """One free limit of one plan on one usage."""

    metric: str
    description: str
    unit: str
    kind: str                        # "max" or "max_fraction_of"
    quantity: Decimal                # in `unit`: after conversion, at_least and rounding (what the limit checks)
    limit: Decimal                   # the max, or fraction x the other metric's measured quantity
    usage_fraction: float            # quantity / limit; inf when the limit is 0 and the quantity is not
    exceeded: bool
    growth_factor: float             # all usage x this first exceeds the limit; inf: never; 0: at any scale
    binds_first: bool = False
    derived_from: str | None = None  # when at_least raised the quantity (10 x peak_ccu ...)
    of_metric: str | None = None     # max_fraction_of: the other metric, and the fraction
    fraction: Decimal | None = None

    def to_dict(self) -> dict:
        u = self.unit
        return {
            "metric": self.metric,
            "description": self.description,
            "kind": self.kind,
            "unit": u,
            "quantity": _num(self.quantity, u),
            "limit": _num(self.limit, u),
            "usage_fraction": _finite(self.usage_fraction),
            "exceeded": self.exceeded,
            "growth_factor": _finite(self.growth_factor),
            "binds_first": self.binds_first,
            "derived_from": self.derived_from,
            "of_metric": self.of_metric,
            "fraction": None if self.fraction is None else str(self.fraction),
        }


@dataclass(frozen=True)
class Headroom:
    """A plan's free limits on one usage: each limit's headroom, and the growth at which the app leaves the tier."""

    plan: str
    limits: tuple[LimitHeadroom, ...]
    growth_factor: float             # the smallest limit's factor; < 1 when already exceeded; inf: never leaves
    binding: tuple[str, ...]         # metrics of the limits that bind first (several on a tie), () when never
    exceeded: bool                   # a limit is exceeded already (the bill has violations)
    free: bool = True                # a free plan (no charges, no fees): its limits are a free tier, else a package's

    @property
    def tier(self) -> str:
        """What the limits are, in words: "the free tier", or "the plan's limits" for a paid package's."""
        return "the free tier" if self.free else "the plan's limits"

    def limit(self, metric: str) -> LimitHeadroom:
        for lim in self.limits:
            if lim.metric == metric:
                return lim
        raise KeyError(f"no limit on {metric!r} in {self.plan}; limits: {[x.metric for x in self.limits]}")

    def text(self) -> str:
        """One line in words: where the app stands and which limits bind first."""
        g, names = self.growth_factor, ", ".join(self.binding)
        if self.exceeded:
            over = ", ".join(x.metric for x in self.limits if x.exceeded)
            why = ", ".join(f"{x.metric}: {'a ratio of two quantities that grow together' if x.of_metric else 'a limit of 0'}"
                            for x in self.limits if x.binds_first)
            back = (f"no scaling brings it back ({why})" if g == 0 else
                    f"inside again only below {factor_text(g)} x today's usage ({names})")
            return f"already outside {self.tier} (exceeded: {over}); {back}"
        if math.isinf(g):
            return f"growth never leaves {self.tier} (no limit is approached)"
        return f"leaves {self.tier} at {factor_text(g)} x today's usage; binds first: {names}"

    def to_dict(self) -> dict:
        """JSON: quantities in each limit's unit (clean, as in bills), fractions and factors as floats, null when
        infinite (a growth factor of null: growth never exceeds that limit)."""
        return {
            "plan": self.plan,
            "growth_factor": _finite(self.growth_factor),
            "exceeded": self.exceeded,
            "free": self.free,
            "binding": list(self.binding),
            "summary": self.text(),
            "limits": [lim.to_dict() for lim in self.limits],
        }

    def to_dataframe(self):
        """One row per limit (pandas), quantities and limits as Decimals."""
        import pandas as pd

        rows = [lim.to_dict() | {"quantity": lim.quantity, "limit": lim.limit,
                                 "usage_fraction": lim.usage_fraction, "growth_factor": lim.growth_factor}
                for lim in self.limits]
        return pd.DataFrame(rows).set_index("metric")


def factor_text(g: float) -> str:
    """A growth factor for people: 2.5, 3.33, 0.5, 1,250; "never" for inf."""
    if math.isinf(g):
        return "never"
    return f"{g:,.0f}" if g >= 1000 else f"{g:.3g}"


def _finite(x: float) -> float | None:
    return None if math.isinf(x) or math.isnan(x) else x


# -- scaling a usage -------------------------------------------------------------------------------------------


def _scalable(value: MeterValue) -> MeterValue:
    """A meter value that can be multiplied: ids become their first-seen counts (what ``unique`` measures)."""
    if isinstance(value, IdSeries):
        counts = value.first_seen_counts()
        return float(counts.sum()) if value.interval is None else Series(value.interval, counts)
    return value


def _times(value: MeterValue, g: float) -> MeterValue:
    if isinstance(value, Series):
        return Series(value.interval, value.values * g)
    if isinstance(value, Distribution):  # g times as many items of each size (messages, connections)
        return replace(value, count=np.asarray(value.count, dtype=np.float64) * g)
    return float(value) * g


def scale_usage(usage: Usage, g: float, meters: set[str] | None = None) -> Usage:
    """``usage`` with every meter (or only ``meters``) multiplied by ``g``, value by value: the app grown (or
    shrunk) by ``g``. Ids become counts of first-seen ids per interval (so ``unique`` scales too)."""
    names = set(usage.meters) if meters is None else meters & set(usage.meters)
    scaled = {name: _times(_scalable(usage.meters[name]), g) for name in names}
    return Usage(period=usage.period, meters=scaled, source=usage.source, extra={})


# -- the limits ------------------------------------------------------------------------------------------------


def _limit_value(lim: Limit, measured: dict[str, Measurement]) -> Decimal:
    """The limit as pricing's violations compute it (sim/pricing/pricing.py, ``_violations``)."""
    if lim.max is not None:
        return lim.max
    rel = lim.max_fraction_of
    return measured[rel.metric].converted * rel.fraction     # of the measured, not the derived, quantity


def _unrounded(name: str, measured: dict[str, Measurement]) -> Decimal:
    """The metric's quantity after conversion and at_least, before rounding (linear in the growth factor)."""
    m = measured[name]
    q = m.converted
    rule = m.metric.at_least
    if rule is not None:
        q = max(q, measured[rule.metric].converted * rule.multiplier)
    return q


def _threshold(limit: Decimal, metric: Metric) -> Decimal:
    """The unrounded quantity at which the rounded one first exceeds ``limit``.

    No rounding: ``limit`` (exceeded above it). ``ceil`` to a step s: above floor_s(limit). ``floor``: from the
    first multiple of s above the limit. ``half_up``: from half a step below that multiple."""
    r = metric.round
    if r is None:
        return limit
    step = Decimal(1).scaleb(-r.precision)
    below = (limit / step).to_integral_value(rounding=ROUND_FLOOR) * step
    if r.mode == "ceil":
        return below
    if r.mode == "floor":
        return below + step
    return below + step / 2


def _meters_of(plan: Plan, lim: Limit) -> set[str]:
    """The meters the limited quantity is made of."""
    metric = plan.metrics[lim.metric]
    meters = {metric.meter}
    if metric.at_least is not None:
        meters.add(plan.metrics[metric.at_least.metric].meter)
    return meters


def _exceeds(plan: Plan, lim: Limit, usage: Usage) -> Callable[[float], bool]:
    """Whether ``usage`` x g exceeds the (``max``) limit, through the real metering function."""
    sub = Usage(period=usage.period, source=usage.source,
                meters={k: _scalable(usage.meters[k]) for k in _meters_of(plan, lim) if k in usage.meters})

    def exceeded(g: float) -> bool:
        try:
            return measure(plan, scale_usage(sub, g))[lim.metric].quantity > lim.max
        except InvalidOperation:   # a quantity beyond 28 digits: astronomically above any limit (<= 10^15)
            return True

    return exceeded


def _boundary(exceeded: Callable[[float], bool], g0: float) -> float:
    """The smallest g at which ``exceeded`` turns true, near the closed form ``g0`` (monotone in g).

    ``g0`` is kept when the predicate flips within 1e-12 of it; otherwise a bracket is widened around it and
    bisected to float precision; the upper end (a factor that exceeds) is returned."""
    eps = 1e-12
    if not exceeded(g0 * (1 - eps)) and exceeded(g0 * (1 + eps)):
        return g0
    d, lo = 1e-9, g0 * (1 - 1e-9)
    while exceeded(lo):
        d *= 10
        if d >= 1:
            lo = 0.0               # nothing is exceeded at zero usage: a limit is never negative
            break
        lo = g0 * (1 - d)
    d, hi = 1e-9, g0 * (1 + 1e-9)
    while not exceeded(hi):
        d *= 10
        hi = g0 * (1 + d)
        if not math.isfinite(hi):
            return math.inf
    for _ in range(400):
        mid = lo + (hi - lo) / 2
        if mid <= lo or mid >= hi:
            break
        if exceeded(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _growth(plan: Plan, lim: Limit, usage: Usage, measured: dict[str, Measurement], exceeded_now: bool) -> float:
    if lim.max_fraction_of is not None:
        return 0.0 if exceeded_now else math.inf    # both sides scale by g: the ratio never moves
    q0 = _unrounded(lim.metric, measured)
    threshold = _threshold(lim.max, plan.metrics[lim.metric])
    if q0 == 0:
        return math.inf
    if threshold == 0:
        return 0.0
    return _boundary(_exceeds(plan, lim, usage), float(threshold / q0))


def headroom(usage: Usage, plan: Plan) -> Headroom | None:
    """The free-tier headroom of ``usage`` under ``plan`` (see the module's docstring); None when the plan has no
    hard limits (not a free plan). Reads ``usage.period`` and ``usage.meters`` only, as :func:`price` does."""
    if not plan.limits:
        return None
    measured = measure(plan, usage)
    rows = []
    for lim in plan.limits:
        m = measured[lim.metric]
        limit = _limit_value(lim, measured)
        exceeded = m.quantity > limit
        if limit:
            fraction = float(m.quantity / limit)
        else:
            fraction = math.inf if m.quantity else 0.0
        rel = lim.max_fraction_of
        description = lim.description or (f"{rel.fraction} x {rel.metric}" if rel else
                                           f"{quantity_text(lim.max)} {m.metric.unit}")
        rows.append(LimitHeadroom(
            metric=lim.metric, description=description, unit=m.metric.unit,
            kind="max" if rel is None else "max_fraction_of", quantity=m.quantity, limit=limit,
            usage_fraction=fraction, exceeded=exceeded, growth_factor=_growth(plan, lim, usage, measured, exceeded),
            derived_from=m.derived_from, of_metric=rel.metric if rel else None, fraction=rel.fraction if rel else None))
    g = min(r.growth_factor for r in rows)
    binds = [not math.isinf(g) and r.growth_factor <= g * (1 + TIE) for r in rows]
    rows = [replace(r, binds_first=b) for r, b in zip(rows, binds, strict=True)]
    return Headroom(plan=plan.name, limits=tuple(rows), growth_factor=g,
                    binding=tuple(r.metric for r in rows if r.binds_first), exceeded=any(r.exceeded for r in rows),
                    free=not plan.charges_anything)
