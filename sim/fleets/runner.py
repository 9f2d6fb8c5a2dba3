"""Run a fleet: every app simulated and priced on any executor, its load added on the common clock.

Why the coordinator looks the way it does:

* **Bounded apps in flight.** Tasks are built and submitted a few per worker at a time (never 1,000 futures
  at once), and each finished app's per-minute series are added into the load accumulators at once and
  dropped, so the coordinator holds one row and one row of 15-minute CCU maxima per app, never the apps'
  series (a 30-day app's three series are 0.5 MB).
* **The app's class** (free or paying) is known once its bills are in: it is free when ``free.<free plan>``
  holds (no hard limit of its archetype's free plan exceeded); its load goes to that class.
* **Determinism.** An app depends on its task only (scenario, plans, seed, all drawn from the fleet seed and the
  app's id); rows are sorted by app id and the load is summed exactly (:mod:`sim.fleets.load`), so every output
  but ``wall_s`` is identical whichever executor ran the apps.
* **Outputs whole.** ``--out`` is checked before anything runs; the files are written into a fresh directory
  beside it and moved into place at the end (as ``sim run``), so a failure or Ctrl-C leaves the previous complete
  result or nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.fleets.fleet_file import BIN_MINUTES, Fleet, is_sampled, param_text

#: Files that mark a directory as an earlier `sim fleet` result (so --out may replace it).
FLEET_MARKER = "fleet.json"
#: Meter columns of the apps table, in order (the contract the tuner reads).
METERS = ("mau", "mau_ci_low", "mau_ci_high", "peak_ccu", "peak_ccu_ci_low", "peak_ccu_ci_high", "outbound_gb",
          "stored_gb", "stored_gb_max", "turn_gb", "messages", "messages_sent", "connections", "connection_hours",
          "peak_messages_per_s", "egress_peak_bytes_per_s")


@dataclass
class FleetResult:
    """What a fleet run produced: the apps table, the load per minute, the capacity, the per-app CCU bins."""

    fleet: Fleet
    apps: Any                      # pandas DataFrame, one row per app, sorted by app id
    load: Any                      # pandas DataFrame, one row per minute of the common clock
    capacity: dict
    app_ccu: np.ndarray            # float32, apps x 15-minute bins: each app's maximum CCU in the bin
    info: dict = field(default_factory=dict)

    def write(self, out: str | Path) -> Path:
        """Every output file into ``out``, replaced whole (checked again: absent, empty or an earlier fleet)."""
        from sim.run import _swap_into_place

        out = check_fleet_dir(out)
        tmp = _staging(out)
        try:
            self.write_files(tmp)
            _swap_into_place(tmp, out)
        except BaseException:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out

    def write_files(self, d: Path) -> None:
        import json

        from sim.fleets import plots

        d.mkdir(parents=True, exist_ok=True)
        self.apps.to_parquet(d / "apps.parquet", index=False)
        self.apps.to_csv(d / "apps.csv", index=False)
        self.load.to_csv(d / "load.csv", index=False)
        np.save(d / "app_ccu.npy", self.app_ccu)
        for name, data in (("capacity.json", self.capacity), ("fleet.json", self.info)):
            with open(d / name, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, default=str)
                fh.write("\n")
        plots.bills_cdf(self.apps, self.fleet, d / "bills_cdf.png")
        plots.free_limits(self.apps, self.fleet, d / "free_limits.png")
        plots.load_day(self.load, d / "load_day.png", title=self.fleet.name)


def check_fleet_dir(out: str | Path) -> Path:
    """``--out`` must be absent, empty, or an earlier fleet result (replaced whole); checked before anything runs."""
    from sim.run import check_out_dir

    def earlier(p: Path) -> bool:
        return (p / FLEET_MARKER).is_file() and all(e.is_file() for e in p.iterdir())

    return check_out_dir(out, earlier=earlier, what=f"an earlier fleet result (no {FLEET_MARKER}); it would be "
                         "replaced whole")


def _staging(out: Path) -> Path:
    import os
    import tempfile

    from sim.errors import InputError

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as exc:
        raise InputError(None, "--out", f"{out}: cannot write in {out.parent}: {exc.strerror}") from None
    mask = os.umask(0o022)
    os.umask(mask)
    tmp.chmod(0o777 & ~mask)
    return tmp


class FleetRun:
    """One execution of a fleet: builds tasks lazily, records rows, accumulates load."""

    def __init__(self, fleet: Fleet) -> None:
        from sim.fleets.load import LoadAccumulator

        self.fleet = fleet
        self.acc = LoadAccumulator(fleet.minutes)
        self.bins = np.zeros((fleet.apps, -(-fleet.minutes // BIN_MINUTES)), dtype=np.float32)
        self.rows: dict[int, dict[str, Any]] = {}

    def identity(self, spec, sc) -> dict[str, Any]:
        mob = getattr(sc.population, "sample", None)
        dev = getattr(sc.iot, "sample", None) if sc.iot is not None else None
        users = sc.population.users
        devices = sc.iot.devices if sc.iot is not None else 0
        return {"app": spec.app, "archetype": spec.archetype, "seed": spec.seed, "sampled": is_sampled(sc),
                "users": users, "sample_users": min(users, mob) if mob is not None else users,
                "devices": devices, "sample_devices": min(devices, dev) if dev is not None else devices,
                **{f"param.{k}": param_text(v) for k, v in spec.params.items()}}

    def tasks(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(task, identity) of every app, in app order, built when asked for (scenarios are not all held)."""
        for i in range(self.fleet.apps):
            spec = self.fleet.app(i)
            sc = self.fleet.scenario(spec)
            arch = self.fleet.archetypes[spec.archetype]
            yield ({"app": i, "scenario": sc, "plans": arch.plans, "seed": spec.seed},
                   self.identity(spec, sc) | {"free_plan": arch.free_plan})

    def record(self, ident: dict[str, Any], rec: dict[str, Any]) -> None:
        i = ident["app"]
        row = dict(ident)
        row |= rec.get("row") or {}
        free_plan = ident["free_plan"]
        error = rec.get("error")
        row["free"] = None if error else bool(free_plan and row.get(f"free.{free_plan}"))
        row["error"] = error
        row["wall_s"] = float(rec.get("wall_s", 0.0))
        if not error and rec.get("series") is not None:
            self.acc.add(rec["series"], "free" if row["free"] else "paying")
            self.bins[i] = rec["ccu_bins"]
        self.rows[i] = row

    def run(self, executor: Executor, progress: bool = True) -> None:
        from sim.experiments.executors import as_finished
        from sim.experiments.executors import capacity as cap_of
        from sim.fleets.worker import run_app

        bar = _bar(self.fleet.apps, progress, self.fleet.name)
        idents: dict[int, dict[str, Any]] = {}

        def items():
            for task, ident in self.tasks():
                idents[ident["app"]] = ident
                yield ident["app"], task
        try:
            for app, rec in as_finished(executor, run_app, items(), 2 * cap_of(executor),
                                        lambda msg: {"error": msg, "wall_s": 0.0}):
                self.record(idents.pop(app), rec)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()

    def frame(self):
        """The apps table: identity, drawn parameters, meters, each plan's columns, class, error, wall time."""
        import pandas as pd

        rows = [self.rows[i] for i in sorted(self.rows)]
        params: list[str] = []
        for a in self.fleet.archetypes.values():
            params += [f"param.{k}" for k in a.doc.params if f"param.{k}" not in params]
        plan_cols: list[str] = []
        for p in self.fleet.plans:
            P = p.name
            plan_cols += [f"total.{P}", f"total_exact.{P}", f"binds.{P}", f"violations.{P}", f"free.{P}"]
            for lim in p.limits:
                for m in [lim.metric] + ([lim.max_fraction_of.metric] if lim.max_fraction_of else []):
                    if f"q.{P}.{m}" not in plan_cols:
                        plan_cols.append(f"q.{P}.{m}")
            for lim in p.limits:
                if f"use.{P}.{lim.metric}" not in plan_cols:
                    plan_cols.append(f"use.{P}.{lim.metric}")
        cols = ["app", "archetype", "seed", "sampled", "users", "sample_users", "devices", "sample_devices",
                *params, *METERS, *plan_cols, "free_plan", "free", "error", "wall_s"]
        df = pd.DataFrame(rows, columns=cols)
        for c in cols:
            if c.startswith(("total.", "use.", "q.")) or c in METERS or c == "wall_s":
                df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
            elif c.startswith(("binds.", "free.")) or c in ("free",):
                df[c] = df[c].astype(object).where(df[c].notna(), None)
            elif c.startswith("violations."):
                df[c] = df[c].astype("Int64")
            elif c.startswith("param."):
                df[c] = _param_column(df[c])
            elif c in ("error", "total_exact", "free_plan") or c.startswith("total_exact."):
                df[c] = df[c].astype(object).where(df[c].notna(), None)
        return df

    def info(self, wall_s: float, executor: str, apps) -> dict[str, Any]:
        from sim.experiments.runner import versions

        f = self.fleet
        ok = apps["error"].isna()
        return {
            "fleet": f.document(), "seed": f.seed, "apps": f.apps, "versions": versions(), "wall_s": round(wall_s, 3),
            "executor": executor,
            "clock": {"start": f.start.isoformat(), "days": f.days, "minutes": f.minutes},
            "archetypes": {a.name: {"scenario": a.scenario_path, "plans": [p.name for p in a.plans],
                                    "free_plan": a.free_plan, "apps": int((apps["archetype"] == a.name).sum())}
                           for a in f.archetypes.values()},
            "plans": [p.name for p in f.plans], "free_plan": f.free_plan,
            "apps_free": int((apps["free"] == True).sum()),  # noqa: E712 - object column of True/False/None
            "apps_paying": int((apps["free"] == False).sum()),  # noqa: E712
            "apps_failed": int((~ok).sum()), "apps_sampled": int(apps["sampled"].sum()),
            "users": int(apps["users"].sum()), "simulated_users": int(apps["sample_users"].sum()),
            "devices": int(apps["devices"].sum()), "simulated_devices": int(apps["sample_devices"].sum()),
            "mau": float(apps.loc[ok, "mau"].sum()),
            "expected": f.expected(),
        }


def _param_column(col):
    """Numbers as float (NaN where an archetype does not draw the key), anything else as object."""
    import pandas as pd

    vals = [v for v in col if v is not None and not (isinstance(v, float) and np.isnan(v))]
    if vals and all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
        return pd.to_numeric(col, errors="coerce").astype(float)
    return col.astype(object).where(col.notna(), None)


def _bar(total: int, progress: bool, name: str):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"fleet {name}", unit="app", file=sys.stderr, mininterval=0.5)


def run_fleet(fleet: Fleet, executor: Executor | None = None, workers: int | None = None, progress: bool = True,
              out: str | Path | None = None) -> FleetResult:
    """Run ``fleet`` (from :func:`sim.fleets.load_fleet`) and return a :class:`FleetResult`.

    ``executor``: any :class:`concurrent.futures.Executor` (left running); default a local process pool of
    ``workers`` (:func:`sim.experiments.executors.local_pool`), shut down at the end. ``out``: a directory for
    the files (see the README's "Fleets"), checked first and replaced whole at the end.
    """
    from sim.experiments.executors import executor_or_pool
    from sim.fleets.load import capacity

    if out is not None:
        out = check_fleet_dir(out)
    run = FleetRun(fleet)
    t0 = time.perf_counter()
    with executor_or_pool(executor, workers) as ex:
        run.run(ex, progress=progress)
    apps = run.frame()
    load = run.acc.frame(fleet.start)
    cap = capacity(load, apps, fleet.doc.capacity, fleet.free_plan)
    info = run.info(time.perf_counter() - t0, type(ex).__name__, apps)
    result = FleetResult(fleet, apps, load, cap, run.bins, info)
    if out is not None:
        result.write(out)
    return result
