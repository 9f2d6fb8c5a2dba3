"""The simulated world, in two engines that share one model.

Data flows one way: scenario -> world -> :class:`sim.meters.MeterBook` -> usage document. The world
knows nothing of prices; a plan's limits act on it only through :class:`sim.world.enforcer.Enforcer`.

Engines (``engine:`` in the scenario; :func:`sim.simulate.make_world` picks one):

* :mod:`sim.world.mobile` and :mod:`sim.world.iot` - ``fast``: a day of every user (or device) at once in
  numpy, on a SimPy day clock;
* :mod:`sim.world.events` - ``events``: one SimPy process per client and device, the model's reference,
  open to custom client behaviour.

Shared by both (here, so that nothing is copied): :mod:`population` (static per-user draws) and
:mod:`conversations` (contacts, groups), :mod:`os_model` (iOS suspension, Android freezer and Doze
templates), :mod:`diurnal`, :mod:`distributions`, :mod:`timeline` (connection intervals),
:mod:`copies` (recipient copies and their outcomes), :mod:`connections` and :mod:`message_meter` (what
connections and copies cost, into the meter book), :mod:`enforcer`, :mod:`plan_enforcer` and
:mod:`rate_limit` (a plan's runtime limits).
"""

from sim.world.enforcer import Enforcer

__all__ = ["Enforcer"]
