"""The function a worker runs: one app of a fleet, simulated once and priced under its plans.

Why a module-level function taking and returning plain data: process pools (also in Jupyter) and Dask pickle
it by reference (``sim.fleets.worker.run_app``). The coordinator keeps one row per app, so a worker returns
the row's figures plus three per-minute series (float32, whole numbers) that the coordinator adds into the
fleet's load and then drops, and the app's CCU maxima per 15-minute bin (app_ccu.npy).

Price, don't re-simulate: :func:`sim.comparison.run_plans` simulates once without limits and re-runs only
the plans whose runtime limits bind and that charge anything (``own_runs="priced"``): a free plan's bill is
nothing on any usage, and whether the app fits it is decided on the unrestricted run, so its throttled run
would change no column (``binds.<plan>`` still says whether its limits would act).

**The per-minute series** are the unrestricted run's (the app as it would run with no limit acting):

* ``ccu``: frame ``ccu_max`` (the mobile per-minute maximum) plus ``iot_connections`` (the fleet's level), the
  sum the ``peak_ccu`` meter takes;
* ``messages``: frame ``messages`` (message copies the server sends, group fan-out included) plus
  ``iot_messages`` (telemetry messages the platform accepts): what a message server handles;
* ``egress``: billed outbound bytes (frame ``out_<c>_bytes`` for ``c`` in :data:`sim.meters.BILLED_OUTBOUND`).

Each is rounded to whole units before it becomes float32 (a float32 of a whole number is a whole number),
so the coordinator adds them as integers: the fleet's load is exact and the same in whatever order apps
finish.
"""

from __future__ import annotations

import math
import time
import traceback
from decimal import Decimal
from typing import Any

import numpy as np

from sim.fleets.fleet_file import BIN_MINUTES


def run_app(task: dict[str, Any]) -> dict[str, Any]:
    """Simulate and price app ``task["app"]``; a failure is returned as ``error`` (the fleet goes on)."""
    from sim.comparison import run_plans

    t0 = time.perf_counter()
    out: dict[str, Any] = {"app": task["app"], "error": None, "row": {}, "series": None, "ccu_bins": None}
    try:
        plans = task["plans"]
        # own runs only for binding plans that charge: a free plan's verdict is the unrestricted run's
        base, outcomes = run_plans(task["scenario"], plans, seed=task["seed"], progress=False, own_runs="priced")
        if not base.ok:
            raise RuntimeError(base.error.splitlines()[0] if base.error else "simulation failed")
        if len(outcomes) != len(plans):
            raise RuntimeError("a plan's own run failed")
        series = app_series(base.frame)
        out["row"] = app_figures(base.usage, outcomes, plans, series, connection_hours(base.frame))
        out["series"] = series
        out["ccu_bins"] = bin_max(series["ccu"], BIN_MINUTES)
    except Exception as exc:  # noqa: BLE001 - recorded, the fleet goes on
        last = traceback.format_exc().strip().splitlines()[-1]
        out["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else last
    out["wall_s"] = time.perf_counter() - t0
    return out


def _col(frame, name: str) -> np.ndarray:
    return frame[name].to_numpy(dtype=np.float64) if name in frame.columns else np.zeros(len(frame))


def app_series(frame) -> dict[str, np.ndarray]:
    """The app's per-minute load: concurrency, messages and billed outbound bytes (whole units, float32)."""
    from sim.meters import BILLED_OUTBOUND

    ccu = _col(frame, "ccu_max") + _col(frame, "iot_connections")
    messages = _col(frame, "messages") + _col(frame, "iot_messages")
    egress = sum((_col(frame, f"out_{c}_bytes") for c in BILLED_OUTBOUND), np.zeros(len(frame)))
    return {"ccu": _whole(ccu), "messages": _whole(messages), "egress": _whole(egress)}


def connection_hours(frame) -> float:
    """Sum of the per-minute connection *level* (frame ``ccu`` plus ``iot_connections``) / 60. The level, not the
    per-minute maximum: a 70-second session touches two or three minutes' maxima but holds 1.2 minutes."""
    return float((_col(frame, "ccu") + _col(frame, "iot_connections")).sum()) / 60.0


def _whole(x: np.ndarray) -> np.ndarray:
    return np.rint(np.maximum(x, 0.0)).astype(np.float32)


def bin_max(x: np.ndarray, width: int) -> np.ndarray:
    """Maximum of each ``width``-minute bin (the last bin may be shorter)."""
    n = math.ceil(x.size / width)
    pad = np.full(n * width, -np.inf, dtype=np.float64)
    pad[: x.size] = x
    return pad.reshape(n, width).max(axis=1).astype(np.float32) if n else np.zeros(0, np.float32)


def _ci(sampling: dict, side: str, key: str) -> tuple[float, float, float] | None:
    fig = (sampling.get(side) or {}).get(key)
    if not isinstance(fig, dict):
        return None
    return float(fig["value"]), float(fig["ci_low"]), float(fig["ci_high"])


def _interval(value: float, parts: list[tuple[float, float, float] | None]) -> tuple[float, float]:
    """``value``'s interval from the sampled sides' intervals: each side's offsets from its own estimate,
    combined in quadrature (the sides are sampled independently); an unsampled side adds nothing."""
    lo = math.sqrt(sum((p[0] - p[1]) ** 2 for p in parts if p is not None))
    hi = math.sqrt(sum((p[2] - p[0]) ** 2 for p in parts if p is not None))
    return value - lo, value + hi


def app_figures(usage: dict, outcomes: list, plans: list, series: dict[str, np.ndarray],
                conn_hours: float) -> dict[str, Any]:
    """The apps-table figures of one app: meters of the unrestricted run, then each plan's bill and limits."""
    from sim.comparison import billed_outbound, mau_of, meter_peak, meter_values

    meters, counts = usage.get("meters", {}), usage.get("counts", {})
    sampling = usage.get("sampling") or {}
    mau = float(mau_of(usage))
    mau_lo, mau_hi = _interval(mau, [_ci(sampling, "mobile", "mau")])
    peak = meter_peak(meters.get("peak_ccu"))
    peak_lo, peak_hi = _interval(peak, [_ci(sampling, "mobile", "peak_ccu"), _ci(sampling, "iot", "peak_ccu")])
    stored = meter_values(meters.get("stored_bytes"))
    row: dict[str, Any] = {
        "mau": mau, "mau_ci_low": mau_lo, "mau_ci_high": mau_hi,
        "peak_ccu": peak, "peak_ccu_ci_low": peak_lo, "peak_ccu_ci_high": peak_hi,
        "outbound_gb": billed_outbound(usage) / 1e9,
        "stored_gb": (float(stored.mean()) if stored.size else 0.0) / 1e9,
        "stored_gb_max": (float(stored.max()) if stored.size else 0.0) / 1e9,
        "turn_gb": float(meter_values(meters.get("turn_bytes")).sum()) / 1e9,
        "messages": int(counts.get("messages_originated", 0)) + int(counts.get("iot_messages_sent", 0)),
        "messages_sent": float(series["messages"].sum(dtype=np.float64)),
        "connections": int(counts.get("connections", 0)),
        "connection_hours": conn_hours,
        "peak_messages_per_s": float(series["messages"].max(initial=0.0)) / 60.0,
        "egress_peak_bytes_per_s": float(series["egress"].max(initial=0.0)) / 60.0,
    }
    for plan, o in zip(plans, outcomes, strict=True):
        row |= plan_figures(plan, o)
    return row


def plan_figures(plan, outcome) -> dict[str, Any]:
    """One plan's columns: the bill (float dollars and the exact Decimal), whether its runtime limits act, its
    hard limits exceeded, and each limited metric's quantity and use (quantity / limit, the bill's own rule:
    a ``max_fraction_of`` limit is the fraction of the other metric's measured quantity)."""
    from sim.pricing.metering import measure
    from sim.pricing.usage import usage_from_dict

    P = plan.name
    bill = outcome.bill
    row: dict[str, Any] = {f"total.{P}": float(bill.total), f"total_exact.{P}": str(bill.total),
                           f"binds.{P}": bool(outcome.binds), f"violations.{P}": len(bill.violations),
                           f"free.{P}": bool(plan.limits) and not bill.violations}
    if not plan.limits:
        return row
    priced = {k: v for k, v in outcome.usage.items() if k != "sampling"}   # information, not a meter
    measured = measure(plan, usage_from_dict(priced, f"<usage under {P}>"))
    uses: dict[str, float] = {}
    for lim in plan.limits:
        m = measured[lim.metric]
        limit = lim.max if lim.max is not None else \
            measured[lim.max_fraction_of.metric].converted * lim.max_fraction_of.fraction
        row[f"q.{P}.{lim.metric}"] = float(m.quantity)
        if lim.max_fraction_of is not None:
            row[f"q.{P}.{lim.max_fraction_of.metric}"] = float(measured[lim.max_fraction_of.metric].quantity)
        use = _use(m.quantity, limit)
        uses[lim.metric] = max(uses.get(lim.metric, 0.0), use)
    for metric, use in uses.items():
        row[f"use.{P}.{metric}"] = use
    return row


def _use(quantity: Decimal, limit: Decimal) -> float:
    """quantity / limit; a zero limit is used fully by anything above zero (inf) and not at all by zero."""
    if limit == 0:
        return 0.0 if quantity == 0 else math.inf
    return float(quantity / limit)
