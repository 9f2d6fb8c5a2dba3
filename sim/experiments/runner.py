"""Run a study: every design point x replication, priced under every plan, on any executor.

Why the coordinator looks the way it does:

* **Bounded runs in flight.** Tasks are submitted a few per worker at a time (never 10,000 futures at
  once), so the coordinator's memory stays flat, a killed sweep loses at most the runs in flight, and a
  sequential design can decide after each replication.
* **Resume.** A run whose key (:func:`sim.experiments.store.run_key`) is in ``DIR/runs.jsonl`` is reused,
  not computed; every finished run is appended there at once; the tables are rewritten (atomically) every
  few seconds and at the end.
* **Sequential replications.** With ``replications: {target: ...}`` each point starts with ``min``
  replications; after replication ``n`` of a point is in, the point gets replication ``n + 1`` only if the
  ``target.metric``'s CI half-width exceeds ``relative_half_width x |mean|`` for some plan and ``n < max``.
  The decision uses replications ``0..n-1`` only, so it is the same whichever executor or order ran them.
* **Determinism.** A run depends on its task only (scenario, plans, seed); rows are sorted by point,
  replication and plan order, so the tables are identical row for row whichever executor ran them
  (``wall_s`` aside).
"""

from __future__ import annotations

import sys
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sim
from sim.experiments import seeds
from sim.experiments.design import Point, load_plans, points
from sim.experiments.store import RunStore, run_key
from sim.experiments.study import Sequential, Study
from sim.scenario import scenario_dict

#: Seconds between rewrites of runs.parquet / runs.csv while a sweep runs.
TABLE_EVERY_S = 5.0


@dataclass(frozen=True)
class Spec:
    point: int          # index into the design
    replication: int
    seed: int
    key: str


def versions() -> dict[str, str]:
    import numpy
    import pandas
    import pydantic
    import scipy
    import simpy

    out = {"sim": sim.__version__, "python": sys.version.split()[0], "numpy": numpy.__version__,
           "scipy": scipy.__version__, "simpy": simpy.__version__, "pandas": pandas.__version__,
           "pydantic": pydantic.__version__}
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("SALib", "pyarrow"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:  # pragma: no cover
            pass
    return out


class Sweep:
    """One execution of a study (optionally into ``out``): schedules, records, writes."""

    def __init__(self, study: Study, out: str | Path | None = None) -> None:
        self.study = study
        self.points: list[Point] = points(study)
        self.plans = load_plans(study, self.points[0].scenario)
        self.plan_docs = [p.model_dump(mode="json") for p in self.plans]
        self.root_seed = study.seed if study.seed is not None else self.points[0].scenario.seed
        self.out = Path(out) if out is not None else None
        self.store = RunStore(self.out) if self.out is not None else None
        self.done = self.store.load() if self.store is not None else {}
        self.records: dict[tuple[int, int], dict[str, Any]] = {}
        self.computed = self.reused = self.failed = 0
        self.planned: dict[int, int] = {}    # replications scheduled per point
        self.finished: dict[int, int] = {}   # replications recorded per point
        self._docs: dict[int, dict] = {}
        self._last_table = 0.0

    # -- what a run is -----------------------------------------------------------------------------------
    def spec(self, i: int, r: int) -> Spec:
        self.planned[i] = max(self.planned.get(i, 0), r + 1)
        seed = seeds.run_seed(self.root_seed, r)
        if i not in self._docs:
            self._docs[i] = scenario_dict(self.points[i].scenario)
        doc = dict(self._docs[i], seed=seed)
        return Spec(i, r, seed, run_key(doc, self.plan_docs, r, seed, sim.__version__, self.study.keep_series))

    def task(self, s: Spec) -> dict[str, Any]:
        sc = self.points[s.point].scenario.model_copy(update={"seed": s.seed})
        return {"key": s.key, "scenario": sc, "plans": self.plans, "seed": s.seed,
                "keep_series": self.study.keep_series}

    # -- scheduling ----------------------------------------------------------------------------------------
    def initial(self) -> list[Spec]:
        reps = self.study.replications
        first = reps.min if isinstance(reps, Sequential) else reps
        return [self.spec(i, r) for i in range(len(self.points)) for r in range(first)]

    def next_for(self, i: int) -> Spec | None:
        """Sequential designs: the next replication of point ``i`` if its target is not met yet."""
        reps = self.study.replications
        if not isinstance(reps, Sequential):
            return None
        n = self.finished.get(i, 0)
        if n >= reps.max or target_met([self.records[(i, r)] for r in range(n)], reps):
            return None
        return self.spec(i, n)

    def run(self, executor: Executor, progress: bool = True, capacity: int | None = None) -> None:
        from sim.experiments.executors import capacity as cap_of
        from sim.experiments.worker import run_task

        queue: deque[Spec] = deque(self.initial())
        limit = 2 * (capacity or cap_of(executor))
        bar = _bar(len(queue), progress, self.study.name)
        flying: dict[Future, Spec] = {}
        try:
            while queue or flying:
                while queue and len(flying) < limit:
                    s = queue.popleft()
                    if s.key in self.done:
                        self.record(s, self.done[s.key], reused=True)
                        queue.extend(self._follow(s, bar))
                        _tick(bar)
                        continue
                    flying[executor.submit(run_task, self.task(s))] = s
                if not flying:
                    continue
                finished, _ = wait(list(flying), return_when=FIRST_COMPLETED)
                for fut in sorted(finished, key=lambda f: (flying[f].point, flying[f].replication)):
                    s = flying.pop(fut)
                    try:
                        rec = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a worker died or could not unpickle: record it
                        rec = {"key": s.key, "error": f"{type(exc).__name__}: {exc}".splitlines()[0],
                               "plans": [], "wall_s": 0.0}
                    self.record(s, rec, reused=False)
                    queue.extend(self._follow(s, bar))
                    _tick(bar)
                self.write_tables(final=False)
        except BaseException:
            for fut in flying:
                fut.cancel()
            raise
        finally:
            if bar is not None:
                bar.close()
            if self.store is not None:
                self.store.close()

    def _follow(self, s: Spec, bar) -> list[Spec]:
        """Once every scheduled replication of a point is in (in whatever order they finished): maybe the next
        one (sequential designs)."""
        if not isinstance(self.study.replications, Sequential):
            return []
        i = s.point
        if self.finished.get(i, 0) != self.planned.get(i, 0):
            return []
        nxt = self.next_for(i)
        if nxt is None:
            return []
        if bar is not None:
            bar.total += 1
            bar.refresh()
        return [nxt]

    # -- recording ----------------------------------------------------------------------------------------
    def record(self, s: Spec, rec: dict[str, Any], reused: bool) -> None:
        series = rec.pop("series", None) if not reused else None
        rec = {"key": s.key, "error": rec.get("error"), "plans": rec.get("plans", []),
               "wall_s": rec.get("wall_s", 0.0), "point": self.points[s.point].id, "replication": s.replication,
               "seed": s.seed}
        self.records[(s.point, s.replication)] = rec
        self.finished[s.point] = self.finished.get(s.point, 0) + 1
        if reused:
            self.reused += 1
            return
        self.computed += 1
        self.failed += bool(rec["error"])
        if self.store is not None:
            self.store.append(rec)
            if series is not None:
                from sim.experiments.files import atomic_write

                name = f"{rec['point']}-r{s.replication}.parquet"
                atomic_write(self.out / "series" / name, lambda tmp: series.to_parquet(tmp))

    def base_scenario(self) -> dict:
        """The resolved scenario before the design's values (the study's file plus its fixed set:)."""
        from sim.experiments.design import base_raw
        from sim.scenario import validate_scenario

        return scenario_dict(validate_scenario(base_raw(self.study), self.study.scenario_path))

    def rows(self) -> list[dict[str, Any]]:
        order = {p.name: k for k, p in enumerate(self.plans)}
        out = []
        for (i, r) in sorted(self.records):
            rec = self.records[(i, r)]
            label = {"point": self.points[i].id, **self.points[i].values, "replication": r, "seed": rec["seed"]}
            if rec["error"] or not rec["plans"]:
                for p in self.plans:
                    out.append(label | {"plan": p.name, "wall_s": rec["wall_s"], "error": rec["error"] or "no result",
                                        "key": rec["key"]})
                continue
            for fig in sorted(rec["plans"], key=lambda f: order.get(f["plan"], 0)):
                out.append(label | fig | {"wall_s": rec["wall_s"], "error": None, "key": rec["key"]})
        return out

    def frame(self):
        import pandas as pd

        from sim.experiments.study import METRICS

        rows = self.rows()
        df = pd.DataFrame(rows)
        lines = sorted({k for row in rows for k in row if k.startswith("line_")})
        cols = ["point", *self.study.design_keys, "replication", "seed", "plan", *METRICS[:1], *lines,
                *METRICS[1:], "own_run", "total_exact", "wall_s", "error", "key"]
        for c in cols:
            if c not in df.columns:
                df[c] = None
        df = df[cols]
        df["error"] = df["error"].astype(object).where(df["error"].notna(), None)
        return df

    def write_tables(self, final: bool) -> None:
        if self.out is None or (not final and time.monotonic() - self._last_table < TABLE_EVERY_S):
            return
        from sim.experiments.files import atomic_write

        df = self.frame()
        atomic_write(self.out / "runs.parquet", lambda tmp: df.to_parquet(tmp, index=False))
        atomic_write(self.out / "runs.csv", lambda tmp: df.to_csv(tmp, index=False))
        self._last_table = time.monotonic()

    def info(self, wall_s: float) -> dict[str, Any]:
        reps = sorted({r for (_, r) in self.records})
        return {"study": self.study.document(), "versions": versions(),
                "scenario": self.base_scenario(),
                "points": [{"point": p.id, **p.values} for p in self.points],
                "plans": [p.name for p in self.plans],
                "seeds": {"root": self.root_seed, "replications": {str(r): seeds.run_seed(self.root_seed, r)
                                                                   for r in reps}},
                "runs": len(self.records), "runs_computed": self.computed, "runs_reused": self.reused,
                "runs_failed": sum(1 for rec in self.records.values() if rec["error"]),
                "wall_s": round(wall_s, 3)}


def target_met(records: list[dict[str, Any]], reps: Sequential) -> bool:
    """Every plan's ``target.metric`` has a CI half-width within ``relative_half_width x |mean|``."""
    import numpy as np

    from sim.experiments.summary import half_width

    by_plan: dict[str, list[float]] = {}
    for rec in records:
        for fig in rec.get("plans", []) if not rec.get("error") else []:
            v = fig.get(reps.target.metric)
            by_plan.setdefault(fig["plan"], []).append(np.nan if v is None else float(v))
    if not by_plan:
        return False
    for values in by_plan.values():
        v = np.asarray(values, dtype=float)
        v = v[~np.isnan(v)]
        if v.size < 2:
            return False
        hw = half_width(v, reps.target.confidence)
        if not hw <= reps.target.relative_half_width * abs(float(v.mean())):
            return False
    return True


def _bar(total: int, progress: bool, name: str):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"sweep {name}", unit="run", file=sys.stderr, mininterval=0.5)


def _tick(bar) -> None:
    if bar is not None:
        bar.update(1)


def run_study(study: Study, executor: Executor | None = None, progress: bool = True, out: str | Path | None = None,
              workers: int | None = None):
    """Run ``study`` (from :func:`sim.experiments.load_study`) and return a :class:`StudyResult`.

    ``executor``: any :class:`concurrent.futures.Executor` (it is left running); default a local process pool
    of ``workers`` (:func:`sim.experiments.executors.local_pool`), shut down at the end. ``out``: a directory
    for the tables, plots and the resume store (see the README); without it nothing is written.
    """
    from sim.experiments.executors import executor_or_pool
    from sim.experiments.files import check_sweep_dir
    from sim.experiments.result import StudyResult

    if out is not None:
        out = check_sweep_dir(out)
    sweep = Sweep(study, out)
    t0 = time.perf_counter()
    try:
        with executor_or_pool(executor, workers) as ex:
            sweep.run(ex, progress=progress)
    finally:
        if out is not None:
            sweep.write_tables(final=True)
    result = StudyResult(study, sweep.frame(), sweep.info(time.perf_counter() - t0))
    if out is not None:
        result.write(out)
    return result
