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


def quantity_text(d: Decimal | None) -> str:
    """A quantity for people: no trailing zeros, no exponent, thousands separated (4.5, 80,000, 0.000001)."""
    return "" if d is None else f"{d.normalize():,f}"


def _num(d: Decimal | None) -> int | float | None:
    """A quantity for JSON: an int when whole, else a float (quantities are not money)."""
    if d is None:
        return None
    return int(d) if d == d.to_integral_value() else float(d)


@dataclass(frozen=True)
class BillLine:
    item: str                          # the meter charged, or base / minimum_commitment / an add-on
    amount: Decimal                    # rounded to cents
    amount_unrounded: Decimal
    description: str = ""
    meter: str | None = None
    aggregation: str | None = None
    measured: Decimal | None = None    # aggregated, in the meter's unit
    quantity: Decimal | None = None    # in `unit`, after conversion, derivation and rounding
    included: Decimal | None = None
    billable: Decimal | None = None
    unit: str | None = None
    unit_price: Decimal | None = None
    model: str | None = None
    explanation: str = ""
    detail: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "item": self.item,
            "description": self.description,
            "meter": self.meter,
            "aggregation": self.aggregation,
            "measured": _num(self.measured),
            "quantity": _num(self.quantity),
            "included": _num(self.included),
            "billable": _num(self.billable),
            "unit": self.unit,
            "unit_price": None if self.unit_price is None else str(self.unit_price),
            "model": self.model,
            "amount": str(self.amount),
            "amount_unrounded": f"{self.amount_unrounded.normalize():f}",
            "explanation": self.explanation,
            "detail": list(self.detail),
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
        d.update(measured=_num(self.measured), limit=_num(self.limit),
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
        d.update(level=_num(self.level), at=None if self.at is None else self.at.isoformat())
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
            row.update(amount=line.amount, amount_unrounded=line.amount_unrounded,
                       unit_price=line.unit_price, plan=self.plan)
            rows.append(row)
        return pd.DataFrame(rows).set_index("item")
