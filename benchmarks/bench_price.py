"""Pricing speed: a month of one-minute series (43,200 points) for ten meters, priced under every shipped plan.

Sweeps price thousands of bills, so one bill must take well under a second. Prints one JSON line:

    python benchmarks/bench_price.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from sim.pricing.plan import load_plan, shipped_plans
from sim.pricing.pricing import price
from sim.pricing.usage import usage_from_dict

METERS = ["outbound_bytes", "turn_bytes", "stored_bytes", "channels", "streams", "devices", "containers",
          "mqtt_sessions", "tokens", "abques"]


def month_of_minutes(rng: np.random.Generator) -> dict:
    n = 30 * 24 * 60
    meters = {name: {"interval": "1min", "values": rng.uniform(0, 1e6, n).round().tolist()} for name in METERS}
    meters.update(mau=100_000, peak_ccu=5_000)
    return {"period": {"start": "2026-11-01", "end": "2026-12-01"}, "meters": meters}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    doc = month_of_minutes(np.random.default_rng(0))
    t0 = time.perf_counter()
    usage = usage_from_dict(doc, "<bench>")
    load_s = time.perf_counter() - t0
    plans = [load_plan(name) for name in shipped_plans()]
    timings = []
    for _ in range(args.repeat):
        for plan in plans:
            t = time.perf_counter()
            price(usage, plan)
            timings.append(time.perf_counter() - t)
    print(json.dumps({
        "benchmark": "price", "points_per_meter": 43_200, "meters": len(METERS) + 2, "plans": len(plans),
        "bills": len(timings), "usage_load_s": round(load_s, 4),
        "bill_mean_ms": round(1000 * float(np.mean(timings)), 3), "bill_max_ms": round(1000 * max(timings), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
