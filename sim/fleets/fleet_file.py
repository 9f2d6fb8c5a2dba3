"""Fleet files: a population of apps (archetypes, per-app distributions of scenario keys, shares, a seed).

A fleet is a YAML mapping validated like a study (unknown keys and bad values are one
:class:`~sim.errors.InputError` naming the file, the field and the problem)::

    name: small-apps
    seed: 1
    apps: 1000
    plans: [mesibo-free, mesibo-cloud]        # default for every archetype (default: each scenario's plans)
    free_plan: mesibo-free                    # default: an archetype's first plan that has limits
    simulation: {days: 30}                    # the common clock: applied to every app
    set: {simulation.warmup_days: 1}          # any scenario keys, applied to every app
    sample: {max_users: 200, max_devices: 50} # larger apps are simulated by population.sample / iot.sample
    capacity: {connections_per_server: 50000, messages_per_second_per_server: 5000, egress_percentile: 95}
    archetypes:
      chat:
        scenario: ../scenarios/quick.yaml     # relative to the fleet file, or a shipped name
        share: 0.8
        plans: [mesibo-free, mesibo-cloud]    # optional, overrides the fleet's
        set: {messaging.group_fraction: 0.2}  # fixed overrides of this archetype
        params:                               # per-app draws of scenario keys
          population.users: {dist: lognormal, median: 300, sigma: 1.6, min: 20, max: 2000000, round: true}

Why everything is drawn and checked here, before a single run: a fleet of an hour must not die at app 817
because one draw put ``population.users`` at 0. :func:`load_fleet` validates the schema, every key, every
plan, the common clock and the scenario of **every** app.

**Draws.** Each distribution (:mod:`sim.fleets.distributions`) is an inverse CDF applied to one uniform
number, so that app ``i``'s value of key ``k`` depends on ``(seed, i, k)`` only: app ``i``'s archetype comes from
``Streams(seed).generator("fleet", "app", i)`` and its value of ``k`` from
``Streams(seed).generator("fleet", "app", i, "param", k)``. Adding apps appends rows and never reshuffles
the others; adding a parameter leaves the other parameters' draws alone. App ``i``'s simulation seed is
drawn from ``Streams(seed).seed_sequence("fleet", "seed", i)`` (62 bits, as sweep seeds).

**Precedence** (most specific wins): the scenario file < the fleet's ``set:`` < the fleet's ``simulation:``
< the archetype's ``set:`` < the archetype's ``params:``. All apps must end on the same
``simulation.start`` and ``simulation.days`` (their loads are added minute by minute), so ``params`` may
not draw ``simulation.*`` keys and a mismatch between archetypes is an error.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import ConfigDict, Field, ValidationError, model_validator

from sim import yamlio
from sim.errors import InputError
from sim.fleets.distributions import (  # noqa: F401 (re-exported: sim.fleets.fleet_file.Lognormal etc.)
    DIST_NAMES,
    Choice,
    Distribution,
    Fixed,
    Lognormal,
    Pareto,
    Uniform,
    _Dist,
    _Numeric,
)
from sim.rng import Streams
from sim.strict import StrictModel

#: Largest seed handed to an app: 62 bits, so it fits a signed 64-bit column (as sweep seeds).
SEED_BITS = 62
#: Most apps a fleet may have (the coordinator keeps one row and one row of 15-minute CCU maxima per app).
MAX_APPS = 1_000_000
#: Width of the per-app CCU bins kept in app_ccu.npy (minutes).
BIN_MINUTES = 15


class _Strict(StrictModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# -- the fleet file ---------------------------------------------------------------------------------------


class Sample(_Strict):
    """Apps larger than this are simulated on a sample of this size (``population.sample`` / ``iot.sample``)."""

    max_users: Annotated[int, Field(ge=2)] | None = None
    max_devices: Annotated[int, Field(ge=2)] | None = None


class Capacity(_Strict):
    """What one server carries, and the percentile at which egress is provisioned (burstable billing: 95)."""

    connections_per_server: Annotated[float, Field(gt=0)] = 50_000
    messages_per_second_per_server: Annotated[float, Field(gt=0)] = 5_000
    egress_percentile: Annotated[float, Field(gt=0, le=100)] = 95


class Archetype(_Strict):
    scenario: str
    share: Annotated[float, Field(ge=0, le=1)]
    description: str = ""
    plans: list[str] | None = None
    free_plan: str | None = None
    set: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Distribution] = Field(default_factory=dict)


class FleetDoc(_Strict):
    """A fleet file as written (after ``--set``)."""

    name: str = "fleet"
    description: str = ""
    seed: Annotated[int, Field(ge=0)] = 1
    apps: Annotated[int, Field(ge=1, le=MAX_APPS)]
    plans: list[str] | None = None
    free_plan: str | None = None
    simulation: dict[str, Any] = Field(default_factory=dict)
    set: dict[str, Any] = Field(default_factory=dict)
    sample: Sample = Field(default_factory=Sample)
    capacity: Capacity = Field(default_factory=Capacity)
    archetypes: dict[str, Archetype] = Field(min_length=1)

    @model_validator(mode="after")
    def _shares(self) -> FleetDoc:
        total = sum(a.share for a in self.archetypes.values())
        if abs(total - 1.0) > 1e-9:
            shown = ", ".join(f"{k} {a.share:g}" for k, a in self.archetypes.items())
            raise ValueError(f"archetypes: shares must sum to 1, got {total:g} ({shown})")
        return self


# -- resolved fleet ---------------------------------------------------------------------------------------


@dataclass
class ResolvedArchetype:
    """An archetype with its scenario file read and the fixed overrides applied (not yet drawn)."""

    name: str
    doc: Archetype
    scenario_path: str
    raw: dict                      # scenario file + fleet set + simulation + archetype set
    plans: list                    # sim.pricing.plan.Plan
    free_plan: str | None
    origin: dict[str, str]         # scenario key -> the fleet field that set it (for messages)
    source: str = "<fleet>"        # the fleet file (for messages)

    def probe(self):
        """The archetype's scenario with every parameter at its median draw (u = 0.5): what is checked for an
        archetype as a whole (its plans, its clock), whatever its share."""
        raw = copy.deepcopy(self.raw)
        params = {key: dist.value(0.5) for key, dist in self.doc.params.items()}
        for key, value in params.items():
            _put(raw, key, value)
        return _validated(raw, self.scenario_path, self, AppSpec(-1, self.name, 0, params))


@dataclass(frozen=True)
class AppSpec:
    """App ``app`` as drawn: its archetype, seed and parameter values (before simulation)."""

    app: int
    archetype: str
    seed: int
    params: dict[str, Any]


@dataclass
class Fleet:
    """A validated fleet: the document, its archetypes resolved, every app's scenario checked."""

    doc: FleetDoc
    source: str
    archetypes: dict[str, ResolvedArchetype]
    start: Any = None              # the common clock (datetime, UTC)
    days: int = 0
    sampled_apps: int = 0
    _cumshare: np.ndarray = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.doc.name

    @property
    def seed(self) -> int:
        return self.doc.seed

    @property
    def apps(self) -> int:
        return self.doc.apps

    @property
    def minutes(self) -> int:
        return self.days * 1440

    @property
    def plans(self) -> list:
        """Every plan priced for some app, in order of first mention (the apps table's plan columns)."""
        seen: dict[str, Any] = {}
        for a in self.archetypes.values():
            for p in a.plans:
                seen.setdefault(p.name, p)
        return list(seen.values())

    @property
    def free_plan(self) -> str | None:
        """The fleet's free plan: ``free_plan:``, else the first archetype's free plan."""
        if self.doc.free_plan:
            return self.doc.free_plan
        return next((a.free_plan for a in self.archetypes.values() if a.free_plan), None)

    def app(self, i: int) -> AppSpec:
        """App ``i``'s draws: a function of (seed, i) only."""
        streams = Streams(self.seed)
        u = streams.generator("fleet", "app", i).random()
        names = list(self.archetypes)
        k = min(int(np.searchsorted(self._cumshare, u, side="right")), len(names) - 1)
        while self.archetypes[names[k]].doc.share == 0:   # a zero share never wins (u on its boundary)
            k = (k + 1) % len(names)
        arch = self.archetypes[names[k]]
        params = {key: dist.value(param_uniform(self.seed, i, key)) for key, dist in arch.doc.params.items()}
        return AppSpec(i, arch.name, app_seed(self.seed, i), params)

    def scenario(self, spec: AppSpec):
        """App ``spec``'s validated scenario, sampled when it is larger than the fleet's ``sample:`` caps."""
        return _app_scenario(self, self.archetypes[spec.archetype], spec)

    def document(self) -> dict:
        return self.doc.model_dump(mode="json", by_alias=True) | {"source": self.source}

    def expected(self) -> dict[str, Any]:
        """Expected values per app of every numeric parameter (closed forms), and the fleet's expected totals
        of registered users, active users and devices (parameters are drawn independently)."""
        out: dict[str, Any] = {"archetypes": {}}
        tot_users = tot_active = tot_devices = 0.0
        for a in self.archetypes.values():
            means = {k: d.mean() for k, d in a.doc.params.items()}
            base = a.probe()

            users = _mean_or(means, "population.users", base.population.users)
            maf = _mean_or(means, "population.monthly_active_fraction", base.population.monthly_active_fraction)
            devices = _mean_or(means, "iot.devices", base.iot.devices) if base.iot is not None else 0.0
            n = self.apps * a.doc.share
            out["archetypes"][a.name] = {"apps": n, "params": means, "users_per_app": users,
                                         "active_users_per_app": users * maf, "devices_per_app": devices}
            tot_users += n * users
            tot_active += n * users * maf
            tot_devices += n * devices
        out |= {"users": tot_users, "active_users": tot_active, "devices": tot_devices}
        return out


def _mean_or(means: dict[str, float | None], key: str, default: float) -> float:
    m = means.get(key)
    return default if m is None else m


def param_uniform(root: int, i: int, key: str) -> float:
    """The uniform number behind app ``i``'s value of parameter ``key`` (the value is the distribution's inverse
    CDF at it)."""
    return float(Streams(root).generator("fleet", "app", i, "param", key).random())


def app_seed(root: int, i: int) -> int:
    """App ``i``'s simulation seed (recorded in its row: ``sim run SCENARIO --seed SEED`` reproduces it)."""
    state = Streams(root).seed_sequence("fleet", "seed", i).generate_state(1, np.uint64)[0]
    return int(state) >> (64 - SEED_BITS)


# -- loading ----------------------------------------------------------------------------------------------


#: Fleet keys whose sub-keys are dotted scenario keys (``set.population.users`` is one key of ``set``).
_KEYED = ("set", "simulation")


def apply_fleet_sets(raw: dict, sets: list[str]) -> dict:
    """``--set key=value`` on a fleet: ``apps=20``, ``seed=3``, ``archetypes.chat.share=0.5``,
    ``set.population.users=300``, ``archetypes.chat.set.simulation.warmup_days=0``,
    ``archetypes.chat.params.population.users.median=600`` (a distribution's field) or
    ``archetypes.chat.params.population.users={dist: fixed, value: 50}`` (the whole distribution).
    Unknown keys are left for the schema to name."""
    out = copy.deepcopy(raw)
    for item in sets:
        path, parts, text = yamlio.split_set(item)
        try:
            value = yamlio.load(text) if text.strip() else None
        except Exception:  # noqa: BLE001 - not YAML: the text itself
            value = text
        if parts[0] in _KEYED and len(parts) > 1:
            _node(out, [parts[0]])[".".join(parts[1:])] = value
        elif parts[0] == "archetypes" and len(parts) > 3 and parts[2] == "set":
            _node(out, parts[:3])[".".join(parts[3:])] = value
        elif parts[0] == "archetypes" and len(parts) > 3 and parts[2] == "params":
            params = _node(out, parts[:3])
            rest = ".".join(parts[3:])
            head, _, last = rest.rpartition(".")
            if rest in params or not head:
                params[rest] = value
            elif head in params and isinstance(params[head], dict):
                params[head][last] = value
            else:
                raise InputError("--set", path, f"no parameter {rest!r} or {head!r} in archetypes.{parts[1]}.params "
                                 "to change; give the whole distribution: "
                                 f"archetypes.{parts[1]}.params.{rest}={{dist: ..., ...}}")
        else:
            node = _node(out, parts[:-1])
            node[parts[-1]] = value
    return out


def _node(doc: dict, parts: list[str]) -> dict:
    node = doc
    for part in parts:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    return node


def load_fleet(path: str | Path, sets: list[str] | None = None) -> Fleet:
    """Read, override (``sets``) and validate a fleet file, its archetypes' scenarios and plans, the common
    clock, and the scenario of every app it draws. Every problem is one :class:`InputError`."""
    p = Path(path)
    source = str(p)
    raw = yamlio.read_mapping(p, "fleet file", "a fleet must be a YAML mapping (name, apps, archetypes ...)")
    raw = apply_fleet_sets(raw, sets or [])
    doc = validate_fleet(raw, source)
    return resolve(doc, source, p.parent)


def validate_fleet(raw: dict, source: str = "<fleet>") -> FleetDoc:
    yamlio.check_numbers(FleetDoc, raw, source)
    try:
        return FleetDoc.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = _loc(err["loc"])
        msg = {"extra_forbidden": "unknown key", "missing": "required key is missing"}.get(err["type"], err["msg"])
        msg = msg.removeprefix("Value error, ")
        if err["type"] == "union_tag_invalid":
            msg = f"unknown distribution {err.get('input', {}).get('dist')!r}; one of {', '.join(DIST_NAMES)}" \
                if isinstance(err.get("input"), dict) else msg
        elif err["type"] == "union_tag_not_found":
            msg = f"a distribution needs dist: one of {', '.join(DIST_NAMES)}"
        if msg.startswith("archetypes: "):
            loc, msg = "archetypes", msg.removeprefix("archetypes: ")
        raise InputError(source, loc or None, msg) from None


def _loc(loc: tuple) -> str:
    """A pydantic error location as a dotted fleet field, without the union tags pydantic adds."""
    out = []
    for part in loc:
        text = str(part)
        if text in DIST_NAMES and len(out) >= 3 and out[-2] == "params":
            continue
        if "[" in text or text in ("int", "float", "str", "constrained-int"):
            continue
        out.append(text)
    return ".".join(out)


def resolve(doc: FleetDoc, source: str, base: Path) -> Fleet:
    from sim.scenario import _check_path

    plan_cache: dict[str, Any] = {}
    archetypes: dict[str, ResolvedArchetype] = {}
    for name, a in doc.archetypes.items():
        where = f"archetypes.{name}"
        path = _scenario_path(a.scenario, base, source, f"{where}.scenario")
        sraw = yamlio.read_mapping(path, "scenario file", "a scenario must be a YAML mapping")
        origin: dict[str, str] = {}
        layers = [("set", doc.set), ("simulation", {f"simulation.{k}": v for k, v in doc.simulation.items()}),
                  (f"{where}.set", a.set)]
        raw = copy.deepcopy(sraw)
        for field_name, mapping in layers:
            for key, value in mapping.items():
                shown = key.removeprefix("simulation.") if field_name == "simulation" else key
                _check_key(key, f"{field_name}.{shown}", source, _check_path)
                _put(raw, key, value)
                origin[key] = f"{field_name}.{shown}"
        for key in a.params:
            _check_key(key, f"{where}.params.{key}", source, _check_path)
            if key.split(".")[0] == "simulation":
                raise InputError(source, f"{where}.params.{key}", "the common clock (simulation.*) cannot be drawn "
                                 "per app: all apps share simulation.start and days; set it in simulation:")
            origin[key] = f"{where}.params.{key}"
        res = ResolvedArchetype(name, a, str(path), raw, [], None, origin, source)
        probe = res.probe()
        names = a.plans if a.plans is not None else doc.plans if doc.plans is not None else probe.plans
        plans_field = f"{where}.plans" if a.plans is not None else "plans" if doc.plans is not None else \
            f"{where}.scenario"
        if not names:
            raise InputError(source, plans_field, f"no plans for archetype {name!r}: list some in plans: (the fleet "
                             "or the archetype) or in its scenario")
        res.plans = [_plan(n, i, plans_field, base, path.parent, source, plan_cache) for i, n in enumerate(names)]
        res.free_plan = _free_plan(doc, a, res.plans, where, source)
        archetypes[name] = res
    _check_plan_names(archetypes, source)
    fleet = Fleet(doc, source, archetypes)
    fleet._cumshare = np.cumsum([a.share for a in doc.archetypes.values()])
    _check_clock(fleet, source)
    _check_apps(fleet)
    return fleet


def _check_key(key: str, field_name: str, source: str, check) -> None:
    from sim.scenario import Scenario

    if key == "seed" or key.startswith("seed."):
        raise InputError(source, field_name, "each app's seed is drawn by the fleet (fleet seed:), not set")
    try:
        check(Scenario, key.split("."), key)
    except InputError as exc:
        raise InputError(source, field_name, f"not a scenario key: {exc.problem}") from None


def _put(raw: dict, key: str, value: Any) -> None:
    """Set dotted ``key`` in scenario data (a preset name being replaced by explicit sub-keys becomes a mapping)."""
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = copy.deepcopy(value)


def _scenario_path(name: str, base: Path, source: str, field_name: str) -> Path:
    from sim.scenario import resolve_scenario_path

    cand = base / name
    if cand.is_file():
        return cand.resolve()
    try:
        found = resolve_scenario_path(name)
    except InputError:
        raise InputError(source, field_name, f"{name!r}: no such scenario file (relative to {base} or shipped)") \
            from None
    if not found.is_file():
        raise InputError(source, field_name, f"{name!r}: not a file")
    return found.resolve()


def _plan(name: str, i: int, field_name: str, base: Path, scenario_dir: Path, source: str, cache: dict):
    from sim.pricing.plan import load_plan

    here = base if not field_name.endswith(".scenario") else scenario_dir
    local = here / name
    key = str(local.resolve()) if local.is_file() else name
    if key not in cache:
        where = f"{field_name}.{i}" if not field_name.endswith(".scenario") else f"{field_name} (its plans.{i})"
        try:
            cache[key] = load_plan(local if local.is_file() else name)
        except InputError as exc:
            raise InputError(source, where, f"{name!r}: {exc.problem}") from None
    return cache[key]


def _free_plan(doc: FleetDoc, a: Archetype, plans: list, where: str, source: str) -> str | None:
    names = [p.name for p in plans]
    given, field_name = (a.free_plan, f"{where}.free_plan") if a.free_plan else (doc.free_plan, "free_plan")
    if given:
        if given not in names:
            raise InputError(source, field_name, f"{given!r} is not among the plans priced for {where} "
                             f"({', '.join(names)})")
        if not next(p for p in plans if p.name == given).limits:
            raise InputError(source, field_name, f"{given!r} has no limits, so no app could be within them")
        return given
    return next((p.name for p in plans if p.limits), None)


def _check_plan_names(archetypes: dict[str, ResolvedArchetype], source: str) -> None:
    """Columns are named by plan name: two different plans of one name would share them."""
    seen: dict[str, Any] = {}
    for a in archetypes.values():
        for p in a.plans:
            if p.name in seen and seen[p.name] is not p:
                raise InputError(source, f"archetypes.{a.name}.plans", f"two different plans are named {p.name!r} "
                                 f"({seen[p.name].path} and {p.path}); plan columns are named by plan name")
            seen[p.name] = p


def _check_clock(fleet: Fleet, source: str) -> None:
    """All apps on one clock: the same simulation.start and days (loads add minute by minute)."""
    first = None
    for a in fleet.archetypes.values():
        sc = a.probe()
        if sc.simulation.months:
            raise InputError(source, f"archetypes.{a.name}", "simulation.months: a fleet is priced over one billing "
                             "period (sim run takes a scenario of months)")
        clock = (sc.simulation.start, sc.simulation.days)
        if first is None:
            first, fleet.start, fleet.days = (a.name, clock), clock[0], clock[1]
        elif clock != first[1]:
            raise InputError(source, f"archetypes.{a.name}", f"simulation starts {clock[0].isoformat()} for "
                             f"{clock[1]} days, archetype {first[0]!r} {first[1][0].isoformat()} for {first[1][1]} "
                             "days: all apps share one clock; set it once in the fleet's simulation:")


def _check_apps(fleet: Fleet) -> None:
    """Draw and validate every app's scenario now (fail before anything runs or is written)."""
    fleet.sampled_apps = 0
    for i in range(fleet.apps):
        spec = fleet.app(i)
        sc = fleet.scenario(spec)
        fleet.sampled_apps += bool(is_sampled(sc))


def is_sampled(sc) -> bool:
    mob = getattr(sc.population, "sample", None)
    dev = getattr(sc.iot, "sample", None) if sc.iot is not None else None
    return (mob is not None and mob < sc.population.users) or (dev is not None and dev < sc.iot.devices)


def _validated(raw: dict, path: str, arch: ResolvedArchetype, spec: AppSpec | None, problem_prefix: str = ""):
    """Validate scenario data; a problem names the fleet field it came from (a parameter, a set, the scenario)."""
    from sim.scenario import validate_scenario

    try:
        return validate_scenario(raw, path)
    except InputError as exc:
        fld = exc.field or ""
        owner = next((o for k, o in sorted(arch.origin.items(), key=lambda kv: -len(kv[0]))
                      if fld == k or fld.startswith(k + ".")), None)
        app = "the archetype's median app" if spec is not None and spec.app < 0 else \
            f"app {spec.app}" if spec is not None else ""
        who = f"{app}: " if app else ""
        if owner is not None and spec is not None and owner.endswith(f"params.{fld}"):
            who = f"{app} drew {spec.params.get(fld)!r}: "
        source = arch.source
        if owner is None:
            raise InputError(source, f"archetypes.{arch.name}.scenario",
                             f"{who}{problem_prefix}{fld or 'scenario'}: {exc.problem}") from None
        raise InputError(source, owner, f"{who}{problem_prefix}{exc.problem}") from None


def _app_scenario(fleet: Fleet, arch: ResolvedArchetype, spec: AppSpec):
    raw = copy.deepcopy(arch.raw)
    for key, value in spec.params.items():
        _put(raw, key, value)
    raw["seed"] = spec.seed
    sc = _validated(raw, arch.scenario_path, arch, spec)
    cap = fleet.doc.sample
    sampled = False
    if cap.max_users is not None and sc.population.users > cap.max_users:
        _need_sampling("population", "max_users", sc.population, fleet, spec)
        raw.setdefault("population", {})["sample"] = cap.max_users
        sampled = True
    if cap.max_devices is not None and sc.iot is not None and sc.iot.devices > cap.max_devices:
        _need_sampling("iot", "max_devices", sc.iot, fleet, spec)
        raw["iot"]["sample"] = cap.max_devices
        sampled = True
    if sampled:
        sc = _validated(raw, arch.scenario_path, arch, spec, "with the fleet's sample: ")
    return sc


def _need_sampling(section: str, cap: str, model, fleet: Fleet, spec: AppSpec) -> None:
    if "sample" not in type(model).model_fields:
        raise InputError(fleet.source, f"sample.{cap}", f"app {spec.app} is larger than the cap, and this version "
                         f"of sim has no {section}.sample to simulate it on a sample")


def param_text(value: Any) -> Any:
    """A drawn value as a table cell: numbers and strings as they are, anything else as JSON."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True, default=str)
