"""Fleet benchmark: the issue's target is a 1,000-app fleet with at least 5 M MAU in total, a 30-day month, in
under 10 minutes on a 2-core machine (sim/fleets, sampled apps: sim/sampling.py).

    python benchmarks/bench_fleet.py                       # fleets/small-apps.yaml, local pool
    python benchmarks/bench_fleet.py --set apps=100        # a smaller fleet
    python benchmarks/bench_fleet.py --dask-local 2        # the same fleet on a Dask LocalCluster

Prints wall seconds, apps per second, the fleet's MAU and how many apps were sampled; the rows are identical
whichever executor ran them (tests/test_fleet.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fleet", default=str(ROOT / "fleets" / "small-apps.yaml"))
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--dask-local", type=int, default=None)
    ap.add_argument("--out", default=None, help="keep the fleet's outputs here (default: a temporary directory)")
    args = ap.parse_args()

    from sim.fleets.fleet_file import load_fleet
    from sim.fleets.runner import run_fleet

    fleet = load_fleet(args.fleet, args.set)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "fleet"
        t0 = time.perf_counter()
        if args.dask_local:
            from sim.experiments.executors import dask_executor

            with dask_executor(None, args.dask_local) as ex:
                result = run_fleet(fleet, executor=ex, progress=True, out=out)
        else:
            result = run_fleet(fleet, workers=args.workers, progress=True, out=out)
        wall = time.perf_counter() - t0
    apps = result.apps
    n = len(apps)
    mau = float(apps["mau"].sum())
    sampled = int(apps["sampled"].sum())
    errors = int(apps["error"].notna().sum())
    print(f"fleet {fleet.name}: {n} apps, {mau / 1e6:.2f} M MAU ({sampled} apps sampled), {errors} errors")
    for text, count in apps["error"].dropna().value_counts().items():
        print(f"  {count} x {text}")
    print(f"wall {wall:.1f} s  ({n / wall:.2f} apps/s; target: 1,000 apps >= 5 M MAU in < 600 s)")


if __name__ == "__main__":
    main()
