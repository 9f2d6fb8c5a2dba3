"""The experiment layer's cost: overhead per run, and the speed-up of two workers over one.

    python benchmarks/bench_sweep.py            # quick.yaml as shipped (2,000 users, 2 days), 8 runs
    python benchmarks/bench_sweep.py --runs 4

1. Overhead per run: the same runs (one point, N replications, mesibo-cloud) simulated and priced directly
   with sim.comparison.run_plans, then through run_study in this process (InlineExecutor) into an output
   directory (seeds, keys, the resume store, tables, summary, study.json). Target: under 5 % of a run.
   A sweep's one-time cost (importing scipy.stats, pyarrow, matplotlib in the coordinator: seconds on a cold
   cache) is paid once per sweep, not per run: it is warmed first and reported on its own line.
2. Speed-up: the same study on a process pool of 1 worker and of 2 workers (pools started and warmed before
   the clock starts). Target: at least 1.7x on a 2-core machine. The machine's load average is printed: on a
   shared machine other processes take cores and the figure says more about them than about the sweep.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def study_file(tmp: Path, runs: int) -> Path:
    path = tmp / "bench.yaml"
    path.write_text(yaml.safe_dump({"name": "bench", "scenario": str(ROOT / "scenarios" / "quick.yaml"),
                                    "plans": ["mesibo-cloud"], "replications": runs, "seed": 1,
                                    "metrics": ["total"]}))
    return path


def _spin(n: int) -> int:
    """Pure CPU work: the ceiling any process pool can reach on this machine right now."""
    total = 0
    for i in range(n):
        total += i
    return total


def raw_speedup() -> float:
    from concurrent.futures import ProcessPoolExecutor

    walls = {}
    for n in (1, 2):
        with ProcessPoolExecutor(n) as ex:
            list(ex.map(abs, range(4)))
            t0 = time.perf_counter()
            list(ex.map(_spin, [3_000_000] * 8))
            walls[n] = time.perf_counter() - t0
    return walls[1] / walls[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=8)
    args = ap.parse_args()
    from sim.comparison import run_plans
    from sim.experiments import load_study, run_study
    from sim.experiments.executors import InlineExecutor, process_pool
    from sim.experiments.seeds import run_seed
    from sim.pricing.plan import load_plan
    from sim.scenario import load_scenario

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        study = load_study(study_file(tmp, args.runs))
        t0 = time.perf_counter()
        run_study(load_study(study_file(tmp, 1)), executor=InlineExecutor(), progress=False, out=tmp / "warm")
        first = time.perf_counter() - t0
        sc, plans = load_scenario(ROOT / "scenarios" / "quick.yaml"), [load_plan("mesibo-cloud")]
        run_plans(sc, plans, seed=1, progress=False)  # warm imports and caches
        t0 = time.perf_counter()
        for r in range(args.runs):
            run_plans(sc, plans, seed=run_seed(1, r), progress=False)
        direct = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = run_study(study, executor=InlineExecutor(), progress=False, out=tmp / "inline")
        swept = time.perf_counter() - t0
        own = float(res.runs.drop_duplicates("key")["wall_s"].sum())  # the runs' own time, measured in run_task
        per_run = own / args.runs
        over = (swept - own) / args.runs
        print(f"quick.yaml, {args.runs} runs: a run's own time {per_run:.3f} s (direct run_plans: "
              f"{direct / args.runs:.3f} s); sweep wall {swept / args.runs:.3f} s/run -> experiment-layer overhead "
              f"{over * 1000:.1f} ms/run = {over / per_run:.1%} of a run (target < 5 %)")
        print(f"  (runs_computed {res.info['runs_computed']}; includes writing runs/summary/study.json); a cold "
              f"sweep's one-time cost: first 1-run sweep {first:.2f} s")

        walls = {}
        for n in (1, 2):
            pool = process_pool(n)
            list(pool.map(abs, range(4 * n)))  # workers started
            t0 = time.perf_counter()
            run_study(study, executor=pool, progress=False, out=tmp / f"pool{n}")
            walls[n] = time.perf_counter() - t0
            pool.shutdown()
        import os

        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        print(f"process pool: 1 worker {walls[1]:.2f} s, 2 workers {walls[2]:.2f} s -> speed-up "
              f"{walls[1] / walls[2]:.2f}x (target >= 1.7x on 2 cores)")
        print(f"  ceiling now: a pure-CPU loop on plain process pools gets {raw_speedup():.2f}x from 2 workers")


if __name__ == "__main__":
    main()
