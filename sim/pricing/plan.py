"""Plans as data: the schema of a plan file, and where shipped plans live.

A plan names *metrics* (how a usage meter becomes a quantity), *charges* (how a quantity becomes
money), plan-level fees, hard *limits*, *notifications* and optional *add-ons*. Shipped plans are
YAML files in ``sim/pricing/plans/``; ``--plan`` takes one of their names or a path to any plan file. Every
field is described in the README ("Plan files") and in the shipped plans' comments.

Unknown keys anywhere are errors: a misspelt ``inclded`` must not silently bill the free tier.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from sim import yamlio
from sim.errors import InputError
from sim.pricing.restrictions import Restriction, Throttling
from sim.strict import StrictModel

PLANS_DIR = Path(__file__).parent / "plans"


def non_negative_decimal(value: Any, what: str = "a number", largest: Decimal | None = None,
                         largest_of: str = "the largest price or quantity a plan may give",
                         valid: str = "a finite non-negative number") -> Decimal:
    """A number or numeric string as an exact Decimal: finite, not negative, at most ``largest`` (default
    :data:`MAX_NUMBER`). Plans' prices and quantities, and accounts' money (sim/pricing/account.py)."""
    largest = MAX_NUMBER if largest is None else largest
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"expected {what}, got {value!r}")
    try:
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"expected {what}, got {value!r}") from None
    if not d.is_finite() or d < 0:
        raise ValueError(f"must be {valid}, got {value!r}")
    if d > largest:
        raise ValueError(f"{value!r} is more than {largest:,}, {largest_of}")
    return d


def _decimal(value: Any) -> Decimal:
    """Money and quantities in plan files: numbers or numeric strings, never negative."""
    return non_negative_decimal(value)


#: Largest price, fee or quantity in a plan: amounts are exact Decimals of 28 digits (cents included), so
#: price x quantity must stay far below 10^26; 10^15 (a quadrillion) leaves room for any real plan.
MAX_NUMBER = Decimal(10) ** 15


Dec = Annotated[Decimal, BeforeValidator(_decimal)]

#: Units a metric can convert between, as multiples of the base unit of their dimension.
#: GB means 10^9 bytes and MB 10^6 (seeds.md: both seeds' worked examples only add up in decimal units).
UNITS: dict[str, tuple[str, Decimal]] = {
    "bytes": ("bytes", Decimal(1)), "B": ("bytes", Decimal(1)),
    "KB": ("bytes", Decimal(10) ** 3), "MB": ("bytes", Decimal(10) ** 6),
    "GB": ("bytes", Decimal(10) ** 9), "TB": ("bytes", Decimal(10) ** 12),
    "KiB": ("bytes", Decimal(2) ** 10), "MiB": ("bytes", Decimal(2) ** 20), "GiB": ("bytes", Decimal(2) ** 30),
    "seconds": ("time", Decimal(1)), "minutes": ("time", Decimal(60)), "hours": ("time", Decimal(3600)),
}


class _Strict(StrictModel):
    """Plan sections: strict (sim/strict.py) and immutable."""

    model_config = ConfigDict(frozen=True)


class Rounding(_Strict):
    """Rounding of a metric's quantity, after unit conversion (e.g. storage rounded *up* to whole GB)."""

    mode: Literal["ceil", "floor", "half_up"]
    precision: int = Field(0, ge=0, le=9, description="decimal places kept")


class AtLeast(_Strict):
    """Derived quantity: bill at least ``multiplier`` x another metric (the 10 x peak CCU rule)."""

    metric: str
    multiplier: Dec
    reason: str = ""


class Metric(_Strict):
    """How one usage meter is aggregated over the period into a quantity."""

    meter: str
    aggregation: Literal["sum", "max", "latest", "avg", "daily_avg", "unique"]
    unit: str = "units"
    meter_unit: str | None = Field(None, description="unit of the meter's values, converted to `unit`")
    round: Rounding | None = None
    at_least: AtLeast | None = None
    description: str = ""

    @model_validator(mode="after")
    def _units_convert(self) -> Metric:
        if self.meter_unit is not None and self.meter_unit != self.unit:
            a, b = UNITS.get(self.meter_unit), UNITS.get(self.unit)
            if a is None or b is None or a[0] != b[0]:
                raise ValueError(
                    f"cannot convert {self.meter_unit!r} to {self.unit!r}; convertible units: {', '.join(UNITS)}"
                )
        return self

    @property
    def factor(self) -> Decimal:
        """Multiply a value in ``meter_unit`` by this to get ``unit``."""
        if self.meter_unit is None or self.meter_unit == self.unit:
            return Decimal(1)
        return UNITS[self.meter_unit][1] / UNITS[self.unit][1]


class Tier(_Strict):
    up_to: Dec | None = Field(None, description="inclusive upper bound; null for the last tier")
    unit_price: Dec = Decimal(0)
    flat_fee: Dec = Decimal(0)


ChargeModel = Literal["per_unit", "package", "graduated", "volume"]
_MODEL_FIELDS: dict[str, set[str]] = {
    "per_unit": {"unit_price"},
    "package": {"package_size", "package_price"},
    "graduated": {"tiers"},
    "volume": {"tiers"},
}


class Charge(_Strict):
    """A charge on one metric: included quantity first, then the charge model on the rest."""

    metric: str
    item: str | None = Field(None, description="bill line name; defaults to the metric's meter")
    included: Dec = Decimal(0)
    model: ChargeModel
    unit_price: Dec | None = None
    package_size: Dec | None = None
    package_price: Dec | None = None
    tiers: list[Tier] | None = None
    description: str = ""

    @model_validator(mode="after")
    def _fields_match_model(self) -> Charge:
        needed = _MODEL_FIELDS[self.model]
        given = {f for f in ("unit_price", "package_size", "package_price", "tiers") if getattr(self, f) is not None}
        missing, stray = needed - given, given - needed
        if missing:
            raise ValueError(f"model {self.model!r} needs {', '.join(sorted(missing))}")
        if stray:
            raise ValueError(f"model {self.model!r} does not use {', '.join(sorted(stray))}")
        if self.package_size is not None and self.package_size <= 0:
            raise ValueError("package_size must be positive")
        if self.tiers is not None:
            _check_tiers(self.tiers)
        return self


def _check_tiers(tiers: list[Tier]) -> None:
    if not tiers:
        raise ValueError("tiers must not be empty")
    bounds = [t.up_to for t in tiers]
    if bounds[-1] is not None:
        raise ValueError("the last tier must have up_to: null (no upper bound)")
    if any(b is None for b in bounds[:-1]):
        raise ValueError("only the last tier may have up_to: null")
    if any(a >= b for a, b in zip(bounds[:-2], bounds[1:-1], strict=True)):
        raise ValueError("tier bounds (up_to) must increase")


class FractionOf(_Strict):
    metric: str
    fraction: Dec


class Limit(_Strict):
    """A hard limit the plan cannot exceed (free plans). Exceeding it is reported, not refused."""

    metric: str
    max: Dec | None = None
    max_fraction_of: FractionOf | None = Field(None, description="limit relative to another metric")
    description: str = ""

    @model_validator(mode="after")
    def _one_bound(self) -> Limit:
        if (self.max is None) == (self.max_fraction_of is None):
            raise ValueError("give exactly one of max or max_fraction_of")
        return self


class Notifications(_Strict):
    """Thresholds (fractions) of the free limits or included quantities at which the platform notifies."""

    thresholds: list[Annotated[float, Field(gt=0, le=1)]]
    of: Literal["limits", "included"]


class AddOn(_Strict):
    fee: Dec
    description: str = ""


class BillingTerms(_Strict):
    """When the invoice for a period is issued and due, and what happens if it is not paid (IoT seed)."""

    invoice_within_days: int = Field(ge=0, description="invoice issued at most this many days after the period")
    due_day: int = Field(ge=1, le=28, description="payment due on this day of the month after the period")
    reminder_days_before: int = Field(0, ge=0)
    unpaid_downgrade_to: str | None = Field(None, description="plan the account falls back to if unpaid")


class Plan(_Strict):
    """A price plan. See the README's "Plan files" section for every key."""

    name: str
    description: str
    currency: str = "USD"
    source: str = Field("", description="where the rules come from")
    base_fee: Dec = Decimal(0)
    minimum_commitment: Dec = Decimal(0)
    metrics: dict[str, Metric]
    charges: list[Charge] = []
    limits: list[Limit] = []
    notifications: Notifications | None = None
    addons: dict[str, AddOn] = {}
    billing_terms: BillingTerms | None = None
    restrictions: dict[str, Restriction] = Field({}, description="runtime limits the world enforces (sim/pricing/restrictions.py)")
    throttling: Throttling | None = None
    path: str = Field("", exclude=True, description="file the plan was read from (set by the loader)")

    @model_validator(mode="after")
    def _references_resolve(self) -> Plan:
        known = ", ".join(self.metrics) or "(none)"
        refs: list[tuple[str, str]] = []
        for name, metric in self.metrics.items():
            if metric.at_least:
                refs.append((f"metrics.{name}.at_least.metric", metric.at_least.metric))
                if self.metrics.get(metric.at_least.metric, metric).at_least is not None:
                    raise ValueError(f"metrics.{name}.at_least: the metric it refers to may not itself use at_least")
        refs += [(f"charges.{i}.metric", c.metric) for i, c in enumerate(self.charges)]
        for i, lim in enumerate(self.limits):
            refs.append((f"limits.{i}.metric", lim.metric))
            if lim.max_fraction_of:
                refs.append((f"limits.{i}.max_fraction_of.metric", lim.max_fraction_of.metric))
        for where, ref in refs:
            if ref not in self.metrics:
                raise ValueError(f"{where}: unknown metric {ref!r}; metrics in this plan: {known}")
        items = [self.item_of(c) for c in self.charges]
        dupes = sorted({i for i in items if items.count(i) > 1})
        if dupes:
            raise ValueError(f"two charges bill the same item {dupes[0]!r}: give one of them an 'item' name")
        return self

    def item_of(self, charge: Charge) -> str:
        return charge.item or self.metrics[charge.metric].meter

    def meters(self) -> set[str]:
        return {m.meter for m in self.metrics.values()}


def shipped_plans() -> dict[str, str]:
    """Shipped plan names and their one-line descriptions."""
    out = {}
    for path in sorted(PLANS_DIR.glob("*.yaml")):
        out[path.stem] = load_plan(path).description
    return out


def resolve_plan_path(name_or_path: str | Path) -> Path:
    """A shipped plan's name or a plan file's path -> the file; unknown names list the shipped ones."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate  # read_text says what is wrong with it, if anything
    shipped = PLANS_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    names = ", ".join(p.stem for p in sorted(PLANS_DIR.glob("*.yaml")))
    raise InputError(None, "--plan", f"unknown plan {str(name_or_path)!r}; shipped plans: {names} (or give a path to a plan file)")


def load_plan(name_or_path: str | Path) -> Plan:
    """Load and validate a plan by shipped name or path."""
    path = resolve_plan_path(name_or_path)
    source = str(path)
    doc = yamlio.parse(yamlio.read_text(path, "plan file"), source)
    return plan_from_dict(doc, source)


def plan_from_dict(doc: Any, source: str = "<plan>") -> Plan:
    if not isinstance(doc, dict):
        raise InputError(source, None, "a plan file must be a mapping (name, description, metrics, charges ...)")
    yamlio.check_numbers(Plan, doc, source)
    try:
        plan = Plan.model_validate(doc)
    except ValidationError as exc:
        raise _input_error(exc, source) from None
    return plan.model_copy(update={"path": source})


def _input_error(exc: ValidationError, source: str) -> InputError:
    err = exc.errors(include_url=False)[0]
    field = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return InputError(source, field, "unknown key")
    if err["type"] == "missing":
        return InputError(source, field, "required")
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "value_error" and ": " in msg and msg.split(": ", 1)[0].count(".") and not field:
        field, msg = msg.split(": ", 1)
    if err["type"] not in ("value_error",) and "input" in err and not isinstance(err["input"], dict | list):
        msg = f"{msg} (got {err['input']!r})"
    return InputError(source, field or None, msg)
