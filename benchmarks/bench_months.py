"""Multi-month runs (not a test): what a year of a growing app costs, and what the months machinery adds.

    python benchmarks/bench_months.py [--months 12] [--set key=value ...]

Prints, side by side on this machine:

* one world of 2 months against the same world as 2 separate one-month runs (``simulation.months`` is one
  continuous run, so its cost should be the sum of its months: the ratio is the overhead of the per-month
  boundaries, counts and cuts);
* the unrestricted run of ``scenarios/growth-12-months.yaml`` (``--months``), then ``run_months`` under its three
  plans (each plan's own run, its limits renewed monthly and its account priced day by day): wall seconds per
  run and per simulated month, and the share of the time the accounts' daily pricing takes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args()

    from sim.months import accounts
    from sim.months.run import run_months
    from sim.pricing.plan import load_plan
    from sim.scenario import load_scenario
    from sim.simulate import simulate

    quick = ROOT / "scenarios" / "quick.yaml"
    small = ["population.users=300", "simulation.days=null"]
    two = load_scenario(quick, small + ["simulation.months=2"])
    nov = load_scenario(quick, small + ["simulation.months=1"])
    dec = load_scenario(quick, small + ["simulation.months=1", "simulation.start=2026-12-01T00:00:00Z"])
    simulate(nov, progress=False)  # warm imports
    _, t_two = timed(lambda: simulate(two, progress=False, raise_errors=True))
    _, t_nov = timed(lambda: simulate(nov, progress=False, raise_errors=True))
    _, t_dec = timed(lambda: simulate(dec, progress=False, raise_errors=True))
    print(f"quick, 300 users: one 2-month run {t_two:.2f} s; Nov + Dec run apart {t_nov + t_dec:.2f} s; "
          f"ratio {t_two / (t_nov + t_dec):.2f}")

    sc = load_scenario(ROOT / "scenarios" / "growth-12-months.yaml", [f"simulation.months={args.months}"] + args.sets)
    base, t_base = timed(lambda: simulate(sc, progress=False, raise_errors=True))
    print(f"growth-12-months, {args.months} months ({sc.simulation.days} days), sample "
          f"{sc.population.sample}: unrestricted run {t_base:.1f} s ({t_base / args.months:.1f} s per month)")

    spent = {"s": 0.0}
    original = accounts.AccountWatch.on_day

    def on_day(self, *a, **k):
        t0 = time.perf_counter()
        try:
            return original(self, *a, **k)
        finally:
            spent["s"] += time.perf_counter() - t0

    accounts.AccountWatch.on_day = on_day
    try:
        mr, t_all = timed(lambda: run_months(sc, [load_plan(p) for p in sc.plans], progress=False))
    finally:
        accounts.AccountWatch.on_day = original
    runs = 1 + sum(pm.own_run for pm in mr.plans)
    print(f"run_months under {len(sc.plans)} plans: {t_all:.1f} s for {runs} runs ({t_all / runs:.1f} s per run); "
          f"accounts' daily pricing {spent['s']:.1f} s ({spent['s'] / t_all:.0%})")
    for pm in mr.plans:
        print(f"  {pm.plan}: total {pm.total}, {'own run' if pm.own_run else 'the unrestricted run'}")


if __name__ == "__main__":
    main()
