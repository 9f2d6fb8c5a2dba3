"""The tuning problem: a fleet run (:func:`read_fleet_run`) and a tune file, prepared as the arrays every
candidate is evaluated on (:func:`build_problem`): per app, the quantities each of the free plan's limits
compares (at the point and at the sampling CI bounds), its variable cost, message peak and paid-plan total.

**Why a limit change needs no re-simulation.** A candidate changes the free plan's limits only (how much an
app may use), never its runtime restrictions' parameters. The plan's runtime action on a free limit is
throttling, and it starts only once a limit is passed (``throttling: grace`` after the last notification).
An app whose measured quantities stay within every limit of the candidate therefore never triggers it: its
behaviour under the candidate is that of the fleet's unrestricted run, and its quantities are the ones
measured there (the apps table's ``q.<plan>.<metric>``). An app that passes some limit is outside the free
tier: it pays the paid plan, priced on the paid plan's own run (``total.<paid_plan>``), which does not depend
on the free plan at all. So every candidate is priced from the one simulated fleet; the only behaviour a
candidate could change (throttling of an app over a free limit) belongs to an app that is not free under it
and is counted as paying. (The free plan's other runtime restrictions, e.g. mesibo's message rate, are not
tuned and are the same for every candidate; the plan's own run includes them. An app whose own run was
enforced is judged on the larger of its own run's and its unrestricted run's quantities: see
:func:`_quantity`.)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sim.errors import InputError
from sim.fleets.tune_file import Tune
from sim.pricing.plan import Plan

if TYPE_CHECKING:  # pragma: no cover
    from sim.fleets.tune_eval import SetCache


# -- the fleet run: what the tuner reads ------------------------------------------------------------------------

@dataclass
class FleetRun:
    """An earlier `sim fleet --out` directory, read: the apps table, app_ccu.npy (rows in apps order), fleet.json."""

    dir: Path
    apps: pd.DataFrame
    ccu: np.ndarray
    info: dict

    @property
    def doc(self) -> dict:
        doc = self.info.get("fleet", self.info)
        return doc if isinstance(doc, dict) else {}

    def plan_names(self) -> list[str]:
        return [c[len("total."):] for c in self.apps.columns if c.startswith("total.")]

    def archetype_names(self) -> list[str]:
        arch = self.doc.get("archetypes")
        if isinstance(arch, dict) and arch:
            return list(arch)
        return sorted(self.apps["archetype"].astype(str).unique()) if "archetype" in self.apps else []

    def capacity(self) -> dict:
        cap = self.doc.get("capacity") or self.info.get("capacity") or {}
        if not cap and (self.dir / "capacity.json").is_file():
            try:
                cj = json.loads((self.dir / "capacity.json").read_text())
                cap = (cj.get("parameters") or cj.get("capacity") or {}) if isinstance(cj, dict) else {}
            except (OSError, ValueError):
                cap = {}
        return cap if isinstance(cap, dict) else {}

    def seed(self) -> Any:
        return self.info.get("seed", self.doc.get("seed"))


def read_fleet_run(run_dir: str | Path) -> FleetRun:
    """Read a fleet run directory; anything unreadable or inconsistent is an InputError naming the file."""
    d = Path(run_dir)
    src = str(d / "apps.parquet")
    try:
        apps = pd.read_parquet(d / "apps.parquet")
    except Exception as exc:  # noqa: BLE001 (pyarrow raises many kinds)
        raise InputError(src, None, f"cannot read the apps table: {type(exc).__name__}: {exc}") from None
    for col in ("app", "archetype"):
        if col not in apps.columns:
            raise InputError(src, col, "column missing: not a `sim fleet` apps table")
    try:
        ccu = np.load(d / "app_ccu.npy", allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise InputError(str(d / "app_ccu.npy"), None, f"cannot read: {type(exc).__name__}: {exc}") from None
    try:
        info = json.loads((d / "fleet.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(str(d / "fleet.json"), None, f"cannot read: {exc}") from None
    ids = apps["app"].to_numpy()
    if ccu.ndim != 2 or (ids.size and (ids.min() < 0 or ids.max() >= ccu.shape[0])):
        raise InputError(str(d / "app_ccu.npy"), None, f"shape {ccu.shape} does not match the apps table "
                         f"({len(apps)} apps, ids up to {ids.max() if ids.size else '-'})")
    apps = apps.sort_values("app", kind="stable").reset_index(drop=True)
    ccu = np.asarray(ccu[apps["app"].to_numpy()], dtype=np.float32)
    return FleetRun(d, apps, ccu, info if isinstance(info, dict) else {})


def plan_key(names: list[str], written: str, plan: Plan) -> str | None:
    """The fleet's name for ``plan`` (as the fleet wrote it): the same string, file stem or plan name."""
    for n in names:
        if n == written:
            return n
    for n in names:
        if n == plan.name or Path(n).stem == plan.name or Path(n).stem == Path(written).stem:
            return n
    return None


# -- the problem: one fleet run, prepared for vectorised evaluation -------------------------------------------

@dataclass
class LimitSpec:
    metric: str
    kind: str                      # "max" | "fraction"
    fixed: float | None            # the plan's value when not a variable
    var: int | None                # index into the variables
    qty: dict[str, np.ndarray]     # "point" | "low" | "high" -> quantity compared
    base: dict[str, np.ndarray] | None = None   # the other metric of a fraction limit


@dataclass
class Problem:
    tune: Tune
    plan: Plan
    paid: Plan
    run: FleetRun
    plan_key: str
    paid_key: str
    names: list[str]               # variable names
    limits: list[LimitSpec]
    arch_of: np.ndarray            # per app, index into arch_list
    arch_list: list[str]
    app_cost: np.ndarray           # per app, variable cost (float)
    mps: np.ndarray
    paid_total: np.ndarray
    ccu: np.ndarray                # apps x bins float32
    cps: float | None
    mpss: float | None
    prices: dict[str, Decimal]
    frame: pd.DataFrame            # the apps evaluated
    apps_failed: int
    apps_excluded: int
    sets: SetCache = field(init=False)

    def __post_init__(self) -> None:
        from sim.fleets.tune_eval import SetCache  # the evaluation's cache; it imports this module

        self.sets = SetCache(self)

    @property
    def n(self) -> int:
        return len(self.frame)


def _col(frame: pd.DataFrame, name: str, source: str) -> np.ndarray:
    if name not in frame.columns:
        raise InputError(source, name, "column missing from the apps table")
    return pd.to_numeric(frame[name], errors="coerce").fillna(0.0).to_numpy(dtype=np.float64)


def _bound(frame: pd.DataFrame, point: str, which: str) -> np.ndarray:
    base = pd.to_numeric(frame[point], errors="coerce").fillna(0.0).to_numpy(dtype=np.float64)
    if which == "point":
        return base
    col = f"{point}_ci_{which}"
    if col not in frame.columns:
        return base
    v = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)
    return np.where(np.isfinite(v), v, base)


#: Unrestricted-run meter columns of the apps table: meter -> {aggregation: (column, meter units per column unit)}.
RAW_METERS = {
    "mau": {"unique": ("mau", 1.0)},
    "peak_ccu": {"max": ("peak_ccu", 1.0)},
    "outbound_bytes": {"sum": ("outbound_gb", 1e9)},
    "turn_bytes": {"sum": ("turn_gb", 1e9)},
    "stored_bytes": {"max": ("stored_gb_max", 1e9), "avg": ("stored_gb", 1e9)},
}
_SAMPLED_METERS = ("mau", "peak_ccu")


def _raw(frame, plan: Plan, metric: str, which: str) -> np.ndarray | None:
    """A metric's quantity before ``at_least`` and rounding, from the unrestricted run's meter columns (MAU and
    peak CCU at a CI bound when ``which`` is "low"/"high"); None when the table has no such column."""
    m = plan.metrics[metric]
    col = RAW_METERS.get(m.meter, {}).get(m.aggregation)
    if col is None or col[0] not in frame.columns:
        return None
    name, scale = col
    if which != "point" and m.meter in _SAMPLED_METERS:
        return _bound(frame, name, which) * scale * float(m.factor)
    return _bound(frame, name, "point") * scale * float(m.factor)


def _derived(frame, plan: Plan, metric: str, which: str) -> np.ndarray | None:
    """What a limit on ``metric`` compares (``at_least`` and rounding applied), from the meter columns."""
    m = plan.metrics[metric]
    q = _raw(frame, plan, metric, which)
    if q is None:
        return None
    if m.at_least is not None:
        other = _raw(frame, plan, m.at_least.metric, which)
        if other is None:
            return None
        q = np.maximum(q, float(m.at_least.multiplier) * other)
    if m.round is not None:
        s = 10.0 ** m.round.precision
        f = {"ceil": np.ceil, "floor": np.floor, "half_up": lambda x: np.floor(x + 0.5)}[m.round.mode]
        q = f(np.round(q * s, 9)) / s
    return q


def _quantity(frame, plan: Plan, key: str, metric: str, which: str, source: str, binds: np.ndarray) -> np.ndarray:
    """What a limit on ``metric`` compares for each app, as the unrestricted run measured it.

    The apps table's ``q.<plan>.<metric>`` is measured on the plan's own run. For an app whose free-plan run
    was enforced (``binds.<plan>``) that run was throttled after passing a limit of the plan as shipped, or held
    to a restriction that no candidate changes (a message-rate cap); the table does not say which. Throttling
    and caps only take usage away, so the run an app would have within a candidate's limits (the caps, no
    throttling) lies between the plan's own run and the unrestricted one: such an app's quantity is the larger
    of the two (the unrestricted one from the meter columns, where the table has them): exact when throttling
    acted, conservative (never calls a paying app free) otherwise. At a CI bound ("low"/"high") MAU and peak
    CCU are moved to their bounds and the quantity re-derived."""
    q = _col(frame, f"q.{key}.{metric}", source)
    m = plan.metrics[metric]
    meters = {m.meter} | ({plan.metrics[m.at_least.metric].meter} if m.at_least else set())
    if which != "point" and meters & set(_SAMPLED_METERS):
        d = _derived(frame, plan, metric, which)
        if d is not None:
            point = _derived(frame, plan, metric, "point")
            return np.where(binds, d, q + (d - point))   # the bound's offset on the table's own quantity
    if binds.any():
        d = _derived(frame, plan, metric, "point")
        if d is not None:
            q = np.where(binds, np.maximum(q, d), q)
    return q


def _base(frame, plan: Plan, key: str, metric: str, which: str, source: str) -> np.ndarray:
    """The other metric of a ``max_fraction_of`` limit: its measured quantity (before ``at_least``)."""
    raw = _raw(frame, plan, metric, which)
    return raw if raw is not None else _col(frame, f"q.{key}.{metric}", source)


def build_problem(tune: Tune, plan: Plan, paid: Plan, run: FleetRun) -> Problem:
    """Prepare the arrays every candidate is evaluated on; bad references are InputErrors naming the tune file."""
    src = tune.source
    names = run.plan_names()
    key = plan_key(names, tune.plan, plan)
    if key is None:
        raise InputError(src, "plan", f"the fleet did not price {tune.plan!r}; its plans: {', '.join(names) or '(none)'}")
    pkey = plan_key(names, tune.paid_plan, paid)
    if pkey is None:
        raise InputError(src, "paid_plan", f"the fleet did not price {tune.paid_plan!r}; its plans: "
                         f"{', '.join(names) or '(none)'}")
    check_archetypes(tune, run.archetype_names())
    apps = run.apps
    table = str(run.dir / "apps.parquet")
    ok = np.ones(len(apps), dtype=bool)
    if "error" in apps.columns:
        ok &= apps["error"].isna().to_numpy() | (apps["error"].astype(str) == "")
    failed = int((~ok).sum())
    if tune.archetypes is not None:
        keep = apps["archetype"].astype(str).isin(tune.archetypes).to_numpy()
    else:   # the apps the free plan was priced for (an archetype may list other plans)
        keep = pd.to_numeric(apps[f"total.{key}"], errors="coerce").notna().to_numpy()
    excluded = int((ok & ~keep).sum())
    rows = ok & keep
    frame = apps[rows].reset_index(drop=True)
    ccu = run.ccu[rows]
    if len(frame) == 0:
        raise InputError(src, "archetypes" if tune.archetypes else "fleet",
                         "no app of the fleet is left to tune on (every app failed or is of another archetype)")
    for fname, k in (("plan", key), ("paid_plan", pkey)):
        missing = pd.to_numeric(frame[f"total.{k}"], errors="coerce").isna().to_numpy()
        if missing.any():
            arch = ", ".join(sorted(frame.loc[missing, "archetype"].astype(str).unique()))
            raise InputError(src, fname, f"the fleet did not price {k!r} for archetype {arch}: list it in that "
                             "archetype's plans, or leave the archetype out (archetypes:)")
    binds = frame[f"binds.{key}"].fillna(False).astype(bool).to_numpy() if f"binds.{key}" in frame else \
        np.zeros(len(frame), dtype=bool)

    var_index = {n: i for i, n in enumerate(tune.variables)}
    specs = []
    for lim in plan.limits:
        name = f"limits.{lim.metric}"
        v = var_index.get(name)
        qty = {w: _quantity(frame, plan, key, lim.metric, w, table, binds) for w in ("point", "low", "high")}
        if lim.max is not None:
            specs.append(LimitSpec(lim.metric, "max", None if v is not None else float(lim.max), v, qty))
        else:
            rel = lim.max_fraction_of
            base = {w: _base(frame, plan, key, rel.metric, w, table) for w in ("point", "low", "high")}
            specs.append(LimitSpec(lim.metric, "fraction", None if v is not None else float(rel.fraction), v, qty, base))

    named = {r.body.archetype for r in tune.requirements if r.kind == "free_share" and r.body.archetype != "all"}
    arch_list = sorted(set(frame["archetype"].astype(str)) | named | set(tune.archetypes or []))   # some may have no app
    arch_of = np.array([arch_list.index(a) for a in frame["archetype"].astype(str)], dtype=np.int64)
    c = tune.cost
    prices = {"egress": c.per_gb_egress, "storage": c.per_gb_month_stored, "connections": c.per_connection_hour,
              "servers": c.per_server_month}
    app_cost = (_col(frame, "outbound_gb", table) * float(c.per_gb_egress)
                + _col(frame, "stored_gb", table) * float(c.per_gb_month_stored)
                + _col(frame, "connection_hours", table) * float(c.per_connection_hour))
    cap = run.capacity()
    cps = c.connections_per_server or _positive(cap.get("connections_per_server"))
    mpss = c.messages_per_second_per_server or _positive(cap.get("messages_per_second_per_server"))
    needs_servers = c.per_server_month > 0 or any(r.kind == "servers" for r in tune.requirements)
    if cps is None and needs_servers:
        raise InputError(src, "cost.connections_per_server", "required: the fleet has no capacity section to take "
                         "it from")
    mps = _col(frame, "peak_messages_per_s", table) if mpss is not None else np.zeros(len(frame))
    return Problem(tune, plan, paid, run, key, pkey, list(tune.variables), specs, arch_of, arch_list,
                   app_cost, mps, _col(frame, f"total.{pkey}", table), ccu, cps, mpss, prices, frame, failed,
                   excluded)


def _positive(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def check_archetypes(tune: Tune, known: list[str]) -> None:
    """Archetypes named in ``archetypes:`` and in free_share requirements must be the fleet's."""
    if not known:
        return
    for i, a in enumerate(tune.archetypes or []):
        if a not in known:
            raise InputError(tune.source, f"archetypes.{i}", f"unknown archetype {a!r}; the fleet's: {', '.join(known)}")
    allowed = tune.archetypes or known
    for i, r in enumerate(tune.requirements):
        if r.kind == "free_share" and r.body.archetype != "all" and r.body.archetype not in allowed:
            what = "the tuned archetypes" if tune.archetypes else "the fleet's archetypes"
            raise InputError(tune.source, f"requirements.{i}.free_share.archetype",
                             f"unknown archetype {r.body.archetype!r}; {what}: {', '.join(allowed)}")
