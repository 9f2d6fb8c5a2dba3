"""The function a worker runs: one design point x one replication, priced under every plan.

Why a module-level function taking and returning plain data: process pools (also inside Jupyter) and Dask
pickle it by reference (``sim.experiments.worker.run_task``), so nothing may live in ``__main__``; and the
coordinator keeps thousands of results, so a worker returns a small dict of figures per plan (no per-minute
frames, unless the study keeps series).

Price, don't re-simulate: :func:`sim.comparison.run_plans` simulates once without limits and re-runs only
the plans whose runtime limits bind, exactly as ``sim run`` does.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

import numpy as np


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Simulate and price one run; a failure is returned as ``error`` (the sweep goes on)."""
    from sim.comparison import run_plans

    t0 = time.perf_counter()
    out: dict[str, Any] = {"key": task["key"], "error": None, "plans": [], "series": None}
    try:
        if task["scenario"].simulation.months:
            _months_task(task, out)
            out["wall_s"] = time.perf_counter() - t0
            return out
        base, outcomes = run_plans(task["scenario"], task["plans"], seed=task["seed"], progress=False)
        if not base.ok:
            raise RuntimeError(base.error.splitlines()[0] if base.error else "simulation failed")
        if len(outcomes) != len(task["plans"]):
            raise RuntimeError("a plan's own run failed")
        out["plans"] = [plan_figures(o) for o in outcomes]
        if task.get("keep_series"):
            out["series"] = base.frame
    except Exception as exc:  # noqa: BLE001 - recorded, the sweep goes on
        last = traceback.format_exc().strip().splitlines()[-1]
        out["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else last
    out["wall_s"] = time.perf_counter() - t0
    return out


def _months_task(task: dict[str, Any], out: dict[str, Any]) -> None:
    """A scenario of ``simulation.months``: each plan's months (sim/months/run.py), figures for the whole run."""
    from sim.months.run import run_months

    mr = run_months(task["scenario"], task["plans"], seed=task["seed"], progress=False)
    if not mr.ok:
        raise RuntimeError((mr.error or "simulation failed").splitlines()[0])
    out["plans"] = [months_figures(pm) for pm in mr.plans]
    if task.get("keep_series"):
        out["series"] = mr.base.frame


def months_figures(pm) -> dict[str, Any]:
    """One plan's figures over a multi-month run: ``total`` and ``line_*`` summed over the months (each month's
    bill under the plan in force), ``mau`` and ``peak_ccu`` of the busiest month, bytes summed, ``stored_gb``
    the mean of the months' averages, counts summed."""
    from sim.months.report import meters_row

    lines: dict[str, float] = {}
    for bill in pm.bills:
        for line in bill.lines:
            lines[f"line_{line.item}"] = lines.get(f"line_{line.item}", 0.0) + float(line.amount)
    rows = [meters_row(u) for u in pm.result.months]
    counts = [u.get("counts", {}) for u in pm.result.months]
    total = pm.total

    def most(key):
        return max((r[key] or 0 for r in rows), default=0)

    return {
        "plan": pm.plan, "total": float(total), "total_exact": str(total), **lines,
        "mau": most("mau"), "peak_ccu": most("peak_ccu"),
        "outbound_gb": sum(r["outbound_gb"] or 0 for r in rows),
        "stored_gb": _mean(np.array([r["stored_gb"] or 0 for r in rows], dtype=float)),
        "turn_gb": sum(r["turn_gb"] or 0 for r in rows),
        "overhead_share": None,
        **{k: int(sum(c.get(k, 0) for c in counts)) for k in ("connections", "full_handshakes", "delivered",
                                                             "rejected")},
        "stored": int(counts[-1].get("stored", 0)) if counts else 0,
        "own_run": bool(pm.own_run),
    }


def plan_figures(outcome) -> dict[str, Any]:
    """One plan's figures. Money: the bill's Decimal total and line amounts as floats (exact to the cent
    for any bill below 2^53 cents), so that CIs are computed on floats; ``total_exact`` keeps the string."""
    from sim.comparison import billed_outbound, mau_of, meter_peak, meter_values

    usage = outcome.usage
    counts = usage.get("counts", {})
    meters = usage.get("meters", {})
    billed = billed_outbound(usage)
    payload = usage.get("breakdown", {}).get("outbound", {}).get("payload", 0)
    lines: dict[str, float] = {}
    for line in outcome.bill.lines:
        lines[f"line_{line.item}"] = lines.get(f"line_{line.item}", 0.0) + float(line.amount)
    return {
        "plan": outcome.plan,
        "total": float(outcome.bill.total),
        "total_exact": str(outcome.bill.total),
        **lines,
        "mau": mau_of(usage),
        "peak_ccu": meter_peak(meters.get("peak_ccu")),
        "outbound_gb": billed / 1e9,
        "stored_gb": _mean(meter_values(meters.get("stored_bytes"))) / 1e9,  # the period's average level
        "turn_gb": float(meter_values(meters.get("turn_bytes")).sum()) / 1e9,
        "overhead_share": (1.0 - payload / billed) if billed else None,
        "connections": int(counts.get("connections", 0)),
        "full_handshakes": int(counts.get("full_handshakes", 0)),
        "delivered": int(counts.get("delivered", 0)),
        "stored": int(counts.get("stored", 0)),
        "rejected": int(counts.get("rejected", 0)),
        "own_run": bool(outcome.enforced),
    }


def _mean(v: np.ndarray) -> float:
    return float(v.mean()) if v.size else 0.0
