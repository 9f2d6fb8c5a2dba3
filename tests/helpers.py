"""Small builders shared by the pricing tests."""

from __future__ import annotations

from decimal import Decimal

from sim.pricing.plan import load_plan, plan_from_dict
from sim.pricing.pricing import price
from sim.pricing.usage import usage_from_dict

NOV = {"start": "2026-11-01", "end": "2026-12-01"}   # 30 days, 43,200 minutes
GB = 10**9


def usage(meters: dict, period: dict | None = None):
    return usage_from_dict({"period": period or NOV, "meters": meters}, "<test>")


def bill(plan: str, meters: dict, period: dict | None = None, **kw):
    return price(usage(meters, period), load_plan(plan), **kw)


def amounts(b) -> dict[str, Decimal]:
    return {line.item: line.amount for line in b.lines}


def plan_with(charge: dict, metric: dict | None = None, **top) -> object:
    doc = {
        "name": "t", "description": "test plan",
        "metrics": {"q": metric or {"meter": "q", "aggregation": "sum"}},
        "charges": [{"metric": "q", **charge}],
        **top,
    }
    return plan_from_dict(doc, "<test-plan>")


def D(s) -> Decimal:
    return Decimal(str(s))
