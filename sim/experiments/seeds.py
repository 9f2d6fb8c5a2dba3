"""Seeds and common random numbers (CRN).

Replication ``r`` of **every** design point runs with the same seed, :func:`run_seed` ``(root, r)``, which
depends on the study's root seed and the replication only, never on the point's configuration. Inside a run
every draw comes from a named stream (:class:`sim.rng.Streams`: purpose, user, day ...), so two points of
one replication see the same random numbers wherever their configurations agree, and the difference
between them is a *paired* comparison whose variance is far below that of independent runs
(tests/test_experiments.py measures it).

Why a derived seed rather than ``Streams(seed, replication)`` directly: :func:`sim.simulate.simulate`
builds its streams as ``Streams(seed)``, and the experiment layer sits above the pipeline and does not
reach into it. The replication key is used here instead, one level up: ``run_seed`` is drawn from
``Streams(root, replication=r).seed_sequence("experiments", "run")``, so replications are independent
streams of one family, and each row's ``seed`` reproduces that run exactly with
``sim run SCENARIO --seed SEED`` (plus the point's ``--set`` values).

What stays unchanged when a varied key changes (same replication):

* ``population.users`` grows: every existing user's static attributes (active, platform, time zone,
  message and session multipliers, background socket, push phase, notifications off) are unchanged and
  the new users are appended (:mod:`sim.world.population`). The contact graph and the per-day draws of
  the world (sessions, messages, pushes), which are drawn as arrays over all users, are *not* stable
  under a change of users: the paired difference still shares every other stream;
* a share (``device_mix``, ``monthly_active_fraction``, ``timezones``, ``push.disabled_fraction``):
  users cross the threshold on the same uniform draws, so only users who must change do;
* a protocol key (``protocol.tls``, certificate chain, tickets): the world's draws do not depend on the
  wire model at all, so the same sessions and messages are metered under another protocol.
"""

from __future__ import annotations

import numpy as np

from sim.rng import Streams

#: Largest seed handed out: 62 bits, so it fits a signed 64-bit column in Parquet and pandas.
SEED_BITS = 62


def run_seed(root: int, replication: int) -> int:
    """The seed of replication ``replication`` of every point of a study with root seed ``root``."""
    state = Streams(root, replication).seed_sequence("experiments", "run").generate_state(1, np.uint64)[0]
    return int(state) >> (64 - SEED_BITS)
