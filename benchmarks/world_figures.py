"""What a simulated world looks like, in the figures the calibration and the seams are judged by (not a test).

    python benchmarks/world_figures.py --scenario chat-app --set population.users=20000 --set simulation.days=2
    python benchmarks/world_figures.py --scenario chat-app --set population.users=5000 --set simulation.days=7

Prints one JSON line: connections per daily active user and day (by cause), push wake-ups per DAU, launches
per day-active user-day (spontaneous + prompted by a notification), delivery latency p50/p90/p99, mean
stored bytes, peak CCU / MAU; and the seams: for every midnight of the period the mean concurrency and
connects per minute in the 15 minutes after it over the 15 minutes before (1.0 = no seam; a diurnal curve
that falls or rises at midnight UTC gives its own slope), the first 15 minutes of the period against the
same minutes a day later, and the minute of the day at which each day's concurrency peaks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.scenario import load_scenario  # noqa: E402
from sim.simulate import simulate  # noqa: E402
from sim.world.mobile.messaging import latency_quantiles  # noqa: E402
from sim.world.timeline import CAUSES  # noqa: E402

W = 15


def seams(x: np.ndarray) -> dict:
    days = x.size // 1440
    after = [x[d * 1440: d * 1440 + W].mean() for d in range(1, days)]
    before = [x[d * 1440 - W: d * 1440].mean() for d in range(1, days)]
    out = {"after_over_before_midnight": [round(a / b, 3) if b else None for a, b in zip(after, before, strict=True)]}
    if days > 1:
        out["start_over_next_day"] = round(x[:W].mean() / x[1440:1440 + W].mean(), 3) if x[1440:1440 + W].mean() else None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)
    sc = load_scenario(args.scenario, args.set, args.seed)
    r = simulate(sc, progress=False, raise_errors=True)
    c, u, f = r.usage["counts"], r.usage, r.frame
    dau = sum(u["activity"]["dau"]["values"])
    mau = sum(u["meters"]["mau"]["values"])
    app = sum(c.get(f"connections_{k}", 0) for k in CAUSES)
    q = latency_quantiles(c, (0.5, 0.9, 0.99))
    ccu = f["ccu"].to_numpy(dtype=float)
    out = {
        "scenario": sc.name, "users": sc.population.users, "days": sc.simulation.days,
        "connections_per_dau": round(app / dau, 2) if dau else None,
        "by_cause_per_dau": {k: round(c.get(f"connections_{k}", 0) / dau, 2) for k in CAUSES} if dau else {},
        "push_wakeups_per_dau": round(c.get("push_wakeups", 0) / dau, 2) if dau else None,
        "launches_per_day_active_user_day": round((c.get("sessions_spontaneous", 0) + c.get("sessions_prompted", 0))
                                                  / max(c.get("day_active_user_days", 0), 1), 2),
        "latency_s": {f"p{int(k * 100)}": round(v, 1) for k, v in q.items()},
        "mean_stored_mb": round(float(f["stored_bytes"].mean()) / 1e6, 3),
        "peak_ccu_over_mau": round(float(f["ccu_max"].max()) / mau, 4) if mau else None,
        "ccu": seams(ccu),
        "connects": seams(f["connects"].to_numpy(dtype=float)),
        "daily_peak_minute": [int(np.argmax(ccu[d * 1440:(d + 1) * 1440])) for d in range(ccu.size // 1440)],
        "wall_s": round(r.wall_s, 1),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
