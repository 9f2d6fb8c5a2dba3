"""The ``fast`` engine for IoT trackers: a fleet's telemetry over MQTT, from closed forms and per-minute arrays.

:mod:`config` (the fleet's parameters and their sources), :mod:`schedule` (moving/parked report
schedules, trips), :mod:`links` (cellular drops, reconnects with back-off), :mod:`platform` (device
buffers with TTL, the owner's reads), :mod:`enforcer` (a plan's restrictions as the fleet sees them),
:mod:`outcome` (a finished run as plain data), :mod:`meters` (an outcome's bytes, levels and counts into
the meter book) and :mod:`fleet` (the engine and :func:`simulate_fleet`). Dependencies run one way:
``fleet`` imports the others, and ``outcome``/``meters``/``platform`` never import ``fleet``, so the
event-level engine :mod:`sim.world.events.iot` reuses them as they are.
"""

from sim.world.iot.config import DEFAULT_HOUR_WEIGHTS, IotFleetConfig
from sim.world.iot.enforcer import IotLimits


def simulate_fleet(*args, **kwargs):
    """:func:`sim.world.iot.fleet.simulate_fleet` (imported on first use: the scenario schema imports
    this package for :class:`IotFleetConfig` and must not pull in the engine)."""
    from sim.world.iot.fleet import simulate_fleet as run

    return run(*args, **kwargs)


__all__ = ["DEFAULT_HOUR_WEIGHTS", "IotFleetConfig", "IotLimits", "simulate_fleet"]
