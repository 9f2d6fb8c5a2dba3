"""The seed's pricing calculator: MAU, messages per month and average size -> amount.

Messaging seed, "Pricing Calculator": "Calculation does not reflect minimum commitment and overheads."
So the quote prices ``mau`` and ``messages x size`` outbound bytes (payload only: each message is
delivered once) under a plan, without the minimum-commitment true-up. The simulator's bill, with its
protocol, TLS and keep-alive overheads, can then be set beside it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sim.bill import Bill
from sim.errors import InputError
from sim.period import Period
from sim.plan import Plan
from sim.pricing import price
from sim.usage import Usage


def quote(plan: Plan, mau: int, messages: int, size: float, period: Period | None = None) -> Bill:
    """Price ``mau`` users sending ``messages`` messages of ``size`` bytes, payload only, no minimum."""
    for name, value in (("--mau", mau), ("--messages", messages), ("--size", size)):
        if value is None or value < 0:
            raise InputError(None, name, f"must be a non-negative number, got {value!r}")
    if period is None:
        now = datetime.now(UTC)
        start = datetime(now.year, now.month, 1)
        end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1)
        period = Period.create(start, end)
    usage = Usage(period=period, meters={"mau": float(mau), "outbound_bytes": float(messages) * float(size)},
                  source="<quote>")
    return price(usage, plan, apply_minimum=False)
