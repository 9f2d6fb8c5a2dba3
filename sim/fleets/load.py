"""The fleet's load on the common clock, and the capacity it implies, split between free and paying apps.

Why add apps minute by minute rather than add their peaks: every app's diurnal peak falls in the same evening
hours of its users, so the fleet's peak is close to the sum of the apps' peaks where their users share time
zones, and well below it where they do not; only the summed series says which. All apps share
``simulation.start`` and ``days`` (the fleet file enforces it), so minute ``t`` of every app is the same UTC
minute.

**Exact sums.** Workers send whole numbers (:mod:`sim.fleets.worker`); they are added as int64, so the load
does not depend on the order in which apps finish (floating-point sums would, in their last bits).

**Capacity** (``capacity.json``), for the whole fleet and for each class on its own (a class's servers are
what it would need alone, so free + paying >= total):

* servers for connections: ``ceil(peak per-minute concurrency / connections_per_server)``;
* servers for messages: ``ceil(peak messages per second / messages_per_second_per_server)``, the rate being the
  minute's messages / 60;
* ``servers``: the larger of the two;
* egress: the ``egress_percentile`` of the per-minute billed outbound rate, by nearest rank (numpy
  ``inverted_cdf``: the burstable-billing convention, where the top 5 % of samples are discarded and the highest
  remaining one is billed; here the samples are one-minute averages, not the usual five);
* stored GB: the sum over apps of each app's mean stored level (what a GB-month price applies to) and of each
  app's maximum (an upper bound of the fleet's peak level: apps' stores peak at different times).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Per-minute quantities a worker sends, as (series name, load.csv column, divisor to its unit).
QUANTITIES = (("ccu", "ccu", 1.0), ("messages", "messages_per_s", 60.0), ("egress", "egress_bytes_per_s", 60.0))
CLASSES = ("free", "paying")


class LoadAccumulator:
    """Per-minute sums of the apps' series, one per class, as exact integers."""

    def __init__(self, minutes: int) -> None:
        self.minutes = minutes
        self.sums = {(q, c): np.zeros(minutes, dtype=np.int64) for q, _, _ in QUANTITIES for c in CLASSES}
        self.apps = dict.fromkeys(CLASSES, 0)

    def add(self, series: dict[str, np.ndarray], cls: str) -> None:
        for q, _, _ in QUANTITIES:
            v = np.asarray(series[q])
            if v.shape != (self.minutes,):
                raise ValueError(f"an app's {q} series has {v.size} minutes, the fleet's clock {self.minutes}")
            self.sums[(q, cls)] += v.astype(np.int64)
        self.apps[cls] += 1

    def frame(self, start):
        """load.csv: UTC time, then each quantity in total and per class (ccu, ccu_free, ccu_paying, ...)."""
        import pandas as pd

        index = pd.date_range(start, periods=self.minutes, freq="1min", tz="UTC")
        cols: dict[str, Any] = {"time": index.strftime("%Y-%m-%dT%H:%M:%SZ")}
        for q, name, div in QUANTITIES:
            parts = {c: self.sums[(q, c)] for c in CLASSES}
            total = parts["free"] + parts["paying"]
            for suffix, v in (("", total), ("_free", parts["free"]), ("_paying", parts["paying"])):
                cols[f"{name}{suffix}"] = v if div == 1.0 else v / div
        return pd.DataFrame(cols)


def capacity(load, apps, cap, free_plan: str | None = None) -> dict[str, Any]:
    """capacity.json from load.csv's frame, the apps table and the fleet's ``capacity:`` section."""
    out: dict[str, Any] = {"parameters": cap.model_dump(mode="json"), "free_plan": free_plan,
                           "minutes": int(len(load))}
    ok = apps["error"].isna() if "error" in apps else np.ones(len(apps), bool)
    cls = apps["free"].map({True: "free", False: "paying"}) if "free" in apps else None
    for name, suffix in (("total", ""), ("free", "_free"), ("paying", "_paying")):
        ccu = load[f"ccu{suffix}"].to_numpy(dtype=float)
        mps = load[f"messages_per_s{suffix}"].to_numpy(dtype=float)
        egress = load[f"egress_bytes_per_s{suffix}"].to_numpy(dtype=float)
        rows = apps[ok] if name == "total" or cls is None else apps[ok & (cls == name)]
        out[name] = class_capacity(ccu, mps, egress, rows, cap)
    return out


def class_capacity(ccu: np.ndarray, mps: np.ndarray, egress: np.ndarray, rows, cap) -> dict[str, Any]:
    peak_ccu = float(ccu.max(initial=0.0))
    peak_mps = float(mps.max(initial=0.0))
    by_conn = math.ceil(peak_ccu / cap.connections_per_server)
    by_msg = math.ceil(peak_mps / cap.messages_per_second_per_server)
    p = float(np.percentile(egress, cap.egress_percentile, method="inverted_cdf")) if egress.size else 0.0

    def total(col: str) -> float:
        return float(rows[col].sum()) if col in rows and len(rows) else 0.0

    return {
        "apps": int(len(rows)),
        "peak_ccu": peak_ccu,
        "peak_ccu_at_minute": int(ccu.argmax()) if ccu.size else None,
        "peak_messages_per_s": peak_mps,
        "servers_for_connections": by_conn,
        "servers_for_messages": by_msg,
        "servers": max(by_conn, by_msg),
        "egress_percentile_bytes_per_s": p,
        "egress_percentile_mbit_s": p * 8 / 1e6,
        "egress_peak_bytes_per_s": float(egress.max(initial=0.0)),
        "egress_gb": float(egress.sum()) * 60 / 1e9,
        "stored_gb": total("stored_gb"),
        "stored_gb_max": total("stored_gb_max"),
        "connection_hours": total("connection_hours"),
        "mau": total("mau"),
    }
