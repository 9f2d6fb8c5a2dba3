"""The ``events`` engine: one SimPy process per client, the model's reference, open to custom clients.

Why this shape: the ``fast`` engine (:mod:`sim.world.mobile`) evaluates a day of every user in bulk,
which is what makes a month of 100K users take minutes; nothing in it can be checked by reading one
user's day. Here every client lives on the SimPy clock as its own process (:mod:`client`: connection
holds, TLS resumption, NAT deaths and reconnects; :mod:`mobile`: the scenario's chat user), a server
(:mod:`server`) routes, stores, pushes and enforces as each copy is sent, and :mod:`world` runs them
and meters what happened through the same meters as the fast engine. ``tests/test_engines_agree.py``
holds the two engines against each other.

Custom behaviour (:mod:`custom`): subclass :class:`Client` (or write a generator function taking one)
and name it in the scenario's ``clients`` list with its share of the users; ``engine: events`` runs it.
"""

from sim.world.events.client import Client

__all__ = ["Client"]
