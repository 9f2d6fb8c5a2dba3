"""The seed's pricing calculator: MAU, messages per month and average size -> amount.

Messaging seed, "Pricing Calculator": "Calculation does not reflect minimum commitment and overheads."
So the quote prices ``mau`` and ``messages x size`` outbound bytes (payload only: each message is
delivered once) under a plan, without the minimum-commitment true-up. The simulator's bill, with its
protocol, TLS and keep-alive overheads, can then be set beside it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from sim.errors import InputError
from sim.pricing.bill import Bill
from sim.pricing.period import Period
from sim.pricing.plan import Plan
from sim.pricing.pricing import price
from sim.pricing.usage import MAX_TOTAL, Usage


def _check(name: str, value) -> None:
    """A calculator input: a finite, non-negative number no larger than a quantity can be priced."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (
            isinstance(value, float) and not math.isfinite(value)):
        raise InputError(None, name, f"must be a finite non-negative number, got {value!r}")
    if value > MAX_TOTAL:
        shown = f"{value:.3g}" if isinstance(value, float) or value < 1e300 else "a number of more than 300 digits"
        raise InputError(None, name, f"{shown} is more than {MAX_TOTAL:g}, the largest quantity priced exactly")


def quote(plan: Plan, mau: int, messages: int, size: float, period: Period | None = None) -> Bill:
    """Price ``mau`` users sending ``messages`` messages of ``size`` bytes, payload only, no minimum."""
    for name, value in (("--mau", mau), ("--messages", messages), ("--size", size)):
        _check(name, value)
    if messages * size > MAX_TOTAL:
        raise InputError(None, "--messages x --size", f"{messages * size:.3g} bytes is more than "
                         f"{MAX_TOTAL:g}, the largest quantity priced exactly")
    if period is None:
        now = datetime.now(UTC)
        start = datetime(now.year, now.month, 1)
        end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1)
        period = Period.create(start, end)
    usage = Usage(period=period, meters={"mau": float(mau), "outbound_bytes": float(messages) * float(size)},
                  source="<quote>")
    return price(usage, plan, apply_minimum=False)
