"""Speed of the events engine (not a test): SimPy's raw event rate beside the engine's, in one run.

    python benchmarks/bench_events.py [--scenario scenarios/chat-app.yaml] [--users 10000] [--days 7]
                                      [--set k=v ...] [--also-fast]

Prints one JSON line:

* ``raw_events_per_s``: a bare SimPy loop (``--raw-procs`` processes, default one per user, each yielding
  ``env.timeout(1)``) on this machine, measured in the same run, before and after the engine (the mean);
* ``engine_events_per_s``: SimPy events the events engine processed (scheduled events, counted from the
  environment's event counter) per second of the engine's run, and ``ratio`` = engine / raw (target
  at least 1/3);
* ``model_events``: what those events did (sessions, connections, message and receipt copies, pushes,
  calls), and ``model_events_per_s``;
* ``wall_s`` of the whole run (target: 10,000 users x 7 days of chat-app in under 3 minutes on 2 cores),
  and with ``--also-fast`` the fast engine's wall time on the same scenario and the ratio.

CPU seconds (``time.process_time``) are reported beside wall seconds: on a shared machine they are the
steadier figure for the ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import simpy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.scenario import load_scenario  # noqa: E402
from sim.simulate import simulate  # noqa: E402
from sim.world.events import world as events_world  # noqa: E402


def raw_rate(procs: int, steps: int) -> dict:
    """Events per second of a bare SimPy timeout loop (wall and CPU)."""
    env = simpy.Environment()

    def p(env):
        for _ in range(steps):
            yield env.timeout(1)

    for _ in range(procs):
        env.process(p(env))
    w0, c0 = time.perf_counter(), time.process_time()
    env.run()
    w, c = time.perf_counter() - w0, time.process_time() - c0
    n = procs * steps
    return {"events": n, "per_wall_s": n / w, "per_cpu_s": n / c}


MODEL_COUNTS = ("sessions_spontaneous", "sessions_prompted", "connections", "messages_originated", "messages_sent",
                "receipts_sent", "push_notifications", "calls")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="scenarios/chat-app.yaml")
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--raw-procs", type=int, default=None, help="processes of the bare loop (default: --users, "
                    "so that both heaps hold as many processes)")
    ap.add_argument("--raw-steps", type=int, default=None, help="timeouts per process (default: 2 M events in all)")
    ap.add_argument("--also-fast", action="store_true")
    args = ap.parse_args(argv)

    sets = [f"population.users={args.users}", f"simulation.days={args.days}", *args.set]
    sc = load_scenario(args.scenario, [*sets, "engine=events"])
    procs = args.raw_procs or args.users
    steps = args.raw_steps or max(1, 2_000_000 // procs)
    raw1 = raw_rate(procs, steps)

    seen: dict = {}
    original_run = events_world.EventsWorld.run

    def counting_run(self, on_day=None):
        w0, c0 = time.perf_counter(), time.process_time()
        original_run(self, on_day)
        seen["wall"], seen["cpu"] = time.perf_counter() - w0, time.process_time() - c0
        seen["events"] = next(self.env._eid)  # events scheduled on this environment (all were processed)

    events_world.EventsWorld.run = counting_run
    try:
        w0 = time.perf_counter()
        result = simulate(sc, progress=False, raise_errors=True)
        wall = time.perf_counter() - w0
    finally:
        events_world.EventsWorld.run = original_run
    raw2 = raw_rate(procs, steps)
    raw_wall = (raw1["per_wall_s"] + raw2["per_wall_s"]) / 2
    raw_cpu = (raw1["per_cpu_s"] + raw2["per_cpu_s"]) / 2
    counts = result.usage["counts"]
    model = {k: int(counts.get(k, 0)) for k in MODEL_COUNTS}
    model["receipt_and_message_copies"] = model["messages_sent"] + model["receipts_sent"]
    out = {
        "scenario": sc.name, "users": args.users, "days": args.days, "warmup_days": sc.simulation.warmup_days,
        "wall_s": round(wall, 1), "engine_wall_s": round(seen["wall"], 1), "engine_cpu_s": round(seen["cpu"], 1),
        "simpy_events": seen["events"],
        "raw_events_per_s": round(raw_wall), "raw_events_per_cpu_s": round(raw_cpu),
        "engine_events_per_s": round(seen["events"] / seen["wall"]),
        "engine_events_per_cpu_s": round(seen["events"] / seen["cpu"]),
        "ratio": round(seen["events"] / seen["wall"] / raw_wall, 3),
        "ratio_cpu": round(seen["events"] / seen["cpu"] / raw_cpu, 3),
        "model_events": model,
        "model_events_per_s": round(sum(v for k, v in model.items() if k != "receipt_and_message_copies")
                                    / seen["wall"]),
        "target": {"ratio_at_least": round(1 / 3, 3), "wall_s_at_most": 180},
    }
    if args.also_fast:
        sc_fast = load_scenario(args.scenario, sets)
        w0 = time.perf_counter()
        simulate(sc_fast, progress=False, raise_errors=True)
        out["fast_wall_s"] = round(time.perf_counter() - w0, 2)
        out["events_over_fast"] = round(wall / out["fast_wall_s"], 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
