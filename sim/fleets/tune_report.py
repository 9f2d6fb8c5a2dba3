"""The recommendation: the chosen point (or, when nothing is feasible, the closest) reported whole: its limits
and the plan's, the objective, each requirement with its interval, and the free tier in exact money. The
search's costs are floats; the reported costs are Decimal, each line rounded to cents half-up, the total the
sum of lines; revenue is the paying apps' exact paid-plan totals where the fleet wrote them.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np

from sim.fleets.tune_eval import free_matrix
from sim.fleets.tune_problem import _col
from sim.fleets.tune_search import Solution

CENTS = Decimal("0.01")


def _money(x: float) -> Decimal:
    return Decimal(repr(float(x))).quantize(CENTS, rounding=ROUND_HALF_UP)


def point_report(sol: Solution, i: int) -> dict:
    """Everything about candidate ``i``: limits, the free tier (exact money), each requirement with its CI."""
    p, ev = sol.problem, sol.evaluation
    free = p.sets.free_of(int(ev.sid[i]))
    f = p.frame[free]
    table = str(p.run.dir / "apps.parquet")

    def total(col: str) -> Decimal:
        return Decimal(repr(math.fsum(_col(f, col, table)))) if len(f) else Decimal(0)

    lines = {"egress": total("outbound_gb") * p.prices["egress"],
             "storage": total("stored_gb") * p.prices["storage"],
             "connections": total("connection_hours") * p.prices["connections"],
             "servers": Decimal(int(ev.servers[i])) * p.prices["servers"]}
    lines = {k: v.quantize(CENTS, rounding=ROUND_HALF_UP) for k, v in lines.items()}
    cost_total = sum(lines.values(), Decimal(0))
    paying = p.frame[~free]
    exact_col = f"total_exact.{p.paid_key}"
    if exact_col in paying.columns and len(paying):
        revenue = sum((Decimal(str(x)) for x in paying[exact_col] if x is not None and str(x) not in ("", "nan")),
                      Decimal(0))
    else:
        revenue = _money(float(p.paid_total[~free].sum()))
    values = ev.values[i]
    pess = free_matrix(p, values[None, :], "pessimistic")[0]
    opt = free_matrix(p, values[None, :], "optimistic")[0]
    reqs = []
    for j, r in enumerate(p.tune.requirements):
        b = r.body
        item: dict[str, Any] = {"requirement": r.model_dump(mode="json", exclude_none=True), "label": r.label(),
                                "kind": r.kind}
        if r.kind == "free_share":
            sel = np.ones(p.n, dtype=bool) if b.archetype == "all" else (p.frame["archetype"].astype(str) == b.archetype).to_numpy()
            n = int(sel.sum())
            item.update(value=float(ev.req_value[j][i]), ci_low=float(ev.req_low[j][i]),
                        ci_high=float(ev.req_high[j][i]), confidence=b.confidence, method="clopper-pearson, one-sided",
                        apps=n, apps_free=int(free[sel].sum()),
                        pessimistic=float(pess[sel].sum() / n) if n else None,
                        optimistic=float(opt[sel].sum() / n) if n else None)
        elif r.kind == "free_cost":
            p.sets.bootstrap(ev.sid[[i]])
            boots = p.sets.boot[int(ev.sid[i])]
            lo, hi = np.quantile(boots, [1 - b.confidence, b.confidence])
            item.update(value=str(cost_total), ci_low=str(_money(lo)), ci_high=str(_money(hi)),
                        confidence=b.confidence, method=f"bootstrap over apps, {len(boots)} resamples, percentile",
                        met=bool(ev.cost[i] <= float(b.at_most) + 1e-9 and hi <= float(b.at_most) + 1e-9))
        else:
            item.update(value=int(ev.servers[i]), ci_low=None, ci_high=None, confidence=None, method="point value")
        item.setdefault("met", bool(ev.req_met[j][i]))   # free_cost: computed here even where the search skipped it
        reqs.append(item)
    obj = p.tune.objective
    obj_value = {"minimise_free_cost": str(cost_total), "maximise_free_share": float(ev.share[i]),
                 "maximise_revenue": str(revenue)}[obj]
    limits = {name: _clean(values[k]) for k, name in enumerate(p.names)}
    plan_limits = []
    for lim in p.plan.limits:
        name = f"limits.{lim.metric}"
        if lim.max is not None:
            v = limits.get(name, _clean(float(lim.max)))
            plan_limits.append({"metric": lim.metric, "max": v})
        else:
            v = limits.get(name, _clean(float(lim.max_fraction_of.fraction)))
            plan_limits.append({"metric": lim.metric, "max_fraction_of": {"metric": lim.max_fraction_of.metric,
                                                                          "fraction": v}})
    return {
        "limits": limits,
        "plan_limits": plan_limits,
        "objective": {"name": obj, "value": obj_value},
        "requirements": reqs,
        "free_tier": {
            "apps": p.n, "apps_free": int(free.sum()), "share": float(ev.share[i]),
            "share_by_archetype": {a: (None if np.isnan(ev.share_arch[i, j]) else float(ev.share_arch[i, j]))
                                   for j, a in enumerate(p.arch_list)},
            "share_pessimistic": float(pess.mean()), "share_optimistic": float(opt.mean()),
            "cost": {**{k: str(v) for k, v in lines.items()}, "total": str(cost_total)},
            "servers": int(ev.servers[i]),
            "revenue": str(revenue),
            "currency": p.plan.currency,
        },
    }


def _clean(v: float) -> float | int:
    v = float(f"{float(v):.10g}")
    return int(v) if v.is_integer() and abs(v) < 2**53 else v


def recommendation(sol: Solution) -> dict:
    p, ev = sol.problem, sol.evaluation
    out: dict[str, Any] = {"feasible": sol.chosen is not None}
    if sol.chosen is not None:
        out.update(point_report(sol, sol.chosen))
        out["closest"] = None
        out["reason"] = None
    else:
        closest = point_report(sol, sol.closest)
        failing = [r["label"] for r in closest["requirements"] if not r["met"]]
        out.update(limits=None, plan_limits=None, objective={"name": p.tune.objective, "value": None},
                   requirements=closest["requirements"], free_tier=None,
                   closest=closest, failing=failing,
                   reason=f"no candidate meets every requirement; the closest fails {', '.join(failing)}")
    out["search"] = {"method": sol.method, "candidates": int(len(ev.cost)), "feasible": int(ev.feasible.sum()),
                     "free_sets": len(p.sets.index), "seconds": round(ev.seconds, 3),
                     "candidates_per_second": round(len(ev.cost) / ev.seconds) if ev.seconds > 0 else None}
    return out
