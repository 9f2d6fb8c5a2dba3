"""A discrete-event usage simulator and pricing engine for real-time messaging and IoT platforms.

Data flows one way: scenario -> world (SimPy) -> meters (usage) -> pricing (bill) -> reports.

Parts: :mod:`sim.scenario` (what to simulate), :mod:`sim.world` (the engines: ``fast`` in
:mod:`sim.world.mobile` and :mod:`sim.world.iot`, ``events`` in :mod:`sim.world.events`),
:mod:`sim.meters` (the meter book), :mod:`sim.pricing` (plans and bills, usable on its own),
:mod:`sim.experiments` (sweeps, replications, sensitivity), :mod:`sim.cli`.

The pricing half is usable on its own from a notebook::

    from sim.pricing import load_plan, load_usage, price
    bill = price(load_usage("usage.yaml"), load_plan("mesibo-cloud"))
    bill.to_dataframe()
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sim")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from sim.errors import InputError  # noqa: E402

__all__ = ["__version__", "InputError"]
