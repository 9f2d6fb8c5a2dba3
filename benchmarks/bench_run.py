"""Speed and memory benchmark (not a test): run a scenario, then the naive per-message SimPy model.

    python benchmarks/bench_run.py --scenario scenarios/mesibo-example.yaml [--set k=v ...]

Prints one JSON line: wall time and peak RSS of the scenario run, its size (users, days, messages,
connections, events), the per-stage wall times of the world, and the naive model's messages per
wall second measured on a slice (``--naive-users`` clients for ``--naive-days`` days, same per-user
rates) and the ratio of the two rates. The naive slice is extrapolated linearly to the full size,
and the output says so.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from naive_model import run_naive  # noqa: E402

from sim.scenario import load_scenario  # noqa: E402
from sim.simulate import simulate  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--seed", type=int, default=None)
    # default slice: the scenario's whole population (SimPy slows down with 10^5 processes on one heap,
    # which is the point of the comparison) for about an hour of simulated time
    ap.add_argument("--naive-users", type=int, default=None, help="default: the scenario's users")
    ap.add_argument("--naive-days", type=float, default=0.04)
    ap.add_argument("--skip-naive", action="store_true")
    args = ap.parse_args(argv)

    sc = load_scenario(args.scenario, args.set, args.seed)
    t0 = time.perf_counter()
    result = simulate(sc, progress=False, raise_errors=True)
    wall = time.perf_counter() - t0
    rss = peak_rss_mb()
    c = result.usage["counts"]
    messages = c.get("messages_sent", 0)
    events = (c.get("connections", 0) + messages + c.get("receipts_sent", 0) + c.get("calls", 0)
              + c.get("push_wakeups", 0))
    out = {
        "scenario": sc.name,
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(rss, 1),
        "users": sc.population.users,
        "days": sc.simulation.days,
        "messages": messages,
        "messages_originated": c.get("messages_originated", 0),
        "receipts": c.get("receipts_sent", 0),
        "connections": c.get("connections", 0),
        "events": events,
        "events_note": "connections + message copies + receipts + calls + push wake-ups decided by the world",
        "messages_per_s": round(messages / wall),
        "stages_s": {k: round(v, 2) for k, v in getattr(result, "timings", {}).items()},
    }
    if not args.skip_naive:
        act, msg = sc.activity, sc.messaging
        dau = sc.population.dau_over_mau * sc.population.monthly_active_fraction
        naive = run_naive(
            users=args.naive_users or sc.population.users,
            days=args.naive_days,
            messages_per_user_day=msg.messages_per_dau_per_day * dau,
            sessions_per_user_day=act.sessions_per_dau_per_day * dau,
            session_mean_s=act.session_mean_s,
            seed=sc.seed,
        )
        scale = (sc.population.users / naive.users) * (sc.simulation.days / naive.days)
        out["naive"] = {
            "users": naive.users,
            "days": naive.days,
            "messages": naive.messages,
            "wall_s": round(naive.wall_s, 2),
            "messages_per_s": round(naive.messages_per_s),
            "extrapolated_full_wall_s": round(naive.wall_s * scale, 1),
            "note": (f"naive model (one SimPy process per client, one event per message) run on a slice of "
                     f"{naive.users} users x {naive.days} days and extrapolated x{scale:.0f} to the full size; "
                     "it omits OS background life, pushes and bytes, so its rate is an upper bound"),
        }
        out["speedup_messages_per_s"] = round(out["messages_per_s"] / max(naive.messages_per_s, 1e-9), 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
