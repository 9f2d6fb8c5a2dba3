"""The ``fast`` engine for mobile chat clients: the world evaluated in bulk with numpy, one day at a time.

Why this shape: a month of a 100K-user app is ~10^7 connections and ~10^8 message copies, too many for
one SimPy event each. SimPy ticks the day clock (:mod:`world`); within a day every per-user state
machine is evaluated for all users at once: :mod:`sessions` (foreground use), :mod:`push` (wake-ups
and their throttles), :mod:`messaging` (messages, fan-out, routing against timelines), :mod:`calls`.

The model's reference is the ``events`` engine (:mod:`sim.world.events`), one SimPy process per client;
``tests/test_engines_agree.py`` holds the two against each other. What both need - the population and
its social graph, OS timing, distributions, timelines, connection and message metering - lives one
level up in :mod:`sim.world`.
"""
