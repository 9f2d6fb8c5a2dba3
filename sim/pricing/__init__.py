"""The pricing engine: usage and a plan in, an explained bill out. It knows nothing of the simulator.

Data flows one way through it (the shape of OpenMeter's and Lago's billing code):

* :mod:`usage` and :mod:`period` read a usage document (meters over a billing period);
* :mod:`plan` reads a plan file (``plans/*.yaml``: metrics, charges, limits, notifications, terms) and
  :mod:`restrictions` its runtime limits (what a simulated world enforces during a run);
* :mod:`metering` turns meters into each metric's quantity, :mod:`rating` quantities into amounts, and
  :mod:`pricing` adds the adjustments (minimum, violations, notifications, billing schedule);
* :mod:`headroom` tells, for a free plan, how much of each limit the usage takes and the growth factor at
  which the app leaves the free tier (``headroom(usage, plan)``; exported here as ``sim.pricing.headroom``,
  the function, so import the module's other names with ``from sim.pricing.headroom import ...``);
* :mod:`bill` is the result, one explained line per charge, money in ``Decimal``; :mod:`report` prints
  bills side by side and :mod:`quote` is the seed's calculator.

Usable on its own from a notebook::

    from sim.pricing import load_plan, load_usage, price
    bill = price(load_usage("usage.yaml"), load_plan("mesibo-cloud"))
    bill.to_dataframe()
"""

from sim.pricing.headroom import headroom
from sim.pricing.plan import load_plan
from sim.pricing.pricing import price
from sim.pricing.usage import load_usage

__all__ = ["headroom", "load_plan", "load_usage", "price"]
