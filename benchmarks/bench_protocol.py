"""Protocol model speed: bytes of 10^7 messages by category, vectorised. Prints one JSON line:

    python benchmarks/bench_protocol.py [--n 10000000]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from sim.protocol import Protocol, ProtocolConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    args = ap.parse_args()
    sizes = np.random.default_rng(1).integers(0, 5_000, args.n)
    out = {"benchmark": "protocol.messages", "messages": args.n}
    for app in ("mesibo", "mqtt311", "mqtt5"):
        p = Protocol(ProtocolConfig(app=app))
        t = time.perf_counter()
        p.messages(sizes, "out")
        out[f"{app}_s"] = round(time.perf_counter() - t, 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
