"""Fleets: many apps drawn from archetypes, simulated and priced, their load added on one clock.

    from sim.fleets import load_fleet, run_fleet
    result = run_fleet(load_fleet("fleets/small-apps.yaml", ["apps=20"]))
    result.apps; result.load; result.capacity

One concept per module: :mod:`.fleet_file` (files, drawing apps), :mod:`.distributions` (per-app draws),
:mod:`.worker` (one app), :mod:`.runner` (the coordinator and the outputs), :mod:`.load` (load on the common
clock and the capacity it implies), :mod:`.plots`. The tuner (``sim tune``) lives beside them: :mod:`.tune_file`,
:mod:`.tune_problem`, :mod:`.tune_eval`, :mod:`.tune_search`, :mod:`.tune_report`, :mod:`.tune` (the command).
"""

from sim.fleets.fleet_file import Fleet, load_fleet
from sim.fleets.runner import FleetResult, run_fleet

__all__ = ["Fleet", "FleetResult", "load_fleet", "run_fleet"]
