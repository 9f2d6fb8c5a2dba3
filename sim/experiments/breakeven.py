"""``sim breakeven``: the value of one scenario key at which two plans cost the same, on simulated usage.

    sim breakeven SCENARIO --plan A --plan B --vary population.users [--range LO HI] [--points K]
                  [--replications R] [--seed N] [--set KEY=VALUE ...] [--refine N] [--confidence C]
                  [--format table|json] [--out DIR] [--workers N | --dask ADDRESS | --dask-local N] [--no-progress]

How the answer is computed:

1. **Grid.** ``K`` values of ``KEY`` evenly spaced over ``[LO, HI]`` (default ``[current / 4, current x 4]`` of the
   scenario's value after ``--set``, clipped to the key's documented bounds). An integer key (``population.users``)
   is rounded to whole values on the grid (duplicates dropped).
2. **Runs, with common random numbers.** Replication ``r`` runs with the seed :func:`sim.experiments.seeds.run_seed`
   ``(root, r)`` at *every* grid value (root: ``--seed``, else the scenario's seed), exactly as a ``sim sweep``
   replication does, so ``sim run SCENARIO --set KEY=x --seed SEED`` reproduces any run. Each run is priced under A
   and B by :func:`sim.comparison.run_plans`, with each plan's runtime limits (a plan whose limits act gets a run of
   its own, so a free plan's throttling counts); :func:`run_cost` is the cost of one run under one plan.
3. **Per replication crossing.** ``d_r(x) = cost_A - cost_B`` (exact Decimals). The crossing ``x_r`` is at the first
   sign change of ``d_r`` over the grid (exact zeros are skipped when looking for it): linear interpolation between
   the two grid values around it; where the plans cost exactly the same over a stretch of grid values between
   opposite signs, the middle of that stretch. ``--refine N`` (default 2) first narrows the bracket by ``N``
   bisection steps, each one more simulation per replication at the bracket's midpoint (same seed), keeping the half
   where the sign changes (an exact tie at a midpoint is the crossing); the interpolation is then made in the
   narrowed bracket. An integer key stops refining when the bracket is one unit wide.
4. **Statistics.** ``value`` is the mean of the ``x_r`` over the replications that cross, ``ci_low``/``ci_high`` its
   Student-t interval (:func:`sim.experiments.summary.t_interval`, ``--confidence``, default 0.95). Money stays
   :class:`~decimal.Decimal` through pricing, differences, sign tests and interpolation; it is converted to float
   only for the statistics (crossing values, mean cost curves and their t intervals).

No replication crossing in the range: the JSON says which plan is cheaper throughout (``cheaper_throughout``),
``value``/``ci_low``/``ci_high`` are null and the command exits 1. Bad input of any kind is one
:class:`~sim.errors.InputError` line, exit 2, before anything is simulated or written. ``--out DIR`` receives
``breakeven.json`` (the JSON document), ``breakeven.csv`` (one row per run: stage, value, replication, seed, both
costs, their difference) and ``breakeven.png`` (both mean cost curves with CI bands, the crossing and its CI), all
replaced whole (written beside DIR and moved into place).
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
import typing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from sim import yamlio
from sim.errors import InputError
from sim.experiments import seeds

DEFAULT_POINTS = 7
DEFAULT_REPLICATIONS = 5
DEFAULT_REFINE = 2
DEFAULT_CONFIDENCE = 0.95
MAX_POINTS = 1000
MAX_REPLICATIONS = 10_000
MAX_REFINE = 40
#: The file that marks a directory as an earlier ``sim breakeven`` result (``--out`` may replace it whole).
RESULT_MARKER = "breakeven.json"
CSV_NAME = "breakeven.csv"
PLOT_NAME = "breakeven.png"


# -- the cost of one run ----------------------------------------------------------------------------------------


def run_cost(scenario, plan_outcomes) -> Decimal:
    """The cost of one run under one plan: the sum of its bills.

    ``plan_outcomes``: one plan's :class:`sim.comparison.PlanOutcome` of a one-period run (or a sequence of them), or
    its :class:`sim.months.run.PlanMonths` of a run of ``simulation.months`` (every month's bill, under the plan in
    force that month). ``scenario`` is the run's scenario."""
    del scenario
    if hasattr(plan_outcomes, "bills"):
        return sum((b.total for b in plan_outcomes.bills), Decimal(0))
    outcomes = [plan_outcomes] if hasattr(plan_outcomes, "bill") else list(plan_outcomes)
    return sum((o.bill.total for o in outcomes), Decimal(0))


def run_point(task: dict[str, Any]) -> dict[str, Any]:
    """What a worker runs (module level, plain data in and out, so process pools and Dask can pickle it): simulate one
    scenario (one grid value x one replication) and price it under both plans. A failure is returned as ``error``."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {"error": None, "costs": None}
    try:
        if task["scenario"].simulation.months:
            _months_point(task, out)
        else:
            _period_point(task, out)
    except Exception as exc:  # noqa: BLE001 - recorded; the replication is left out, the others go on
        out["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    out["wall_s"] = time.perf_counter() - t0
    return out


def _period_point(task: dict[str, Any], out: dict[str, Any]) -> None:
    from sim.comparison import run_plans

    base, outcomes = run_plans(task["scenario"], task["plans"], seed=task["seed"], progress=False)
    if not base.ok:
        raise RuntimeError(base.error.splitlines()[0] if base.error else "simulation failed")
    if len(outcomes) != len(task["plans"]):
        raise RuntimeError("a plan's own run failed")
    out["costs"] = [run_cost(task["scenario"], o) for o in outcomes]
    out["own_run"] = [bool(o.enforced) for o in outcomes]
    out["violations"] = [bool(o.bill.violations) for o in outcomes]
    out["lost"] = [_lost(o) for o in outcomes]


def _months_point(task: dict[str, Any], out: dict[str, Any]) -> None:
    """A run of ``simulation.months``: each plan's months (sim/months/run.py), the cost their sum."""
    from sim.months.run import run_months

    mr = run_months(task["scenario"], task["plans"], seed=task["seed"], progress=False)
    if not mr.ok:
        raise RuntimeError((mr.error or "simulation failed").splitlines()[0])
    out["costs"] = [run_cost(task["scenario"], pm) for pm in mr.plans]
    out["own_run"] = [bool(pm.own_run) for pm in mr.plans]
    out["violations"] = [any(b.violations for b in pm.bills) for pm in mr.plans]
    out["lost"] = [int(sum(sum((e.get(k) or {}).values()) for e in pm.enforcement
                           for k in ("rejected", "discarded", "dropped"))) for pm in mr.plans]


def _lost(outcome) -> int:
    """Messages and connections a plan's runtime limits took away in its run (rejected, discarded, dropped,
    refused), plus its suspensions."""
    row = outcome.row()
    return int(sum(row[k] for k in ("rejected", "discarded", "dropped", "refused_connections", "suspensions")))


# -- inputs ------------------------------------------------------------------------------------------------------


@dataclass
class KeyInfo:
    """What the varied key is: integer or not, its value in the scenario, the bounds its schema gives."""

    key: str
    integer: bool
    current: float | int | None
    lower: float | None = None      # inclusive bounds (ge / le); gt / lt are left to validation
    upper: float | None = None


@dataclass
class Setup:
    """Everything ``sim breakeven`` was asked, checked: the scenario, the key, the grid, the plans, the seeds."""

    source: str
    raw: dict = field(repr=False)               # the scenario file after --set (not validated)
    name: str
    key: KeyInfo
    lo: float
    hi: float
    range_source: str                           # "given" | "default"
    grid: list[float | int]
    scenarios: list[Any] = field(repr=False)    # one validated Scenario per grid value
    plans: list[Any] = field(repr=False)        # [A, B] (Plan objects)
    labels: list[str]                           # how A and B are named in the outputs
    plan_args: list[str]
    replications: int
    root_seed: int
    confidence: float
    refine: int
    notes: list[str] = field(default_factory=list)

    @property
    def seeds(self) -> list[int]:
        return [seeds.run_seed(self.root_seed, r) for r in range(self.replications)]

    @property
    def currency(self) -> str:
        return self.plans[0].currency

    def scenario_at(self, x: float | int):
        """The validated scenario with ``KEY = x`` (an InputError names the key and the value)."""
        from sim.scenario import apply_sets, validate_scenario

        text = str(int(x)) if self.key.integer else repr(float(x))
        try:
            return validate_scenario(apply_sets(self.raw, [f"{self.key.key}={text}"], self.source), self.source)
        except InputError as exc:
            other = f"{exc.field}: " if exc.field and exc.field != self.key.key else ""
            raise InputError(self.source, "--range", f"{self.key.key}={text} (a value in the range) is refused: "
                             f"{other}{exc.problem}") from None


def prepare(scenario: str | Path, plans: Sequence[str], key: str, range_: Sequence[float] | None = None,
            points: int = DEFAULT_POINTS, replications: int = DEFAULT_REPLICATIONS, seed: int | None = None,
            sets: Sequence[str] = (), refine: int = DEFAULT_REFINE, confidence: float = DEFAULT_CONFIDENCE,
            max_memory: str | int | None = None) -> Setup:
    """Check every input and build the grid's scenarios; any problem is one :class:`InputError`, before any run."""
    from sim.memory import check_memory
    from sim.pricing.plan import load_plan, resolve_plan_path
    from sim.scenario import apply_sets, resolve_scenario_path, validate_scenario

    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise InputError(None, "--points", f"at least 2 grid points are needed, got {points}")
    if points > MAX_POINTS:
        raise InputError(None, "--points", f"at most {MAX_POINTS} grid points, got {points}")
    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 2:
        raise InputError(None, "--replications", f"at least 2 replications are needed for a confidence interval, "
                         f"got {replications}")
    if replications > MAX_REPLICATIONS:
        raise InputError(None, "--replications", f"at most {MAX_REPLICATIONS:,}, got {replications}")
    if isinstance(refine, bool) or not isinstance(refine, int) or not 0 <= refine <= MAX_REFINE:
        raise InputError(None, "--refine", f"a whole number of bisection steps from 0 to {MAX_REFINE}, got {refine}")
    if not (isinstance(confidence, int | float) and 0.5 < confidence < 1):
        raise InputError(None, "--confidence", f"a level between 0.5 and 1 (exclusive), got {confidence}")
    if seed is not None and seed < 0:
        raise InputError(None, "--seed", f"must not be negative, got {seed}")
    if range_ is not None:
        if len(range_) != 2:
            raise InputError(None, "--range", "give two numbers: LO HI")
        lo, hi = (float(v) for v in range_)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise InputError(None, "--range", f"must be finite numbers, got {range_[0]} {range_[1]}")
        if lo >= hi:
            raise InputError(None, "--range", f"LO ({lo:g}) must be below HI ({hi:g})")

    # the plans: exactly two, different, one currency
    if len(plans) != 2:
        raise InputError(None, "--plan", f"give exactly two plans (--plan A --plan B), got {len(plans)}")
    if plans[0] == plans[1] or _same_file(resolve_plan_path(plans[0]), resolve_plan_path(plans[1])):
        raise InputError(None, "--plan", f"{plans[1]!r} is given twice; compare two different plans")
    loaded = [load_plan(p) for p in plans]
    if loaded[0].currency != loaded[1].currency:
        raise InputError(None, "--plan", f"{loaded[0].name} bills in {loaded[0].currency} and {loaded[1].name} in "
                         f"{loaded[1].currency}: their costs cannot be compared")
    names = [p.name for p in loaded]
    labels = names if names[0] != names[1] else [str(p) for p in plans]

    # the scenario, after --set
    path = resolve_scenario_path(scenario)
    source = str(path)
    raw = yamlio.read_mapping(path, "scenario file", "a scenario must be a YAML mapping")
    raw = apply_sets(raw, list(sets), source)
    if seed is not None:
        raw["seed"] = seed
    base = validate_scenario(raw, source)
    info = key_info(raw, base, key)

    notes: list[str] = []
    if range_ is None:
        lo, hi = default_range(info)
        range_source = "default"
    else:
        range_source = "given"
    grid = make_grid(info, lo, hi, points)
    if len(grid) < points:
        notes.append(f"{key} is a whole number: the grid has {len(grid)} distinct values, not {points}")
    setup = Setup(source=source, raw=raw, name=base.name, key=info, lo=lo, hi=hi, range_source=range_source,
                  grid=grid, scenarios=[], plans=loaded, labels=labels, plan_args=[str(p) for p in plans],
                  replications=replications, root_seed=base.seed, confidence=float(confidence), refine=refine,
                  notes=notes)
    setup.scenarios = [setup.scenario_at(x) for x in grid]
    for sc in setup.scenarios:
        check_memory(sc, source, max_memory)
    if base.plans:
        notes.append(f"the scenario's own plans ({', '.join(base.plans)}) are not priced: --plan names the two plans")
    return setup


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:  # pragma: no cover - load_plan reports what is wrong with the path
        return False


def key_info(raw: dict, base, key: str) -> KeyInfo:
    """The varied key: it must be a scenario key (``--set`` rules) and take numbers (not booleans, not a list of
    values); integer when its schema is (``population.users``). InputError otherwise."""
    from sim.scenario import apply_sets, scenario_dict

    if key == "seed":
        raise InputError(None, "--vary", "seed is not varied: every replication has its own (give the root with --seed)")
    try:
        apply_sets(raw, [f"{key}=0"], "--vary")
    except InputError as exc:
        raise InputError(None, "--vary", f"{key}: not a scenario key: {exc.problem}") from None
    current = _lookup(scenario_dict(base), key)
    schema = _schema_field(key)
    if schema is not None:
        alts = yamlio.alternatives(schema.annotation)
        numeric = bool not in alts and any(a in (int, float) for a in alts)
        integer = numeric and int in alts and float not in alts
    else:  # inside a mapping or list: the value in the scenario says what it is
        numeric = isinstance(current, int | float) and not isinstance(current, bool)
        integer = isinstance(current, int) and not isinstance(current, bool)
    if not numeric:
        raise InputError(None, "--vary", f"{key} is not a numeric key (its value is {_shown(current)}); breakeven "
                         "varies a number, such as population.users")
    lower, upper = _bounds(schema) if schema is not None else (None, None)
    if isinstance(current, bool) or not isinstance(current, int | float):
        current = None
    return KeyInfo(key, integer, current, lower, upper)


def _shown(value: Any, most: int = 60) -> str:
    """A value as an error shows it: YAML's words for None and booleans, one short line."""
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 3] + "..."


def _lookup(doc: Any, key: str) -> Any:
    node = doc
    for part in key.split("."):
        if isinstance(node, dict):
            match = next((v for k, v in node.items() if str(k) == part), None)
            if match is None and part not in {str(k) for k in node}:
                return None
            node = match
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _schema_field(key: str):
    """The pydantic field a dotted key names, or None when the key reaches inside a mapping or list."""
    from pydantic import BaseModel

    from sim.scenario import Scenario

    model: Any = Scenario
    info = None
    for part in key.split("."):
        if model is None or part not in model.model_fields:
            return None
        info = model.model_fields[part]
        model = next((a for a in yamlio.alternatives(info.annotation)
                      if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return info


def _bounds(info) -> tuple[float | None, float | None]:
    """Inclusive bounds (``ge`` / ``le``) of a field, from its metadata and that of its Annotated alternatives."""
    found: list[Any] = list(info.metadata)

    def walk(ann: Any) -> None:
        origin = typing.get_origin(ann)
        args = typing.get_args(ann)
        if origin is typing.Annotated:
            for extra in args[1:]:
                found.extend(getattr(extra, "metadata", None) or [extra])
            walk(args[0])
        elif args:
            for a in args:
                walk(a)

    walk(info.annotation)
    lows = [float(m.ge) for m in found if getattr(m, "ge", None) is not None]
    highs = [float(m.le) for m in found if getattr(m, "le", None) is not None]
    return (max(lows) if lows else None), (min(highs) if highs else None)


def default_range(info: KeyInfo) -> tuple[float, float]:
    """``[current / 4, current x 4]`` of the scenario's value, clipped to the key's documented bounds."""
    cur = info.current
    if cur is None or cur == 0:
        raise InputError(None, "--range", f"{info.key} is {_shown(cur)} in the scenario, so there is no default range "
                         "(current / 4 to current x 4): give --range LO HI")
    lo, hi = sorted((cur / 4, cur * 4))
    if info.lower is not None:
        lo = max(lo, info.lower)
    if info.upper is not None:
        hi = min(hi, info.upper)
    if info.integer:
        lo, hi = math.ceil(lo), math.floor(hi)
    if lo >= hi:
        raise InputError(None, "--range", f"the default range of {info.key} (current {cur} / 4 to x 4, within its "
                         "bounds) is empty: give --range LO HI")
    return float(lo), float(hi)


def make_grid(info: KeyInfo, lo: float, hi: float, points: int) -> list[float | int]:
    """``points`` values evenly spaced over [lo, hi]; whole values for an integer key (duplicates dropped)."""
    values = np.linspace(lo, hi, points)
    if not info.integer:
        return [float(v) for v in values]
    grid = list(dict.fromkeys(int(round(v)) for v in values))
    if len(grid) < 2:
        raise InputError(None, "--range", f"{info.key} takes whole values: [{lo:g}, {hi:g}] holds fewer than 2 of them")
    return grid


# -- crossings ---------------------------------------------------------------------------------------------------


def _sign(d: Decimal) -> int:
    return (d > 0) - (d < 0)


@dataclass
class Crossing:
    """The first sign change of one replication's ``d(x) = cost_A - cost_B``."""

    lo: float | int          # the grid (or refined) values around it: d(lo) and d(hi) are non-zero, opposite signs
    d_lo: Decimal
    hi: float | int
    d_hi: Decimal
    tie: tuple[float | int, float | int] | None = None   # grid values between lo and hi where d == 0, if any
    exact: float | int | None = None                     # a bisection midpoint where d == 0 exactly
    frozen: bool = False                                 # not refined further (a bisection run failed)

    @property
    def value(self) -> float:
        """Linear interpolation in [lo, hi] (Decimal arithmetic), the middle of a tie stretch, or the exact tie."""
        if self.exact is not None:
            return float(self.exact)
        if self.tie is not None:
            return (float(self.tie[0]) + float(self.tie[1])) / 2
        return interpolate(self.lo, self.d_lo, self.hi, self.d_hi)

    @property
    def refinable(self) -> bool:
        return self.tie is None and self.exact is None and not self.frozen


def interpolate(x0: float | int, d0: Decimal, x1: float | int, d1: Decimal) -> float:
    """Where the straight line through (x0, d0) and (x1, d1) is zero; Decimal arithmetic, a float at the end."""
    x0d, x1d = Decimal(x0), Decimal(x1)
    return float(x0d + (x1d - x0d) * d0 / (d0 - d1))


def sign_changes(xs: Sequence[float | int], ds: Sequence[Decimal]) -> list[Crossing]:
    """Every sign change of ``ds`` over ``xs`` in order (exact zeros skipped: a stretch of them between opposite
    signs is a tie stretch, kept on the crossing)."""
    out: list[Crossing] = []
    last: int | None = None
    for j, d in enumerate(ds):
        if _sign(d) == 0:
            continue
        if last is not None and _sign(ds[last]) != _sign(d):
            tie = (xs[last + 1], xs[j - 1]) if j > last + 1 else None
            out.append(Crossing(xs[last], ds[last], xs[j], d, tie))
        last = j
    return out


def first_crossing(xs: Sequence[float | int], ds: Sequence[Decimal]) -> tuple[Crossing | None, int]:
    """The first sign change (or None) and how many sign changes there are."""
    found = sign_changes(xs, ds)
    return (found[0] if found else None), len(found)


def midpoint(c: Crossing, integer: bool) -> float | int | None:
    """The next bisection value strictly inside (lo, hi), or None when the bracket cannot be narrowed."""
    lo, hi = sorted((c.lo, c.hi))
    if integer:
        return None if hi - lo < 2 else int((int(lo) + int(hi)) // 2)
    m = (float(lo) + float(hi)) / 2
    return m if lo < m < hi else None


# -- running -----------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One simulation: a value of the key, a replication, both plans' costs (or the error)."""

    stage: str              # "grid" | "refine N"
    x: float | int
    replication: int
    seed: int
    costs: list[Decimal] | None
    own_run: list[bool] = field(default_factory=lambda: [False, False])
    violations: list[bool] = field(default_factory=lambda: [False, False])
    lost: list[int] = field(default_factory=lambda: [0, 0])
    error: str | None = None
    wall_s: float = 0.0

    @property
    def d(self) -> Decimal:
        assert self.costs is not None
        return self.costs[0] - self.costs[1]


@dataclass
class Result:
    setup: Setup
    runs: list[Run]
    crossings: dict[int, Crossing | None]       # replication -> its first crossing (None: none in the range)
    changes: dict[int, int]                     # replication -> number of sign changes on the grid
    refined: dict[int, int]                     # replication -> bisection runs made
    failed: dict[int, str]                      # replication -> first error
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)   # what happened while running (refinements left undone)

    def grid_runs(self) -> dict[tuple[int, int], Run]:
        index = {x: i for i, x in enumerate(self.setup.grid)}
        return {(index[r.x], r.replication): r for r in self.runs if r.stage == "grid"}

    def document(self) -> dict[str, Any]:
        return document(self)


def _bounded_map(executor: Executor, tasks: list[dict], bar, capacity: int) -> list[dict]:
    """Run ``tasks`` on ``executor`` with at most ``2 x capacity`` in flight; results in task order."""
    from sim.experiments.executors import as_finished

    results: list[dict | None] = [None] * len(tasks)
    for i, rec in as_finished(executor, run_point, enumerate(tasks), 2 * capacity,
                              lambda msg: {"error": msg, "costs": None}):
        results[i] = rec
        if bar is not None:
            bar.update(1)
    return [r if r is not None else {"error": "no result", "costs": None} for r in results]


def _as_run(stage: str, x, r: int, seed: int, rec: dict) -> Run:
    if rec.get("error") or rec.get("costs") is None:
        return Run(stage, x, r, seed, None, error=rec.get("error") or "no result", wall_s=rec.get("wall_s", 0.0))
    return Run(stage, x, r, seed, list(rec["costs"]), list(rec["own_run"]), list(rec["violations"]),
               list(rec["lost"]), None, rec.get("wall_s", 0.0))


def run_breakeven(setup: Setup, executor: Executor | None = None, workers: int | None = None,
                  progress: bool = True) -> Result:
    """Simulate the grid x replications, find each replication's first crossing, refine it by bisection.

    ``executor``: any :class:`concurrent.futures.Executor` (left running); default a local pool of ``workers``
    (:func:`sim.experiments.executors.local_pool`: the usable cores, one worker runs inline)."""
    from sim.experiments.executors import capacity, executor_or_pool

    t0 = time.perf_counter()
    R, seeds_ = setup.replications, setup.seeds
    total = len(setup.grid) * R + setup.refine * R
    bar = _bar(total, progress, setup)
    notes: list[str] = []
    try:
        with executor_or_pool(executor, workers) as ex:
            cap = capacity(ex)

            def task(sc, seed: int) -> dict:
                return {"scenario": sc.model_copy(update={"seed": seed}), "plans": setup.plans, "seed": seed}

            specs = [(i, r) for r in range(R) for i in range(len(setup.grid))]
            recs = _bounded_map(ex, [task(setup.scenarios[i], seeds_[r]) for i, r in specs], bar, cap)
            runs = [_as_run("grid", setup.grid[i], r, seeds_[r], rec) for (i, r), rec in zip(specs, recs, strict=True)]
            failed: dict[int, str] = {}
            for run in runs:
                if run.error and run.replication not in failed:
                    failed[run.replication] = f"{setup.key.key}={run.x}: {run.error}"
            crossings: dict[int, Crossing | None] = {}
            changes: dict[int, int] = {}
            for r in range(R):
                if r in failed:
                    continue
                mine = [run for run in runs if run.replication == r]
                crossings[r], changes[r] = first_crossing([run.x for run in mine], [run.d for run in mine])
            refined = {r: 0 for r in crossings}
            for step in range(1, setup.refine + 1):
                todo = []
                for r, c in crossings.items():
                    m = midpoint(c, setup.key.integer) if c is not None and c.refinable else None
                    if m is not None:
                        todo.append((r, m))
                if not todo:
                    break
                tasks = []
                for r, m in todo:
                    try:
                        tasks.append(task(setup.scenario_at(m), seeds_[r]))
                    except InputError as exc:  # a value inside the range the schema refuses: stop refining there
                        tasks.append(None)
                        crossings[r].frozen = True
                        notes.append(f"replication {r}: not refined at {setup.key.key}={m}: {exc.problem}")
                live = [(rm, t) for rm, t in zip(todo, tasks, strict=True) if t is not None]
                recs = _bounded_map(ex, [t for _, t in live], bar, cap)
                for ((r, m), _), rec in zip(live, recs, strict=True):
                    run = _as_run(f"refine {step}", m, r, seeds_[r], rec)
                    runs.append(run)
                    refined[r] += 1
                    c = crossings[r]
                    assert c is not None
                    if run.error:   # keep the bracket it has; the next steps leave it alone
                        c.frozen = True
                        notes.append(f"replication {r}: refinement at {setup.key.key}={m} failed: {run.error}")
                        continue
                    d = run.d
                    if _sign(d) == 0:
                        crossings[r] = Crossing(c.lo, c.d_lo, c.hi, c.d_hi, exact=m)
                    elif _sign(d) == _sign(c.d_lo):
                        crossings[r] = Crossing(m, d, c.hi, c.d_hi)
                    else:
                        crossings[r] = Crossing(c.lo, c.d_lo, m, d)
    finally:
        if bar is not None:
            bar.total = bar.n   # refinement may stop early (brackets one unit wide, exact ties)
            bar.close()
    return Result(setup, runs, crossings, changes, refined, failed, time.perf_counter() - t0, notes)


def _bar(total: int, progress: bool, setup: Setup):
    """A progress bar on stderr when it is a terminal (and progress is wanted)."""
    if not progress or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=f"breakeven {setup.key.key}", unit="run", file=sys.stderr, mininterval=0.5)


# -- statistics and the document -----------------------------------------------------------------------------------


def _finite(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _mean(values: Iterable[Decimal]) -> Decimal:
    vs = list(values)
    return sum(vs, Decimal(0)) / len(vs)


def _interval(values: Sequence[float], confidence: float) -> dict[str, Any]:
    from sim.experiments.summary import t_interval

    mean, std, lo, hi = t_interval(np.asarray(values, dtype=float), confidence)
    return {"n": len(values), "mean": _finite(mean), "std": _finite(std), "ci_low": _finite(lo), "ci_high": _finite(hi)}


def _plan_of(sign: int, labels: list[str]) -> str | None:
    """The plan that is cheaper where ``d = cost_A - cost_B`` has ``sign`` (None: they cost the same)."""
    return labels[0] if sign < 0 else labels[1] if sign > 0 else None


def _agreed(values: list[str | None]) -> str | None:
    distinct = set(values)
    return values[0] if len(distinct) == 1 else ("mixed" if values else None)


def curves(result: Result) -> dict[str, Any]:
    """Per grid value: each plan's mean cost with its t interval, and the paired difference A - B. The mean is taken
    in Decimal and converted to float; the intervals are float arithmetic (t_interval)."""
    setup = result.setup
    grid_runs = result.grid_runs()
    reps = [r for r in range(setup.replications) if r not in result.failed]
    out: dict[str, Any] = {"x": [float(x) if not setup.key.integer else int(x) for x in setup.grid], "plans": []}
    for p, label in enumerate(setup.labels):
        rows: dict[str, list] = {"mean": [], "ci_low": [], "ci_high": [], "std": [], "violations_share": [],
                                 "lost_share": [], "own_run_share": []}
        for i in range(len(setup.grid)):
            costs = [grid_runs[(i, r)].costs[p] for r in reps]
            stat = _interval([float(c) for c in costs], setup.confidence)
            rows["mean"].append(float(_mean(costs)) if costs else None)
            for k in ("ci_low", "ci_high", "std"):
                rows[k].append(stat[k])
            n = max(1, len(reps))
            rows["violations_share"].append(sum(grid_runs[(i, r)].violations[p] for r in reps) / n)
            rows["lost_share"].append(sum(grid_runs[(i, r)].lost[p] > 0 for r in reps) / n)
            rows["own_run_share"].append(sum(grid_runs[(i, r)].own_run[p] for r in reps) / n)
        out["plans"].append({"plan": label, "file": setup.plans[p].path, **rows})
    diff: dict[str, list] = {"mean": [], "ci_low": [], "ci_high": [], "share_a_cheaper": []}
    for i in range(len(setup.grid)):
        ds = [grid_runs[(i, r)].d for r in reps]
        stat = _interval([float(d) for d in ds], setup.confidence)
        diff["mean"].append(float(_mean(ds)) if ds else None)
        diff["ci_low"].append(stat["ci_low"])
        diff["ci_high"].append(stat["ci_high"])
        diff["share_a_cheaper"].append(sum(d < 0 for d in ds) / len(ds) if ds else None)
    out["difference"] = diff
    return out


def document(result: Result) -> dict[str, Any]:
    """breakeven.json and ``--format json``: the answer (``value``, ``ci_low``, ``ci_high``), how it was found and
    the data behind it. Money in the curves and crossings is float (statistics); breakeven.csv keeps exact costs."""
    from sim.experiments.runner import versions

    setup = result.setup
    labels = setup.labels
    key = setup.key
    seeds_ = setup.seeds
    per_rep = []
    below: list[str | None] = []
    above: list[str | None] = []
    values: list[float] = []
    for r in range(setup.replications):
        row: dict[str, Any] = {"replication": r, "seed": seeds_[r]}
        if r in result.failed:
            per_rep.append(row | {"crossing": None, "error": result.failed[r]})
            continue
        c = result.crossings[r]
        row["sign_changes"] = result.changes[r]
        row["refine_runs"] = result.refined.get(r, 0)
        if c is None:
            signs = {_sign(run.d) for run in result.runs if run.replication == r and run.stage == "grid"}
            row |= {"crossing": None, "bracket": None, "cheaper_below": None, "cheaper_above": None,
                    "cheaper_throughout": _throughout(signs, labels)}
        else:
            lo_side, hi_side = (c.d_lo, c.d_hi) if c.lo < c.hi else (c.d_hi, c.d_lo)
            row |= {"crossing": c.value, "bracket": sorted([_num(c.lo, key), _num(c.hi, key)]),
                    "cheaper_below": _plan_of(_sign(lo_side), labels), "cheaper_above": _plan_of(_sign(hi_side), labels)}
            if c.tie is not None:
                row["tie"] = [_num(c.tie[0], key), _num(c.tie[1], key)]
            values.append(c.value)
            below.append(row["cheaper_below"])
            above.append(row["cheaper_above"])
        per_rep.append(row)
    ok = [r for r in range(setup.replications) if r not in result.failed]
    crossed = [r for r in ok if result.crossings[r] is not None]
    stat = _interval(values, setup.confidence) if values else {"mean": None, "std": None, "ci_low": None,
                                                                 "ci_high": None, "n": 0}
    notes = list(setup.notes) + list(result.notes)
    throughout = None
    if not crossed and ok:
        signs = {_sign(run.d) for run in result.runs if run.stage == "grid" and run.error is None}
        throughout = _throughout(signs, labels)
    if crossed and len(crossed) < len(ok):
        notes.append(f"{len(ok) - len(crossed)} of {len(ok)} replications do not cross in the range: value and CI are "
                     "over the replications that do")
    if any(result.changes[r] > 1 for r in ok):
        notes.append("some replications change sign more than once on the grid: the first crossing is reported")
    if result.failed:
        notes.append(f"{_count(len(result.failed), 'replication')} failed and left out (see crossings[].error)")
    curve = curves(result)
    for p in curve["plans"]:
        hit = [x for x, s in zip(curve["x"], p["violations_share"], strict=True) if s]
        if hit:
            notes.append(f"{p['plan']}: its hard limits are exceeded from {key.key}={_fmt(hit[0])} on (in some "
                         "replications): a bill there is no price the app can stay on")
    return {
        "value": stat["mean"], "ci_low": stat["ci_low"], "ci_high": stat["ci_high"], "std": stat["std"],
        "confidence": setup.confidence,
        "key": key.key, "integer": key.integer, "current": key.current,
        "range": [_num(setup.lo, key), _num(setup.hi, key)], "range_source": setup.range_source,
        "grid": [_num(x, key) for x in setup.grid], "points": len(setup.grid),
        "plans": {"a": labels[0], "b": labels[1]},
        "plan_files": {"a": setup.plans[0].path, "b": setup.plans[1].path},
        "difference": "a - b", "currency": setup.currency,
        "replications": setup.replications,
        "replications_with_crossing": len(crossed), "replications_without_crossing": len(ok) - len(crossed),
        "replications_failed": len(result.failed),
        "cheaper_below": _agreed(below), "cheaper_above": _agreed(above), "cheaper_throughout": throughout,
        "crossings": per_rep,
        "curves": curve,
        "scenario": setup.source, "name": setup.name, "seed": setup.root_seed, "seeds": seeds_,
        "refine": setup.refine, "runs": len(result.runs),
        "method": ("per replication: first sign change of cost_a - cost_b over the grid (common random numbers: "
                   "seed sim.experiments.seeds.run_seed(seed, r) at every value), refined by bisection, linear "
                   "interpolation; value = mean over replications, Student-t interval; money in Decimal until the "
                   "statistics (float)"),
        "notes": notes, "wall_s": round(result.wall_s, 3), "versions": versions(),
    }


def _throughout(signs: set[int], labels: list[str]) -> str | None:
    """Which plan is cheaper at every grid value (equal costs allowed), None when they cost the same throughout,
    "mixed" when replications disagree."""
    nonzero = signs - {0}
    if not nonzero:
        return None
    if len(nonzero) > 1:
        return "mixed"
    return _plan_of(nonzero.pop(), labels)


def _num(x: float | int, key: KeyInfo) -> float | int:
    return int(x) if key.integer else float(x)


def _fmt(x: float | int | None) -> str:
    if x is None:
        return "-"
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) >= 1):
        return f"{x:,.0f}" if abs(x) < 1e15 else f"{x:.6g}"
    return f"{x:,.1f}" if abs(x) >= 1e4 else f"{x:.6g}"


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def _money(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def table_text(doc: dict[str, Any]) -> str:
    """``--format table``: what was run, the mean cost curves, each replication's crossing, the answer."""
    from tabulate import tabulate

    a, b = doc["plans"]["a"], doc["plans"]["b"]
    cur = doc["currency"]
    conf = f"{doc['confidence']:.0%}"
    lines = [f"breakeven of {a} (A) and {b} (B) on {doc['key']}: scenario {doc['name']} ({doc['scenario']})",
             f"grid: {doc['points']} values from {_fmt(doc['range'][0])} to {_fmt(doc['range'][1])} "
             f"({'given range' if doc['range_source'] == 'given' else 'default range: current / 4 to current x 4'}"
             f"{'' if doc['current'] is None else ', current ' + _fmt(doc['current'])}); {doc['replications']} "
             f"replications (seed {doc['seed']}, common random numbers); refine: {_count(doc['refine'], 'bisection step')}; "
             f"{doc['runs']} runs in {doc['wall_s']:.1f} s", ""]
    cv = doc["curves"]
    pa, pb = cv["plans"]
    rows = []
    def cell(p: dict, i: int, limits: bool = True) -> str:
        return (f"{_money(p['mean'][i])} [{_money(p['ci_low'][i])}, {_money(p['ci_high'][i])}]"
                + (" limits exceeded" if limits and p["violations_share"][i] else ""))

    d = cv["difference"]
    for i, x in enumerate(cv["x"]):
        share = d["share_a_cheaper"][i]
        rows.append([_fmt(x), cell(pa, i), cell(pb, i), cell(d, i, limits=False),
                     "-" if share is None else f"{share:.0%}"])
    lines.append(tabulate(rows, headers=[doc["key"], f"A {a} ({cur}, mean [{conf} CI])",
                                         f"B {b} ({cur}, mean [{conf} CI])", "A - B", "A cheaper in"],
                          tablefmt="github", disable_numparse=True))
    lines.append("")
    rep_rows = []
    for c in doc["crossings"]:
        if c.get("error"):
            rep_rows.append([c["replication"], c["seed"], "failed", "", "", c["error"]])
        elif c["crossing"] is None:
            rep_rows.append([c["replication"], c["seed"], "none", "", "",
                             f"{c['cheaper_throughout'] or 'equal'} cheaper throughout"
                             if c["cheaper_throughout"] != "mixed" else "mixed"])
        else:
            br = c["bracket"]
            rep_rows.append([c["replication"], c["seed"], _fmt(c["crossing"]), f"{_fmt(br[0])} to {_fmt(br[1])}",
                             c["refine_runs"], f"{c['cheaper_below']} below, {c['cheaper_above']} above"
                             + (f" ({c['sign_changes']} sign changes)" if c["sign_changes"] > 1 else "")])
    lines.append(tabulate(rep_rows, headers=["replication", "seed", "crossing", "bracket", "refine runs", ""],
                          tablefmt="github", disable_numparse=True))
    lines.append("")
    lines.append(result_line(doc))
    for note in doc["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def result_line(doc: dict[str, Any]) -> str:
    """The answer in one line."""
    ok = doc["replications"] - doc["replications_failed"]
    if doc["value"] is None:
        who = doc["cheaper_throughout"]
        what = (f"{who} is cheaper throughout" if who not in (None, "mixed") else
                "the plans cost the same throughout" if who is None else "which plan is cheaper differs by replication")
        return (f"no crossing: {doc['plans']['a']} and {doc['plans']['b']} do not cost the same anywhere in "
                f"{doc['key']} [{_fmt(doc['range'][0])}, {_fmt(doc['range'][1])}] ({ok} replications): {what}")
    ci = (f"{doc['confidence']:.0%} CI {_fmt(doc['ci_low'])} to {_fmt(doc['ci_high'])}"
          if doc["ci_low"] is not None else "no CI from one replication")
    return (f"breakeven: {doc['key']} = {_fmt(doc['value'])} ({ci}; {doc['replications_with_crossing']} of {ok} "
            f"replications cross); cheaper below: {doc['cheaper_below']}, above: {doc['cheaper_above']}")


# -- outputs -----------------------------------------------------------------------------------------------------


def check_breakeven_dir(out: str | Path) -> Path:
    """``--out`` must be absent, empty, or an earlier breakeven result (replaced whole); checked before any run."""
    from sim.run import check_out_dir

    def earlier(p: Path) -> bool:
        return (p / RESULT_MARKER).is_file() and all(e.is_file() for e in p.iterdir())

    return check_out_dir(out, earlier=earlier, what=f"an earlier breakeven result (no {RESULT_MARKER}); it would be "
                         "replaced whole")


def csv_rows(result: Result) -> list[dict[str, Any]]:
    """breakeven.csv: one row per run (grid value x replication, then the bisection runs), costs exact."""
    setup = result.setup
    order = {x: i for i, x in enumerate(setup.grid)}
    runs = sorted(result.runs, key=lambda r: (r.stage != "grid", r.replication, order.get(r.x, 0), r.stage))
    out = []
    for run in runs:
        ok = run.costs is not None
        out.append({"stage": run.stage, setup.key.key: run.x, "replication": run.replication, "seed": run.seed,
                    "plan_a": setup.labels[0], "cost_a": str(run.costs[0]) if ok else "",
                    "plan_b": setup.labels[1], "cost_b": str(run.costs[1]) if ok else "",
                    "difference": str(run.d) if ok else "",
                    "own_run_a": run.own_run[0], "own_run_b": run.own_run[1],
                    "violations_a": run.violations[0], "violations_b": run.violations[1],
                    "lost_a": run.lost[0], "lost_b": run.lost[1],
                    "error": run.error or "", "wall_s": round(run.wall_s, 3)})
    return out


def write_outputs(result: Result, doc: dict[str, Any], out: str | Path) -> Path:
    """breakeven.json, breakeven.csv and breakeven.png into a fresh directory beside ``out``, moved into place at the
    end: ``out`` holds the previous complete result or this one, never half of one."""
    import shutil
    import tempfile

    from sim.experiments.breakeven_plots import plot_breakeven
    from sim.run import _swap_into_place, _umask

    out = check_breakeven_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        tmp.chmod(0o777 & ~_umask())
        rows = csv_rows(result)
        with open(tmp / CSV_NAME, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["stage"])
            writer.writeheader()
            writer.writerows(rows)
        plot_breakeven(doc, tmp / PLOT_NAME)
        with open(tmp / RESULT_MARKER, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1, default=str)
            fh.write("\n")
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


# -- the command -------------------------------------------------------------------------------------------------


def breakeven_command(scenario: str, plans: Sequence[str], key: str, range_: Sequence[float] | None = None,
                      points: int | None = None, replications: int | None = None, seed: int | None = None,
                      sets: Sequence[str] = (), refine: int | None = None, confidence: float | None = None,
                      fmt: str = "table", out: str | None = None, workers: int | None = None, dask: str | None = None,
                      dask_local: int | None = None, progress: bool = True,
                      echo: Callable[[str], None] | None = None) -> int:
    """``sim breakeven``: check everything (InputError: exit 2, nothing written), run, print, write. Returns 0 when
    some replication crosses, 1 when none does (or every replication failed). ``None`` takes the default."""
    echo = echo or print
    setup = prepare(scenario, plans, key, range_, DEFAULT_POINTS if points is None else points,
                    DEFAULT_REPLICATIONS if replications is None else replications, seed, sets,
                    DEFAULT_REFINE if refine is None else refine,
                    DEFAULT_CONFIDENCE if confidence is None else confidence)
    if out:
        check_breakeven_dir(out)
    if dask or dask_local:
        from sim.experiments.executors import dask_executor

        with dask_executor(dask, dask_local) as ex:
            result = run_breakeven(setup, executor=ex, progress=progress)
    else:
        result = run_breakeven(setup, workers=workers, progress=progress)
    if len(result.failed) == setup.replications:
        first = next(iter(result.failed.values()))
        print(f"simulation failed: every replication failed; first: {first}", file=sys.stderr)
        return 1
    doc = document(result)
    if fmt == "json":
        json.dump(doc, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        echo(table_text(doc))
    if out:
        write_outputs(result, doc, out)
        print(f"wrote {out}", file=sys.stderr if fmt == "json" else sys.stdout)
    return 0 if doc["value"] is not None else 1
