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


class Each(_Strict):
    """Bill each item of a distribution meter on its own, rounded up to whole steps (AWS IoT Core: a message is
    metered in 5 KB increments, so 8 KB is 2 messages; a connection in whole minutes). The metric's quantity is the
    number of steps: sum over items of max(minimum, ceil(value / step))."""

    step: Dec = Field(description="size of one step, in step_unit")
    step_unit: str | None = Field(None, description="unit of step (default: the metric's meter_unit)")
    minimum: int = Field(0, ge=0, description="steps an item counts at least (AWS: a 0-byte message is 1 message)")

    @model_validator(mode="after")
    def _positive(self) -> Each:
        if self.step <= 0:
            raise ValueError("step must be positive")
        return self


class Metric(_Strict):
    """How one usage meter is aggregated over the period into a quantity (or, with ``sum_of``, how several
    metrics' quantities add up into one that shares an allowance)."""

    meter: str | None = None
    aggregation: Literal["sum", "max", "latest", "avg", "daily_avg", "unique", "count"] | None = None
    sum_of: list[str] | None = Field(None, description="a composite metric: the sum of these metrics' quantities")
    unit: str = "units"
    meter_unit: str | None = Field(None, description="unit of the meter's values, converted to `unit`")
    each: Each | None = None
    round: Rounding | None = None
    at_least: AtLeast | None = None
    across_entities: Literal["sum", "peak_of_sum", "max"] = Field(
        "sum", description="one bill over several entities (apps, regions): add their quantities, take the peak "
        "of their summed series, or the largest entity's")
    description: str = ""

    @model_validator(mode="after")
    def _units_convert(self) -> Metric:
        if self.sum_of is not None:
            stray = [k for k in ("meter", "aggregation", "meter_unit", "each") if getattr(self, k) is not None]
            if stray:
                raise ValueError(f"a sum_of metric adds other metrics' quantities; it takes no {stray[0]}")
            if not self.sum_of:
                raise ValueError("sum_of needs at least one metric")
            return self
        if self.meter is None or self.aggregation is None:
            raise ValueError(f"a metric needs {'meter' if self.meter is None else 'aggregation'} (or sum_of)")
        if self.each is not None:
            if self.aggregation != "sum":
                raise ValueError("each (items rounded one by one) goes with aggregation: sum")
            su = self.each.step_unit or self.meter_unit
            if self.each.step_unit is not None:
                a, b = UNITS.get(self.each.step_unit), UNITS.get(self.meter_unit or "")
                if a is None or b is None or a[0] != b[0]:
                    raise ValueError(f"each.step_unit {su!r} needs a meter_unit of the same kind "
                                     f"(convertible units: {', '.join(UNITS)})")
            return self  # the quantity is a count of steps, in `unit` (messages, minutes): no conversion
        if self.meter_unit is not None and self.meter_unit != self.unit:
            a, b = UNITS.get(self.meter_unit), UNITS.get(self.unit)
            if a is None or b is None or a[0] != b[0]:
                raise ValueError(
                    f"cannot convert {self.meter_unit!r} to {self.unit!r}; convertible units: {', '.join(UNITS)}"
                )
        return self

    @property
    def factor(self) -> Decimal:
        """Multiply a value in ``meter_unit`` by this to get ``unit`` (1 for ``each``: steps are counted)."""
        if self.each is not None or self.meter_unit is None or self.meter_unit == self.unit:
            return Decimal(1)
        return UNITS[self.meter_unit][1] / UNITS[self.unit][1]

    @property
    def step(self) -> Decimal | None:
        """``each.step`` in the meter's own unit (None without ``each``)."""
        if self.each is None:
            return None
        if self.each.step_unit is None or self.each.step_unit == self.meter_unit:
            return self.each.step
        return self.each.step * UNITS[self.each.step_unit][1] / UNITS[self.meter_unit][1]


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


class IncludedPer(_Strict):
    """An allowance proportional to another metric: ``multiplier`` x its quantity (e.g. messages per MAU)."""

    metric: str
    multiplier: Dec


class Charge(_Strict):
    """A charge on one metric: included quantity first, then the charge model on the rest.

    ``cadence: daily`` rates each calendar day on its own: the metric's rounding, ``included_per_day`` and the
    charge model apply to each day's quantity, and ``included`` is a monthly allowance used up day by day."""

    metric: str
    item: str | None = Field(None, description="bill line name; defaults to the metric's meter")
    included: Dec = Decimal(0)
    included_per: IncludedPer | None = Field(None, description="added to `included`: multiplier x another metric")
    cadence: Literal["period", "daily"] = "period"
    included_per_day: Dec = Field(Decimal(0), description="with cadence daily: free quantity each day")
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
        if self.included_per_day and self.cadence != "daily":
            raise ValueError("included_per_day needs cadence: daily")
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


class Fee(_Strict):
    """A fixed or provisioned charge not read from a meter: ``quantity`` units (or a metric's quantity, e.g. hub
    units sized to the traffic) at ``unit_price`` per ``per``: month (prorated when the plan says so), day or
    hour of the period (provisioned capacity billed by the hour)."""

    item: str
    unit_price: Dec
    per: Literal["month", "day", "hour"] = "month"
    quantity: Dec | None = None
    metric: str | None = Field(None, description="take the quantity from this metric (after its rounding)")
    minimum_quantity: Dec = Field(Decimal(0), description="with metric: at least this many units")
    description: str = ""

    @model_validator(mode="after")
    def _one_quantity(self) -> Fee:
        if self.quantity is not None and self.metric is not None:
            raise ValueError("give quantity or metric, not both")
        return self


class SpendLimit(_Strict):
    """A spend limit the account sets (EMQX Serverless, cloud budgets with a cap): when the period's charges reach
    ``amount`` the service stops (``stop``) and nothing beyond is billed. The bill shows a line that brings the
    charges back to the limit and notes when it was reached."""

    amount: Dec
    action: Literal["stop"] = "stop"
    description: str = ""


class Discount(_Strict):
    """A discount on some bill lines, e.g. an annual prepaid commitment's: ``fraction`` off the lines named in
    ``applies_to`` (items; ``all``: every charge and fee line), shown as its own negative line."""

    item: str
    fraction: Annotated[Decimal, BeforeValidator(_decimal), Field(le=1)]
    applies_to: list[str] | Literal["all"] = "all"
    term: str = Field("", description="the commitment that earns it, e.g. 'annual, prepaid'")
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
    platform: str = Field("", description="the platform the plan belongs to (`sim plans` groups by it)")
    base_fee: Dec = Decimal(0)
    prorate: Literal["none", "daily"] = Field(
        "none", description="daily: the base fee and monthly fees are prorated by the period's days over the days "
        "of its month (a part month); none: charged in full for any period")
    minimum_commitment: Dec = Decimal(0)
    metrics: dict[str, Metric]
    charges: list[Charge] = []
    fees: list[Fee] = []
    discounts: list[Discount] = []
    spend_limit: SpendLimit | None = None
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
            for part in metric.sum_of or ():
                refs.append((f"metrics.{name}.sum_of", part))
                if part in self.metrics and self.metrics[part].sum_of is not None:
                    raise ValueError(f"metrics.{name}.sum_of: {part!r} is itself a sum_of metric")
            if metric.at_least:
                refs.append((f"metrics.{name}.at_least.metric", metric.at_least.metric))
                other = self.metrics.get(metric.at_least.metric)
                if metric.sum_of is not None or (other is not None and other.sum_of is not None):
                    raise ValueError(f"metrics.{name}.at_least: not with a sum_of metric (derive its parts)")
                if self.metrics.get(metric.at_least.metric, metric).at_least is not None:
                    raise ValueError(f"metrics.{name}.at_least: the metric it refers to may not itself use at_least")
        refs += [(f"charges.{i}.metric", c.metric) for i, c in enumerate(self.charges)]
        refs += [(f"charges.{i}.included_per.metric", c.included_per.metric) for i, c in enumerate(self.charges)
                 if c.included_per is not None]
        refs += [(f"fees.{i}.metric", f.metric) for i, f in enumerate(self.fees) if f.metric is not None]
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
        fixed = [f.item for f in self.fees] + [d.item for d in self.discounts] + ["base", "minimum_commitment"]
        clash = sorted(set(items) & set(fixed)) or sorted({i for i in fixed if fixed.count(i) > 1})
        if clash:
            raise ValueError(f"two bill lines would be named {clash[0]!r}: give them different items")
        lines = set(items) | {f.item for f in self.fees} | {"base"}
        for i, d in enumerate(self.discounts):
            for target in ([] if d.applies_to == "all" else d.applies_to):
                if target not in lines:
                    raise ValueError(f"discounts.{i}.applies_to: unknown bill line {target!r}; lines: "
                                     f"{', '.join(sorted(lines))}")
        return self

    def item_of(self, charge: Charge) -> str:
        metric = self.metrics[charge.metric]
        return charge.item or metric.meter or charge.metric

    def meters(self) -> set[str]:
        return {m.meter for m in self.metrics.values() if m.meter is not None}

    @property
    def charges_anything(self) -> bool:
        """Whether a bill under this plan can be more than nothing: charges, a base fee, fees, add-ons or a
        minimum. A plan that cannot is a free plan: its limits are a free tier."""
        return bool(self.charges or self.base_fee or self.fees or self.minimum_commitment or self.addons)


def shipped_plans() -> dict[str, str]:
    """Shipped plan names and their one-line descriptions."""
    return {name: plan.description for name, plan in shipped_plan_objects().items()}


def shipped_plan_objects() -> dict[str, Plan]:
    """Every shipped plan by name."""
    return {path.stem: load_plan(path) for path in sorted(PLANS_DIR.glob("*.yaml"))}


def plans_by_platform() -> dict[str, list[Plan]]:
    """Shipped plans grouped by their ``platform`` (``sim plans``), platforms and plans in name order."""
    groups: dict[str, list[Plan]] = {}
    for plan in shipped_plan_objects().values():
        groups.setdefault(plan.platform or "(no platform)", []).append(plan)
    return dict(sorted(groups.items()))


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
