"""A bill: lines that each explain themselves, plus violations and notifications.

Money is ``Decimal``. Every line is rounded to cents, half-up, and keeps its unrounded amount; the
total is the sum of the rounded lines (billing conventions, "Money and rounding").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def cents(amount: Decimal) -> Decimal:
    """Round to the minor unit, half-up (1.235 -> 1.24)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


#: Decimal places a quantity in these units is shown with: whole bytes, and a byte's resolution in the others.
UNIT_PLACES = {"bytes": 0, "B": 0, "KB": 3, "MB": 6, "GB": 9, "TB": 9, "KiB": 3, "MiB": 6, "GiB": 9}
#: Significant digits shown: a float sum carries ~15-16, so 401,739,214.9999999 (float noise) shows as 401,739,215.
SIGNIFICANT = 12
MAX_PLACES = 9                     # quantities are carried to 10^-9 of their unit (sim/pricing/metering.py)


def clean(d: Decimal | None, unit: str | None = None) -> Decimal | None:
    """A quantity as shown and serialised: rounded half-up to its unit's resolution (whole bytes, a byte's worth
    of GB), to at most 12 significant digits and 9 decimal places; trailing zeros dropped. Display only: pricing
    keeps the exact Decimal."""
    if d is None or not d.is_finite():
        return d
    places = min(MAX_PLACES, UNIT_PLACES.get(unit or "", MAX_PLACES))
    if d:
        places = min(places, max(0, SIGNIFICANT - (d.adjusted() + 1)))
    out = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return out.normalize() if out else Decimal(0)


def quantity_text(d: Decimal | None, unit: str | None = None) -> str:
    """A quantity for people: clean (see :func:`clean`), no exponent, thousands separated (4.5, 80,000, 0.000001)."""
    return "" if d is None else f"{clean(d, unit):,f}"


def _num(d: Decimal | None, unit: str | None = None) -> int | float | None:
    """A quantity for JSON, clean (see :func:`clean`): an int when whole, else a float (quantities are not money)."""
    if d is None:
        return None
    d = clean(d, unit)
    return int(d) if d == d.to_integral_value() else float(d)


@dataclass(frozen=True)
class BillLine:
    item: str                          # the meter charged, or base / minimum_commitment / an add-on
    amount: Decimal                    # rounded to cents
    amount_unrounded: Decimal
    description: str = ""
    meter: str | None = None
    aggregation: str | None = None
    measured: Decimal | None = None    # aggregated and converted to `unit` (before derivation and rounding)
    quantity: Decimal | None = None    # in `unit`, after conversion, derivation and rounding
    included: Decimal | None = None
    billable: Decimal | None = None
    unit: str | None = None
    unit_price: Decimal | None = None
    model: str | None = None
    explanation: str = ""
    detail: tuple[str, ...] = ()
    metered: Decimal | None = None     # the raw aggregate in the meter's unit, when that is not `unit`
    meter_unit: str | None = None      # e.g. bytes, for a line charged in GB

    def to_dict(self) -> dict:
        """JSON: every quantity of the row (measured, quantity, included, billable) is in `unit`; the meter's own
        reading, when it was in another unit, is under `metered` with its unit. Quantities are clean (:func:`clean`),
        money is a string of the exact Decimal."""
        u = self.unit
        return {
            "item": self.item,
            "description": self.description,
            "meter": self.meter,
            "aggregation": self.aggregation,
            "measured": _num(self.measured, u),
            "quantity": _num(self.quantity, u),
            "included": _num(self.included, u),
            "billable": _num(self.billable, u),
            "unit": self.unit,
            "unit_price": None if self.unit_price is None else str(self.unit_price),
            "model": self.model,
            "amount": str(self.amount),
            "amount_unrounded": f"{self.amount_unrounded.normalize():f}",
            "explanation": self.explanation,
            "detail": list(self.detail),
            "metered": None if self.metered is None else {"quantity": _num(self.metered, self.meter_unit),
                                                          "unit": self.meter_unit},
        }


@dataclass(frozen=True)
class Violation:
    """A hard limit exceeded: reported beside the bill, which is still computed."""

    meter: str
    metric: str
    measured: Decimal
    limit: Decimal
    unit: str
    at: datetime | None = None         # when it was first exceeded, where the usage has a series
    description: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(measured=_num(self.measured, self.unit), limit=_num(self.limit, self.unit),
                 at=None if self.at is None else self.at.isoformat())
        return d


@dataclass(frozen=True)
class Notification:
    """A threshold (fraction of a free limit or included quantity) crossed, and when."""

    meter: str
    metric: str
    threshold: float
    of: str                            # "limits" or "included"
    level: Decimal                     # threshold x base, in `unit`
    unit: str
    at: datetime | None                # None when the usage is a single aggregated number

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(level=_num(self.level, self.unit), at=None if self.at is None else self.at.isoformat())
        return d


@dataclass(frozen=True)
class Bill:
    plan: str
    plan_file: str
    currency: str
    period_start: datetime
    period_end: datetime
    lines: tuple[BillLine, ...]
    violations: tuple[Violation, ...] = ()
    notifications: tuple[Notification, ...] = ()
    unknown_meters: tuple[str, ...] = ()   # in the usage, priced by no metric of this plan
    missing_meters: tuple[str, ...] = ()   # needed by the plan, absent from the usage (zero)
    addons: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    schedule: dict[str, str] = field(default_factory=dict)   # invoice/due/reminder/downgrade dates

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))

    def line(self, item: str) -> BillLine:
        for line in self.lines:
            if line.item == item:
                return line
        raise KeyError(f"no line {item!r} in the bill for {self.plan}; lines: {[x.item for x in self.lines]}")

    def to_dict(self) -> dict:
        return {
            "plan": self.plan,
            "plan_file": self.plan_file,
            "currency": self.currency,
            "period": {"start": self.period_start.isoformat(), "end": self.period_end.isoformat()},
            "total": str(self.total),
            "lines": [line.to_dict() for line in self.lines],
            "addons": list(self.addons),
            "violations": [v.to_dict() for v in self.violations],
            "notifications": [n.to_dict() for n in self.notifications],
            "unknown_meters": list(self.unknown_meters),
            "missing_meters": list(self.missing_meters),
            "notes": list(self.notes),
            "schedule": dict(self.schedule),
        }

    def to_dataframe(self):
        """One row per line; money columns stay Decimal (exact), quantities are numbers."""
        import pandas as pd

        rows = []
        for line in self.lines:
            row = line.to_dict()
            row.pop("detail")
            metered = row.pop("metered")
            row.update(metered=None if metered is None else metered["quantity"], meter_unit=line.meter_unit)
            row.update(amount=line.amount, amount_unrounded=line.amount_unrounded,
                       unit_price=line.unit_price, plan=self.plan)
            rows.append(row)
        return pd.DataFrame(rows).set_index("item")
