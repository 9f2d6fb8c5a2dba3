"""Per-run seconds of small runs (not a test): the fixed cost a fleet of small apps pays per app.

    python benchmarks/bench_small_runs.py [--repeat 3] [--base /tmp/base]

Times ``simulate`` (warm: one run of each case first, best of ``--repeat``) for the chat app of
``scenarios/quick.yaml`` with 20, 100, 300 and 1,000 users over 30 days, and the IoT fleet of
``scenarios/iot-trackers.yaml`` with 20 devices over 30 days. ``--base`` is another checkout of the
package (e.g. ``git worktree add /tmp/base HEAD``): the same cases are timed there in a subprocess and
printed side by side with the ratio base / current. A fleet of 1,000 apps in 10 minutes on 2 cores
needs about 1 s per app.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CASES: list[tuple[str, str, list[str]]] = [
    *[(f"chat {n} users x 30 d", "scenarios/quick.yaml", [f"population.users={n}", "simulation.days=30"])
      for n in (20, 100, 300, 1000)],
    ("iot 20 devices x 30 d", "scenarios/iot-trackers.yaml", ["iot.devices=20"]),
]


def measure(root: Path, repeat: int) -> dict[str, float]:
    """Best warm wall seconds of ``simulate`` per case, with the package (and scenarios) at ``root``."""
    sys.path.insert(0, str(root))
    from sim.scenario import load_scenario
    from sim.simulate import simulate

    out: dict[str, float] = {}
    for name, path, sets in CASES:
        sc = load_scenario(str(root / path), sets)
        simulate(sc, progress=False, raise_errors=True)  # warm-up: imports, caches
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            simulate(sc, progress=False, raise_errors=True)
            best = min(best, time.perf_counter() - t0)
        out[name] = best
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--base", default=None, help="another checkout to compare with (its package root)")
    ap.add_argument("--root", default=str(ROOT), help=argparse.SUPPRESS)  # the package to time (for --base)
    ap.add_argument("--json", action="store_true", help="print the timings as one JSON object only")
    args = ap.parse_args(argv)

    base = None
    if args.base:  # first, in a fresh process, so neither run warms the other's caches
        res = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--json", "--repeat", str(args.repeat),
                              "--root", str(Path(args.base).resolve())],
                             env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                             capture_output=True, text=True, check=True)
        base = json.loads(res.stdout.strip().splitlines()[-1])
    now = measure(Path(args.root).resolve(), args.repeat)
    if args.json:
        print(json.dumps(now))
        return 0
    width = max(len(n) for n, _, _ in CASES)
    if base is None:
        print(f"{'case':<{width}}  seconds")
        for name, s in now.items():
            print(f"{name:<{width}}  {s:7.3f}")
    else:
        print(f"{'case':<{width}}  {'base s':>7}  {'now s':>7}  {'base/now':>8}")
        for name, s in now.items():
            b = base.get(name)
            print(f"{name:<{width}}  {b:7.3f}  {s:7.3f}  {b / s:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
