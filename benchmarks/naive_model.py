"""The naive baseline: one SimPy process per client, one event per message.

Why it exists: the benchmark compares the vectorised world (sim.world.mobile.world) with the obvious
discrete-event design, on the same kind of workload: clients alternate offline gaps and foreground
sessions (Poisson session starts, exponential lengths), send messages as a Poisson process while in a
session, and each message is delivered at once if its recipient is online or stored and delivered
when the recipient next connects. It deliberately leaves out what the real world adds (diurnal
curve, OS background life, pushes, TLS bytes), so its speed is an *upper bound* for a per-event
model of the full world.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import simpy

DAY_S = 86_400.0


@dataclass
class NaiveResult:
    users: int
    days: float
    messages: int
    delivered: int
    stored: int
    connections: int
    events: int
    wall_s: float

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.wall_s if self.wall_s > 0 else float("inf")


def run_naive(users: int, days: float, messages_per_user_day: float, sessions_per_user_day: float,
              session_mean_s: float, seed: int = 1) -> NaiveResult:
    """Simulate ``users`` clients for ``days`` with one SimPy event per message."""
    env = simpy.Environment()
    rng = np.random.default_rng(seed)
    online = np.zeros(users, dtype=bool)
    pending = [0] * users
    stats = {"messages": 0, "delivered": 0, "stored": 0, "connections": 0}
    in_session_rate = messages_per_user_day / (sessions_per_user_day * session_mean_s)  # msgs per online second
    gap_mean = DAY_S / sessions_per_user_day

    def client(u: int):
        while True:
            yield env.timeout(rng.exponential(gap_mean))
            online[u] = True
            stats["connections"] += 1
            stats["delivered"] += pending[u]  # stored messages delivered on connect
            pending[u] = 0
            end = env.now + rng.exponential(session_mean_s)
            while True:
                gap = rng.exponential(1.0 / in_session_rate)
                if env.now + gap >= end:
                    yield env.timeout(end - env.now)
                    break
                yield env.timeout(gap)  # one event per message
                stats["messages"] += 1
                r = int(rng.integers(users))
                if online[r]:
                    stats["delivered"] += 1
                else:
                    pending[r] += 1
                    stats["stored"] += 1
            online[u] = False

    for u in range(users):
        env.process(client(u))
    t0 = time.perf_counter()
    env.run(until=days * DAY_S)
    wall = time.perf_counter() - t0
    events = stats["messages"] + 2 * stats["connections"]
    return NaiveResult(users, days, stats["messages"], stats["delivered"], stats["stored"], stats["connections"],
                       events, wall)
