"""One bill over several entities: apps or regions billed on one account.

Platforms bill an organisation, not an app: AWS and Azure add every IoT thing of an account in a region, Ably
and PubNub count an account's messages and peak connections across its apps. So each metric is measured on
every entity and the measurements are combined *before* rating, by the metric's ``across_entities`` rule:

=============== ==========================================================================================
``sum``         add the entities' quantities (the default: bytes, messages, MAU of disjoint user bases; for
                a peak, the organisation's peak as the sum of its apps' peaks, an upper bound that needs no
                timing)
``peak_of_sum`` add the entities' series interval by interval, then aggregate (the peak of the account's
                concurrent connections); every entity must give the meter as a series of one interval
``max``         the largest entity's quantity
=============== ==========================================================================================

Then the plan's derivations, composite metrics, allowances, tiers, fees and minimum apply once, to the whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import numpy as np

from sim.errors import InputError
from sim.pricing.bill import quantity_text
from sim.pricing.metering import Measurement, derive, measure_metric
from sim.pricing.plan import Plan
from sim.pricing.usage import Series, Usage


def combine(plan: Plan, usages: Mapping[str, Usage]) -> tuple[dict[str, Measurement], Usage, list[str]]:
    """The plan's measurements over all ``usages`` (entity name -> usage of the same period), a usage standing for
    the account (the period and every meter any entity reports), and one note per combined metric."""
    if not usages:
        raise ValueError("no entities to bill")
    first_name, first = next(iter(usages.items()))
    for name, u in usages.items():
        if (u.period.start, u.period.end) != (first.period.start, first.period.end):
            raise InputError(u.source, "period", f"entity {name!r} covers {u.period.start.isoformat()} to "
                             f"{u.period.end.isoformat()}, entity {first_name!r} {first.period.start.isoformat()} to "
                             f"{first.period.end.isoformat()}: one bill needs one period")
    base: dict[str, Measurement] = {}
    notes: list[str] = []
    for name, metric in plan.metrics.items():
        if metric.sum_of is not None:
            continue
        rule = metric.across_entities
        if rule == "peak_of_sum":
            base[name] = _peak_of_sum(name, metric, usages, plan)
            parts = ""
        else:
            each = {e: measure_metric(name, metric, u.meters.get(metric.meter), u.period, u.source,
                                      f" (plan {plan.name}, metric {name}, entity {e})") for e, u in usages.items()}
            base[name] = _sum(name, each) if rule == "sum" else max(each.values(), key=lambda m: m.converted)
            parts = ", ".join(f"{e} {quantity_text(m.converted, metric.unit)} {metric.unit}" for e, m in each.items())
        total = quantity_text(base[name].converted, metric.unit)
        how = {"sum": "summed", "peak_of_sum": "peak of the summed series", "max": "the largest"}[rule]
        notes.append(f"{name} over {len(usages)} entities ({how}): {parts + ' -> ' if parts else ''}{total} "
                     f"{metric.unit}")
    meters: dict = {}
    for u in usages.values():
        meters.update({k: 0.0 for k in u.meters})
    account = Usage(first.period, meters, source=" + ".join(u.source for u in usages.values()))
    return derive(plan, base), account, notes


def _sum(name: str, each: dict[str, Measurement]) -> Measurement:
    ms = list(each.values())
    m0 = ms[0]
    aggregated = sum((m.aggregated for m in ms), Decimal(0))
    converted = sum((m.converted for m in ms), Decimal(0))
    progress, interval = None, None
    texts = {m.interval.text if m.interval else None for m in ms}
    if len(texts) == 1 and None not in texts and all(m.progress is not None for m in ms):
        progress, interval = np.sum([m.progress for m in ms], axis=0), m0.interval
    return Measurement(name, m0.metric, any(m.present for m in ms), aggregated, converted, converted, None,
                       progress, interval)


def _peak_of_sum(name: str, metric, usages: Mapping[str, Usage], plan: Plan) -> Measurement:
    values = {e: u.meters.get(metric.meter) for e, u in usages.items()}
    present = {e: v for e, v in values.items() if v is not None}
    intervals = {v.interval.text for v in present.values() if isinstance(v, Series)}
    if len(intervals) != 1 or not all(isinstance(v, Series) for v in present.values()):
        bad = next((e for e, v in present.items() if not isinstance(v, Series)), next(iter(present), None))
        source = usages[bad].source if bad is not None else "<usage>"
        raise InputError(source, f"meters.{metric.meter}", f"plan {plan.name}, metric {name}: across_entities "
                         "peak_of_sum needs the meter as a series of the same interval in every entity")
    series = list(present.values())
    total = Series(series[0].interval, np.sum([s.values for s in series], axis=0))
    u0 = next(iter(usages.values()))
    return measure_metric(name, metric, total, u0.period, u0.source, f" (plan {plan.name}, metric {name})")
