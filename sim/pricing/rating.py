"""Rating: a billable quantity + a charge model -> an amount (unrounded Decimal).

Charge models (billing conventions, "Rating"):

* ``per_unit``: quantity x unit_price.
* ``package``: price per block of ``package_size`` units; a partial block is billed as a whole one
  (IoT seed: "extra 100 devices $1"; seeds.md: 250 extra devices -> 3 blocks -> $3).
* ``graduated``: each tier prices its own slice of the quantity; a tier's ``flat_fee`` is charged
  once when any unit falls in it. ``up_to`` is inclusive.
* ``volume``: every unit at the price of the tier the whole quantity reaches, plus that tier's
  flat fee.

Zero billable units cost nothing in every model (no tier is reached).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

from sim.pricing.bill import quantity_text
from sim.pricing.plan import Charge


@dataclass(frozen=True)
class Rated:
    amount: Decimal
    unit_price: Decimal | None     # a single unit price where the model has one
    detail: list[str] = field(default_factory=list)


def rate(charge: Charge, billable: Decimal) -> Rated:
    if billable <= 0:
        return Rated(Decimal(0), _headline_price(charge))
    if charge.model == "per_unit":
        return Rated(billable * charge.unit_price, charge.unit_price)
    if charge.model == "package":
        blocks = (billable / charge.package_size).to_integral_value(rounding=ROUND_CEILING)
        return Rated(blocks * charge.package_price, charge.package_price,
                     [f"{blocks} block(s) of {quantity_text(charge.package_size)} at {charge.package_price} each"])
    if charge.model == "graduated":
        return _graduated(charge, billable)
    return _volume(charge, billable)


def _headline_price(charge: Charge) -> Decimal | None:
    if charge.model == "per_unit":
        return charge.unit_price
    if charge.model == "package":
        return charge.package_price
    return None


def _graduated(charge: Charge, q: Decimal) -> Rated:
    total, lower, detail = Decimal(0), Decimal(0), []
    for tier in charge.tiers:
        upper = tier.up_to
        if q <= lower:
            break
        top = q if upper is None else min(q, upper)
        units = top - lower
        amount = units * tier.unit_price + tier.flat_fee
        detail.append(f"{quantity_text(lower)}-{'' if upper is None else quantity_text(upper)}: {quantity_text(units)} x {tier.unit_price}"
                      + (f" + {tier.flat_fee} flat" if tier.flat_fee else "") + f" = {amount}")
        total += amount
        if upper is None:
            break
        lower = upper
    return Rated(total, None, detail)


def _volume(charge: Charge, q: Decimal) -> Rated:
    tier = next(t for t in charge.tiers if t.up_to is None or q <= t.up_to)
    amount = q * tier.unit_price + tier.flat_fee
    label = "and above" if tier.up_to is None else f"up to {quantity_text(tier.up_to)}"
    return Rated(amount, tier.unit_price,
                 [f"all {quantity_text(q)} units in tier {label} at {tier.unit_price}"
                  + (f" + {tier.flat_fee} flat" if tier.flat_fee else "")])
