"""Tune files: which free plan to tune, over which fleet, against which costs, objective and requirements.

A tune file is a YAML mapping validated like a study (unknown keys and bad values are one
:class:`~sim.errors.InputError` naming the file, the field and the problem, before anything runs)::

    name: tune-mesibo-free
    fleet: small-apps.yaml                # a fleet file (relative to this file) that `sim tune` runs ...
    # fleet_run: ../out/small-apps       # ... or an earlier `sim fleet --out` directory, re-priced as it is
    fleet_set: [apps=200]                 # optional --set overrides of the fleet file
    plan: mesibo-free                     # the free plan being tuned (shipped name or plan file)
    paid_plan: mesibo-cloud               # what apps outside the free tier pay (revenue)
    archetypes: [chat]                    # the apps this free plan is for (default: all)
    variables:                            # fields of the free plan: limits.<metric>
      limits.mau: {low: 200, high: 5000, step: 200}         # a `max` limit: its max
      limits.peak_ccu: {low: 0.05, high: 0.3, points: 6}    # a max_fraction_of limit: its fraction
    cost: {per_gb_egress: 0.09, per_gb_month_stored: 0.023, per_connection_hour: 0, per_server_month: 61}
    objective: minimise_free_cost         # | maximise_free_share | maximise_revenue
    requirements:
      - free_share: {archetype: chat, at_least: 0.8, confidence: 0.95}
      - free_cost: {at_most: 500, confidence: 0.95}
      - servers: {at_most: 2}
    search: {method: auto, trials: 200, seed: 1}          # grid | optuna | auto
    sensitivity:
      - {name: bigger-chats, set: [archetypes.chat.params.population.users.median=600]}

:func:`load_tune` reads, overrides (``--set``) and validates the file, resolves the fleet (file or run
directory), loads both plans and checks every variable against the plan's limits. What needs the fleet
itself (the archetypes a requirement names, the plans the fleet priced) is checked by
:func:`sim.fleets.tune.prepare`, still before anything is simulated or written.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from sim import yamlio
from sim.errors import InputError
from sim.pricing.plan import Dec, Limit, Plan, load_plan
from sim.strict import StrictModel

#: Files that make a directory an earlier `sim fleet --out` result.
FLEET_RUN_FILES = ("apps.parquet", "app_ccu.npy", "fleet.json")

#: Grid points of a variable that gives neither ``step`` nor ``points``.
DEFAULT_POINTS = 11

#: Largest grid `sim tune` evaluates (candidates); beyond it, use Optuna or coarser steps.
MAX_GRID = 2_000_000


class _Strict(StrictModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Variable(_Strict):
    """A decision variable's range, and its grid: ``step`` (low, low + step, ... up to high) or ``points``."""

    low: Annotated[float, Field(ge=0)]
    high: Annotated[float, Field(ge=0)]
    step: Annotated[float, Field(gt=0)] | None = None
    points: Annotated[int, Field(ge=2, le=100_000)] | None = None

    @model_validator(mode="after")
    def _order(self) -> Variable:
        if self.low > self.high:
            raise ValueError(f"low ({self.low:g}) > high ({self.high:g})")
        if self.step is not None and self.points is not None:
            raise ValueError("give step or points, not both")
        return self


class Cost(_Strict):
    """The platform's cost of serving the free apps, in the plan's currency, for the fleet's period (one month).

    ``connections_per_server`` and ``messages_per_second_per_server`` default to the fleet's capacity section."""

    per_gb_egress: Dec = Decimal(0)
    per_gb_month_stored: Dec = Decimal(0)
    per_connection_hour: Dec = Decimal(0)
    per_server_month: Dec = Decimal(0)
    connections_per_server: Annotated[float, Field(gt=0)] | None = None
    messages_per_second_per_server: Annotated[float, Field(gt=0)] | None = None


Confidence = Annotated[float, Field(gt=0.5, lt=1.0)]


class FreeShare(_Strict):
    """The share of apps (of one archetype, or all) that run free is at least ``at_least``: its one-sided
    Clopper-Pearson lower bound at ``confidence``."""

    archetype: str = "all"
    at_least: Annotated[float, Field(ge=0, le=1)]
    confidence: Confidence = 0.95


class FreeCost(_Strict):
    """The free tier's cost is at most ``at_most``: its point value and its bootstrap upper bound."""

    at_most: Dec
    confidence: Confidence = 0.95


class Servers(_Strict):
    """The servers the free apps need (point value) are at most ``at_most``."""

    at_most: Annotated[int, Field(ge=0)]


class Requirement(_Strict):
    free_share: FreeShare | None = None
    free_cost: FreeCost | None = None
    servers: Servers | None = None

    @model_validator(mode="after")
    def _one(self) -> Requirement:
        given = [k for k in ("free_share", "free_cost", "servers") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("each requirement is one of free_share, free_cost or servers")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("free_share", "free_cost", "servers") if getattr(self, k) is not None)

    @property
    def body(self) -> FreeShare | FreeCost | Servers:
        return getattr(self, self.kind)

    def label(self) -> str:
        """``free_share[chat] >= 0.8 @ 95%``: how messages and plots name the requirement."""
        b = self.body
        if isinstance(b, FreeShare):
            return f"free_share[{b.archetype}] >= {b.at_least:g} @ {b.confidence:.0%}"
        if isinstance(b, FreeCost):
            return f"free_cost <= {b.at_most} @ {b.confidence:.0%}"
        return f"servers <= {b.at_most}"


class Search(_Strict):
    method: Literal["grid", "optuna", "auto"] = "auto"
    trials: Annotated[int, Field(ge=1, le=100_000)] = 200
    seed: Annotated[int, Field(ge=0)] = 0
    sampler: Literal["tpe", "nsga2"] = "tpe"
    bootstrap: Annotated[int, Field(ge=100, le=100_000)] = 2000


class Variant(_Strict):
    """A fleet variant for the sensitivity analysis: ``set`` (fleet --set overrides, re-run from the tune's
    fleet file) or ``fleet_run`` (an earlier `sim fleet --out` of the variant, relative to the tune file)."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    set: list[str] = []
    fleet_run: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Variant:
        if bool(self.set) == (self.fleet_run is not None):
            raise ValueError("give set (fleet overrides) or fleet_run (a variant's run directory), one of them")
        return self


Objective = Literal["minimise_free_cost", "maximise_free_share", "maximise_revenue"]


class Tune(_Strict):
    """A resolved tune file. ``source`` is the file (for messages); paths are resolved by :func:`load_tune`."""

    name: str = "tune"
    description: str = ""
    fleet: str | None = None
    fleet_run: str | None = None
    fleet_set: list[str] = []
    plan: str
    paid_plan: str
    archetypes: list[str] | None = None
    variables: dict[str, Variable]
    cost: Cost = Cost()
    objective: Objective = "minimise_free_cost"
    requirements: list[Requirement] = []
    search: Search = Search()
    sensitivity: list[Variant] = []
    # filled by load_tune, not written by users
    source: str = Field("<tune>", exclude=True)
    fleet_path: str | None = Field(None, exclude=True)
    run_dir: str | None = Field(None, exclude=True)

    @field_validator("variables")
    @classmethod
    def _some(cls, v: dict[str, Variable]) -> dict[str, Variable]:
        if not v:
            raise ValueError("at least one variable is needed")
        return v

    @field_validator("sensitivity")
    @classmethod
    def _names(cls, v: list[Variant]) -> list[Variant]:
        names = [x.name for x in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"variant {dupes[0]!r} is named twice")
        return v

    @model_validator(mode="after")
    def _one_fleet(self) -> Tune:
        if (self.fleet is None) == (self.fleet_run is None):
            raise ValueError("give fleet (a fleet file to run) or fleet_run (an earlier `sim fleet --out` directory)")
        if self.fleet_set and self.fleet is None:
            raise ValueError("fleet_set overrides a fleet file: give fleet, not fleet_run")
        return self

    def document(self) -> dict:
        return self.model_dump(mode="json") | {"source": self.source, "fleet_path": self.fleet_path,
                                               "run_dir": self.run_dir}


# -- variables: fields of the free plan ----------------------------------------------------------------------

def variable_limit(plan: Plan, name: str) -> tuple[int, Limit]:
    """``limits.<metric>`` -> (index, limit) in ``plan``; anything else is a ValueError saying what is known."""
    known = ", ".join(f"limits.{lim.metric}" for lim in plan.limits) or "(the plan has no limits)"
    parts = name.split(".")
    if len(parts) != 2 or parts[0] != "limits" or not parts[1]:
        raise ValueError(f"unknown variable; a variable is limits.<metric>, here one of {known}")
    found = [(i, lim) for i, lim in enumerate(plan.limits) if lim.metric == parts[1]]
    if not found:
        raise ValueError(f"plan {plan.name} has no limit on metric {parts[1]!r}; its limits: {known}")
    if len(found) > 1:
        raise ValueError(f"plan {plan.name} has {len(found)} limits on metric {parts[1]!r}: ambiguous")
    return found[0]


# -- reading ---------------------------------------------------------------------------------------------------

def apply_tune_sets(raw: dict, sets: list[str]) -> dict:
    """``--set key=value`` on a tune file: ``search.trials=50``, ``objective=maximise_free_share``,
    ``variables.limits.mau.high=3000`` (a variable's name is two parts), ``cost.per_gb_egress=0.05``."""
    out = copy.deepcopy(raw)
    for item in sets:
        path, parts, text = yamlio.split_set(item)
        if parts[0] == "variables" and len(parts) >= 3:
            parts = [parts[0], f"{parts[1]}.{parts[2]}", *parts[3:]]
        value = yamlio.load(text) if text.strip() else None
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):   # requirements.0.free_share.at_least: an item of a list
                if not part.isdigit() or int(part) >= len(node):
                    raise InputError("--set", path, f"{'.'.join(parts[:i]) or 'the list'} has no item {part}")
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
                continue
            if last:
                node[part] = value
            else:
                if not isinstance(node.get(part), dict | list):
                    node[part] = {}
                node = node[part]
    return out


def load_tune(path: str | Path, sets: list[str] | None = None) -> tuple[Tune, Plan, Plan]:
    """Read, override and validate a tune file; returns (tune, free plan, paid plan). Nothing runs."""
    p = Path(path)
    source = str(p)
    raw = yamlio.read_mapping(p, "tune file", "a tune file must be a YAML mapping (fleet, plan, variables ...)")
    raw = apply_tune_sets(raw, sets or [])
    tune = validate_tune(raw, source)
    base = p.parent
    if tune.fleet is not None:
        tune.fleet_path = str(_fleet_file(tune.fleet, base, source, "fleet"))
    else:
        tune.run_dir = str(fleet_run_dir(tune.fleet_run, base, source, "fleet_run"))
    for i, v in enumerate(tune.sensitivity):
        if v.set and tune.fleet is None:
            raise InputError(source, f"sensitivity.{i}.set", "re-running a variant needs the tune's fleet file "
                             "(fleet:); with fleet_run: give each variant its own fleet_run directory")
        if v.fleet_run is not None:
            fleet_run_dir(v.fleet_run, base, source, f"sensitivity.{i}.fleet_run")
    plan = _plan(tune.plan, base, source, "plan")
    paid = _plan(tune.paid_plan, base, source, "paid_plan")
    if not plan.limits:
        raise InputError(source, "plan", f"plan {plan.name} has no limits: nothing to tune (a free plan has limits)")
    for name in tune.variables:
        try:
            variable_limit(plan, name)
        except ValueError as exc:
            raise InputError(source, f"variables.{name}", str(exc)) from None
    for name, var in tune.variables.items():
        _, lim = variable_limit(plan, name)
        if lim.max_fraction_of is not None and var.high > 1e6:
            raise InputError(source, f"variables.{name}.high", "a fraction of another metric; far too large")
    return tune, plan, paid


def validate_tune(raw: dict, source: str = "<tune>") -> Tune:
    for key in ("source", "fleet_path", "run_dir"):
        if key in raw:
            raise InputError(source, key, "unknown key")
    yamlio.check_numbers(Tune, raw, source)
    try:
        tune = Tune.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(x) for x in err["loc"] if not str(x).startswith(("constrained", "function-")))
        msg = {"extra_forbidden": "unknown key", "missing": "required key is missing"}.get(err["type"])
        if msg is None:
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] != "value_error" and "input" in err and not isinstance(err["input"], dict | list):
                msg = f"{msg} (got {err['input']!r})"
        raise InputError(source, loc or None, msg) from None
    tune.source = source
    _grid_size(tune)
    return tune


def grid_values(var: Variable) -> list[float]:
    """A variable's grid: low, low + step, ... (high included when it falls on the step), or ``points``
    evenly spaced; rounded to 10 significant digits so 0.1 x 3 is 0.3."""
    import numpy as np

    if var.low == var.high:
        return [var.low]
    if var.step is not None:
        n = int(np.floor((var.high - var.low) / var.step + 1e-9)) + 1
        vals = var.low + var.step * np.arange(n)
    else:
        vals = np.linspace(var.low, var.high, var.points or DEFAULT_POINTS)
    return [float(f"{v:.10g}") for v in vals]


def _grid_size(tune: Tune) -> None:
    size = 1
    for name, var in tune.variables.items():
        if var.step is not None and (var.high - var.low) / var.step > MAX_GRID:
            raise InputError(tune.source, f"variables.{name}.step", f"more than {MAX_GRID:,} grid points")
        size *= len(grid_values(var))
    method = tune.search.method
    if (method == "grid" or (method == "auto" and len(tune.variables) <= 3)) and size > MAX_GRID:
        raise InputError(tune.source, "variables", f"the grid has {size:,} candidates, more than {MAX_GRID:,}: "
                         "use larger steps, fewer points or search.method: optuna")


def _fleet_file(name: str, base: Path, source: str, field: str) -> Path:
    cand = base / name
    if cand.is_file():
        return cand.resolve()
    shipped = Path(__file__).resolve().parents[2] / "fleets"
    for alt in (shipped / name, shipped / f"{name}.yaml"):
        if alt.is_file():
            return alt.resolve()
    raise InputError(source, field, f"{name!r}: no such fleet file (relative to {base}, or shipped in fleets/)")


def fleet_run_dir(name: str, base: Path, source: str, field: str) -> Path:
    """An earlier `sim fleet --out` directory (relative to the tune file): it must hold the fleet's files."""
    cand = (base / name).resolve()
    if not cand.is_dir():
        raise InputError(source, field, f"{name!r}: no such directory (relative to {base}); give an earlier "
                         "`sim fleet --out` directory")
    missing = [f for f in FLEET_RUN_FILES if not (cand / f).is_file()]
    if missing:
        raise InputError(source, field, f"{name!r} is not a `sim fleet` result: it has no {', '.join(missing)}")
    return cand


def _plan(name: str, base: Path, source: str, field: str) -> Plan:
    cand = base / name
    try:
        return load_plan(cand if cand.is_file() else name)
    except InputError as exc:
        if exc.source is None:  # unknown shipped name: say which tune field named it
            raise InputError(source, field, exc.problem) from None
        raise


def tune_value(tune: Tune, plan: Plan, name: str) -> Any:
    """The plan's current value of a variable (its max, or its fraction)."""
    _, lim = variable_limit(plan, name)
    return float(lim.max if lim.max is not None else lim.max_fraction_of.fraction)
