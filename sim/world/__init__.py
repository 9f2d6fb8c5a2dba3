"""The simulated world: mobile chat clients (this package) and IoT trackers (:mod:`sim.world.iot.fleet`).

Data flows one way: scenario -> world -> :class:`sim.meters.MeterBook` -> usage document. The world
knows nothing of prices; a plan's limits act on it only through :class:`sim.world.enforcer.Enforcer`.

Modules: :mod:`population` (static per-user draws), :mod:`sessions` (foreground use),
:mod:`os_model` (iOS suspension, Android freezer and Doze), :mod:`timeline` (connection intervals and
bulk queries; ``Sorted`` answers routing queries on unmerged sorted intervals), :mod:`push` (wake-ups), :mod:`messaging` (messages, routing, storage, receipts),
:mod:`calls`, :mod:`connections` (handshakes, heartbeats, concurrency, MAU), :mod:`enforcer`,
:mod:`mobile` (the day-by-day pipeline).
"""

from sim.world.enforcer import Enforcer

__all__ = ["Enforcer"]
