"""Searching the candidates: the grid (every combination of the variables' values; up to 3 variables under
``search.method: auto``) or Optuna (TPE or NSGA-II, the requirements as constraints); candidates ranked by the
objective, the Pareto frontier of share against cost, and the chosen point (:func:`solve`: the best feasible
candidate or, when none is, the closest to feasible).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.errors import InputError
from sim.fleets.tune_eval import Evaluation, evaluate
from sim.fleets.tune_file import grid_values
from sim.fleets.tune_problem import Problem


def grid(p: Problem) -> np.ndarray:
    axes = [grid_values(v) for v in p.tune.variables.values()]
    return np.array(list(itertools.product(*axes)), dtype=np.float64).reshape(-1, len(axes))


def order(p: Problem, ev: Evaluation) -> np.ndarray:
    """Candidates best first by the objective; ties by share (higher), cost (lower), revenue, then index."""
    cost, share, rev = np.round(ev.cost, 6), np.round(ev.share, 12), np.round(ev.revenue, 6)
    idx = np.arange(len(ev.cost))
    obj = p.tune.objective
    if obj == "minimise_free_cost":
        keys = (idx, -rev, -share, cost)
    elif obj == "maximise_free_share":
        keys = (idx, -rev, cost, -share)
    else:
        keys = (idx, -share, cost, -rev)
    return np.lexsort(keys)


def objective_value(p: Problem, ev: Evaluation) -> np.ndarray:
    return {"minimise_free_cost": ev.cost, "maximise_free_share": ev.share, "maximise_revenue": ev.revenue}[p.tune.objective]


def search(p: Problem, progress: bool = False) -> tuple[Evaluation, str]:
    """Grid (up to 3 variables under ``auto``) or Optuna; returns the evaluation of every candidate tried."""
    method = p.tune.search.method
    if method == "auto":
        method = "grid" if len(p.names) <= 3 else "optuna"
    if method == "grid":
        return evaluate(p, grid(p), progress), "grid"
    return optuna_search(p, progress), "optuna"


def optuna_search(p: Problem, progress: bool = False) -> Evaluation:
    """Optuna (TPE or NSGA-II) with the requirements as constraints (``constraints_func``: <= 0 holds)."""
    try:
        import optuna
    except ImportError:
        raise InputError(p.tune.source, "search.method", "optuna is not installed: pip install -e \".[tune]\" "
                         "(or use search.method: grid)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    reqs = p.tune.requirements

    def constraints(trial) -> list[float]:
        return trial.user_attrs["constraints"]

    # Optuna >= 5 takes constraints from the trial (Trial.set_constraint); earlier ones from constraints_func
    per_trial = hasattr(optuna.trial.Trial, "set_constraint")
    kw = {} if per_trial else {"constraints_func": constraints}
    seed = p.tune.search.seed
    if p.tune.search.sampler == "nsga2":
        sampler = optuna.samplers.NSGAIISampler(seed=seed, **kw)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, **kw)
    direction = "minimize" if p.tune.objective == "minimise_free_cost" else "maximize"
    study = optuna.create_study(direction=direction, sampler=sampler)
    specs = []
    for name, var in p.tune.variables.items():
        step = var.step
        if step is None and var.points is not None and var.high > var.low:
            step = (var.high - var.low) / (var.points - 1)
        if step is not None and var.high > var.low:
            high = float(f"{var.low + step * math.floor((var.high - var.low) / step + 1e-9):.10g}")
            specs.append((name, var.low, high, step))
        else:
            specs.append((name, var.low, var.high, None))

    def objective(trial) -> float:
        vals = []
        for name, low, high, step in specs:
            vals.append(low if low == high else trial.suggest_float(name, low, high, step=step))
        ev = evaluate(p, np.array([[float(f"{v:.10g}") for v in vals]]))
        cons = []
        for j, r in enumerate(reqs):
            b, val, hi = r.body, ev.req_value[j], ev.req_high[j]
            if r.kind == "free_share":
                cons.append(float(b.at_least - ev.req_low[j][0]))
            elif r.kind == "servers":
                cons.append(float(val[0] - b.at_most))
            else:
                bound = val[0] if not np.isfinite(hi[0]) else max(val[0], hi[0])
                cons.append(float(bound - float(b.at_most)) / max(float(b.at_most), 1.0))
        trial.set_user_attr("constraints", cons)
        if per_trial:
            for j, c in enumerate(cons):
                trial.set_constraint(f"requirement_{j}", c)
        return float(objective_value(p, ev)[0])

    trials = range(p.tune.search.trials)
    if progress:
        from tqdm import tqdm

        trials = tqdm(trials, desc="optuna trials", unit="trial", leave=False)
    for _ in trials:
        study.optimize(objective, n_trials=1)
    pts = []
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            pts.append([t.params.get(name, low) for name, low, _, _ in specs])
    values = np.unique(np.round(np.array(pts, dtype=np.float64), 10), axis=0)
    ev = evaluate(p, values)
    ev.seconds = time.perf_counter() - t0
    return ev


def pareto(ev: Evaluation) -> np.ndarray:
    """On the frontier: no other candidate is at most as costly with a higher share of apps free."""
    on = np.zeros(len(ev.cost), dtype=bool)
    cost, share = np.round(ev.cost, 6), np.round(ev.share, 12)
    best, last = -1.0, None
    for i in np.lexsort((-share, cost)):
        if share[i] > best:
            on[i] = True
            best, last = share[i], (cost[i], share[i])
        elif last == (cost[i], share[i]):
            on[i] = True
    return on


# -- the result of one fleet: every candidate, the frontier and the chosen point ---------------------------------

@dataclass
class Solution:
    problem: Problem
    evaluation: Evaluation
    method: str
    chosen: int | None
    closest: int | None
    frontier: np.ndarray

    def frame(self) -> pd.DataFrame:
        p, ev = self.problem, self.evaluation
        cols: dict[str, Any] = {name: ev.values[:, i] for i, name in enumerate(p.names)}
        cols["free_share"] = ev.share
        for j, a in enumerate(p.arch_list):
            cols[f"free_share.{a}"] = ev.share_arch[:, j]
        cols["apps_free"] = ev.free.astype(np.int64)
        cols["free_cost"] = np.round(ev.cost, 2)
        cols["servers"] = ev.servers.astype(np.int64)
        cols["revenue"] = np.round(ev.revenue, 2)
        for r, lo, hi in zip(p.tune.requirements, ev.req_low, ev.req_high, strict=True):
            if r.kind != "servers":
                cols[f"{r.label()} ci_low"] = lo
                cols[f"{r.label()} ci_high"] = hi
        for r, met, hi in zip(p.tune.requirements, ev.req_met, ev.req_high, strict=True):
            col = pd.array(met, dtype="boolean")
            if r.kind == "free_cost":  # no bootstrap where another requirement already fails: unknown, not False
                col[np.isnan(hi) & (ev.cost <= float(r.body.at_most) + 1e-9)] = pd.NA
            cols[f"{r.label()} met"] = col
        cols["feasible"] = ev.feasible
        cols["on_frontier"] = self.frontier
        cols["chosen"] = np.arange(len(ev.cost)) == (self.chosen if self.chosen is not None else -1)
        return pd.DataFrame(cols)


def solve(p: Problem, progress: bool = False) -> Solution:
    ev, method = search(p, progress)
    ranked = order(p, ev)
    feasible = ranked[ev.feasible[ranked]]
    chosen = int(feasible[0]) if feasible.size else None
    closest = None
    if chosen is None:
        short = np.zeros(len(ev.cost))
        for j, r in enumerate(p.tune.requirements):
            b, val, hi = r.body, ev.req_value[j], ev.req_high[j]
            if r.kind == "free_share":
                gap = b.at_least - ev.req_low[j]
                short += np.maximum(gap, 0) / max(b.at_least, 1e-9)
            elif r.kind == "servers":
                short += np.maximum(val - b.at_most, 0) / max(b.at_most, 1)
            else:
                bound = np.where(np.isfinite(hi), np.maximum(hi, val), val)
                short += np.maximum(bound - float(b.at_most), 0) / max(float(b.at_most), 1e-9)
        rank_pos = np.empty(len(ranked), dtype=np.int64)
        rank_pos[ranked] = np.arange(len(ranked))
        closest = int(np.lexsort((rank_pos, np.round(short, 12)))[0])
        # its free-cost interval, for the report, even where the screening skipped it
        p.sets.bootstrap(ev.sid[[closest]])
    return Solution(p, ev, method, chosen, closest, pareto(ev))
