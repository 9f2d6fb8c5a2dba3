"""`sim tune`: free-tier limits tuned against a simulated fleet of apps.

A tune file (:mod:`sim.fleets.tune_file`) names a fleet (run here, or an earlier `sim fleet --out`), the free
plan, decision variables (its limits), the platform's cost of serving free apps, an objective and
requirements. This module is the command: it validates everything before anything runs (:func:`prepare`),
runs or reads the fleet and its sensitivity variants, tunes each and writes DIR whole (:func:`run_tune`).

The tuning itself, each part in the module named after it (every public name is re-exported here):

* :mod:`sim.fleets.tune_problem`: the fleet run and the problem built from it; why a limit change needs no
  re-simulation.
* :mod:`sim.fleets.tune_eval`: which apps are free under a candidate, the free tier's cost, the requirements
  and their confidence intervals (Clopper-Pearson, bootstrap), the pessimistic and optimistic share.
* :mod:`sim.fleets.tune_search`: grid and Optuna search, the objective's order, the Pareto frontier, the
  chosen point.
* :mod:`sim.fleets.tune_report`: the chosen point's report in exact money, the recommendation.
* :mod:`sim.fleets.tune_plots`: ``frontier.png``.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim.errors import InputError
from sim.fleets.tune_eval import (
    BOOT_CHUNK,
    CHUNK,
    Evaluation,
    SetCache,
    clopper_pearson,
    evaluate,
    free_matrix,
    free_packed,
    unique_rows,
)
from sim.fleets.tune_file import Tune, grid_values, load_tune
from sim.fleets.tune_problem import (
    RAW_METERS,
    FleetRun,
    LimitSpec,
    Problem,
    build_problem,
    check_archetypes,
    plan_key,
    read_fleet_run,
)
from sim.fleets.tune_report import CENTS, point_report, recommendation
from sim.fleets.tune_search import (
    Solution,
    grid,
    objective_value,
    optuna_search,
    order,
    pareto,
    search,
    solve,
)
from sim.pricing.plan import Plan

#: Marks a directory as an earlier `sim tune` result (so ``--out`` may replace it).
RESULT_MARKER = "recommendation.json"


# -- the command --------------------------------------------------------------------------------------------

@dataclass
class Prepared:
    tune: Tune
    plan: Plan
    paid: Plan
    fleet: Any = None                       # a loaded fleet (fleet: mode)
    run: FleetRun | None = None             # fleet_run: mode
    variants: list[tuple[str, Any]] = field(default_factory=list)   # (name, loaded fleet or FleetRun)


def _fleet_doc(fleet: Any) -> dict:
    for attr in ("document", "model_dump"):
        fn = getattr(fleet, attr, None)
        if callable(fn):
            try:
                doc = fn(mode="json") if attr == "model_dump" else fn()
            except TypeError:
                doc = fn()
            if isinstance(doc, dict):
                return doc
    return {}


def _check_fleet(tune: Tune, plan: Plan, paid: Plan, fleet: Any, field_: str) -> None:
    """Before a fleet runs: the tuned and paid plans are among its plans, the archetypes are its own."""
    doc = _fleet_doc(fleet)
    plans = getattr(fleet, "plans", None)
    if plans is None:
        plans = doc.get("plans")
    if plans:
        names = [str(getattr(x, "name", x)) for x in plans]
        for fname, written, pl in (("plan", tune.plan, plan), ("paid_plan", tune.paid_plan, paid)):
            if plan_key(names, written, pl) is None:
                raise InputError(tune.source, fname, f"the fleet ({field_}) does not price {written!r}; add it to "
                                 f"its plans: (now {', '.join(names)})")
    arch = doc.get("archetypes")
    if isinstance(arch, dict):
        check_archetypes(tune, list(arch))


def prepare(path: str | Path, sets: list[str] | None = None) -> Prepared:
    """Everything `sim tune` reads, validated before anything runs or is written."""
    tune, plan, paid = load_tune(path, sets)
    prep = Prepared(tune, plan, paid)
    base = Path(tune.source).parent
    if tune.fleet_path is not None:
        from sim.fleets.fleet_file import load_fleet

        prep.fleet = load_fleet(tune.fleet_path, list(tune.fleet_set))
        _check_fleet(tune, plan, paid, prep.fleet, "fleet")
    else:
        prep.run = read_fleet_run(tune.run_dir)
        build_problem(tune, plan, paid, prep.run)     # checks plans, archetypes, columns
    for i, v in enumerate(tune.sensitivity):
        if v.fleet_run is not None:
            from sim.fleets.tune_file import fleet_run_dir

            run = read_fleet_run(fleet_run_dir(v.fleet_run, base, tune.source, f"sensitivity.{i}.fleet_run"))
            build_problem(tune, plan, paid, run)
            prep.variants.append((v.name, run))
        else:
            from sim.fleets.fleet_file import load_fleet

            try:
                fleet = load_fleet(tune.fleet_path, list(tune.fleet_set) + list(v.set))
            except InputError as exc:
                raise InputError(tune.source, f"sensitivity.{i}.set", str(exc)) from None
            _check_fleet(tune, plan, paid, fleet, f"sensitivity.{i}")
            prep.variants.append((v.name, fleet))
    return prep


def _run_fleet(fleet: Any, out: Path, executor, workers, progress: bool) -> FleetRun:
    from sim.fleets.runner import run_fleet

    run_fleet(fleet, executor=executor, workers=workers, progress=progress, out=out)
    return read_fleet_run(out)


def tune_fleet_run(tune: Tune, plan: Plan, paid: Plan, run: FleetRun, progress: bool = False) -> Solution:
    return solve(build_problem(tune, plan, paid, run), progress)


def versions() -> dict[str, str]:
    from sim.experiments.runner import versions as base

    out = base()
    try:
        from importlib.metadata import version

        out["optuna"] = version("optuna")
    except Exception:  # noqa: BLE001 (not installed)
        pass
    return out


def check_tune_dir(out: str | Path) -> Path:
    from sim.run import check_out_dir

    return check_out_dir(out, earlier=lambda d: (d / RESULT_MARKER).is_file(),
                         what=f"an earlier `sim tune` result (no {RESULT_MARKER}); it would be replaced whole")


def write_result(tmp: Path, sol: Solution, rec: dict) -> None:
    from sim.fleets.tune_plots import plot_frontier

    sol.frame().to_csv(tmp / "frontier.csv", index=False)
    plot_frontier(sol, tmp / "frontier.png")
    with open(tmp / RESULT_MARKER, "w", encoding="utf-8") as fh:
        json.dump(rec, fh, indent=1, default=str)
        fh.write("\n")


def run_tune(prep: Prepared, out: str | Path, executor=None, workers: int | None = None,
             progress: bool = True, log: Callable[[str], None] | None = None) -> dict:
    """Run (or read) the fleet and its variants, tune, and write DIR whole; returns the recommendation."""
    from sim.run import _swap_into_place, _umask

    tune = prep.tune
    t0 = time.perf_counter()
    out = check_tune_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        tmp.chmod(0o777 & ~_umask())
        if prep.run is not None:
            run = prep.run
        else:
            run = _run_fleet(prep.fleet, tmp / "fleet", executor, workers, progress)
        sol = tune_fleet_run(tune, prep.plan, prep.paid, run, progress)
        rec = recommendation(sol)
        sens = []
        rows = [_sens_row("base", rec)]
        for name, variant in prep.variants:
            vrun = variant if isinstance(variant, FleetRun) else _run_fleet(
                variant, tmp / "sensitivity" / name / "fleet", executor, workers, progress)
            vsol = tune_fleet_run(tune, prep.plan, prep.paid, vrun, progress)
            vrec = recommendation(vsol)
            spec = next(v for v in tune.sensitivity if v.name == name)
            sens.append({"name": name, "set": list(spec.set), "fleet_run": str(vrun.dir) if spec.fleet_run else None,
                         "feasible": vrec["feasible"], "limits": vrec["limits"], "objective": vrec["objective"],
                         "closest": (vrec["closest"] or {}).get("limits") if vrec["closest"] else None,
                         "failing": vrec.get("failing"),
                         "share": (vrec["free_tier"] or {}).get("share") if vrec["free_tier"] else None,
                         "apps": vsol.problem.n})
            rows.append(_sens_row(name, vrec))
        rec["sensitivity"] = sens
        rec["fleet"] = {"path": tune.fleet_path, "run_dir": str(run.dir) if prep.run is not None else "fleet",
                        "apps": int(len(run.apps)), "apps_tuned": sol.problem.n, "apps_failed": sol.problem.apps_failed,
                        "apps_other_archetypes": sol.problem.apps_excluded, "seed": run.seed(),
                        "plan_column": sol.problem.plan_key, "paid_plan_column": sol.problem.paid_key}
        rec["tune"] = tune.document()
        rec["versions"] = versions()
        rec["wall_s"] = round(time.perf_counter() - t0, 3)
        write_result(tmp, sol, rec)
        if sens:
            pd.DataFrame(rows).to_csv(tmp / "sensitivity.csv", index=False)
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return rec


def _sens_row(name: str, rec: dict) -> dict:
    row: dict[str, Any] = {"variant": name, "feasible": rec["feasible"]}
    limits = rec["limits"] or (rec.get("closest") or {}).get("limits") or {}
    for k, v in limits.items():
        row[k] = v
    row["objective"] = rec["objective"]["value"]
    ft = rec.get("free_tier") or {}
    row["free_share"] = ft.get("share")
    row["free_cost"] = (ft.get("cost") or {}).get("total")
    row["servers"] = ft.get("servers")
    return row


def tune_command(path: str, out: str, sets: list[str] | None = None, workers: int | None = None,
                 dask: str | None = None, dask_local: int | None = None, progress: bool = True) -> int:
    """`sim tune`: validate everything and --out first, run, write; exit 1 (one line) when nothing is feasible."""
    prep = prepare(path, sets)
    check_tune_dir(out)
    if dask or dask_local:
        from sim.experiments.executors import dask_executor

        with dask_executor(dask, dask_local) as ex:
            rec = run_tune(prep, out, executor=ex, progress=progress)
    else:
        rec = run_tune(prep, out, workers=workers, progress=progress)
    s = rec["search"]
    if not rec["feasible"]:
        lim = ", ".join(f"{k}={v}" for k, v in rec["closest"]["limits"].items())
        print(f"sim tune: no candidate of {s['candidates']} meets every requirement; closest ({lim}) fails "
              f"{', '.join(rec['failing'])}; wrote {out}", file=sys.stderr)
        return 1
    lim = ", ".join(f"{k}={v}" for k, v in rec["limits"].items())
    ft = rec["free_tier"]
    print(f"{rec['objective']['name']}: {lim}; {ft['share']:.1%} of {ft['apps']} apps free, free tier costs "
          f"{ft['currency']} {ft['cost']['total']} with {ft['servers']} server(s); {s['candidates']} candidates "
          f"({s['feasible']} feasible, {s['method']}) in {s['seconds']:.2f} s; wrote {out}")
    return 0


__all__ = [
    # the command (this module)
    "RESULT_MARKER", "Prepared", "check_tune_dir", "prepare", "run_tune", "tune_command", "tune_fleet_run",
    "versions", "write_result",
    # the tune file
    "Tune", "grid_values", "load_tune",
    # sim.fleets.tune_problem
    "RAW_METERS", "FleetRun", "LimitSpec", "Problem", "build_problem", "check_archetypes", "plan_key",
    "read_fleet_run",
    # sim.fleets.tune_eval
    "BOOT_CHUNK", "CHUNK", "Evaluation", "SetCache", "clopper_pearson", "evaluate", "free_matrix", "free_packed",
    "unique_rows",
    # sim.fleets.tune_search
    "Solution", "grid", "objective_value", "optuna_search", "order", "pareto", "search", "solve",
    # sim.fleets.tune_report
    "CENTS", "point_report", "recommendation",
]
