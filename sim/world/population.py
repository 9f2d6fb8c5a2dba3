"""The user population: static per-user attributes drawn once per run.

Why separate: everything that does not change during the period (platform, time zone, how chatty a
user is, how often they open the app, whether the app keeps a background socket) is drawn here, so
that changing, say, the message model does not reshuffle who is on iOS. The social graph (contacts,
groups: :mod:`sim.world.conversations`) comes from a stream of its own.

Why one stream per attribute (``streams.generator("population", "platform")`` ...): every draw below is
element-wise (a uniform, or a log-normal, per user), so ``rng.random(n)`` for a larger ``n`` starts with
the same ``n`` values. Hence, for the same seed and replication (common random numbers in
:mod:`sim.experiments`), **growing ``population.users`` leaves every existing user's attributes
unchanged** (active or not, platform, time zone, message and session multipliers, background socket,
push phase, notifications off); the new users are appended. Changing a share instead (``device_mix``,
``monthly_active_fraction``, ``timezones``, ``push.disabled_fraction``) moves users across the threshold
on the same uniforms (inverse-CDF coupling), so only the users that must change do; a sigma change
rescales the same normal draws.

Not stable under a change of ``users``: the contact graph (:mod:`sim.world.conversations` draws it over
all active users at once), and the per-day draws of the world (sessions, messages, pushes in
:mod:`sim.world.mobile.world` and its submodules are drawn as arrays over all users of a day).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.rng import Streams
from sim.scenario import Scenario
from sim.world import conversations
from sim.world.conversations import Social
from sim.world.distributions import lognormal_mean_one

ANDROID, IOS = 0, 1
MS = 1000


def pool_users(sc: Scenario) -> int:
    """Everyone ever present in the run: ``population.users``, or with ``growth`` the pool of users who join
    and leave over the months (sim/world/growth.py)."""
    if sc.growth is None:
        return sc.population.users
    from sim.world import growth

    return growth.pool(sc.growth, sc.population.users, sc.simulation.months).n


def world_users(sc: Scenario) -> int:
    """The users the world simulates: the pool, or its first ``population.sample`` (a sampled growing app; without
    growth, sim/sampling.py ``world_scenario`` has already put the sample size in ``population.users``)."""
    n = pool_users(sc)
    s = sc.population.sample
    return n if sc.growth is None or s is None else min(int(s), n)


@dataclass
class Population:
    n: int
    active: np.ndarray  # bool: uses the app in this period at all
    active_ids: np.ndarray  # int64 ids of active users (recipients are drawn from these)
    platform: np.ndarray  # int8: ANDROID / IOS
    tz_ms: np.ndarray  # int64: UTC offset in ms
    msg_mult: np.ndarray  # float64: per-user message-rate multiplier, mean 1
    keeps_socket: np.ndarray  # bool: Android app keeps a background socket until Doze
    push_phase_ms: np.ndarray  # int64: phase of the user's push-throttle slots
    session_mult: np.ndarray  # float64: per-user foreground-session-rate multiplier, mean 1
    social: Social | None = None  # contacts and groups (sim.world.conversations), None = independent recipients
    push_off: np.ndarray | None = None  # bool: the user turned notifications off (never woken by a push)

    @classmethod
    def draw(cls, sc: Scenario, streams: Streams) -> Population:
        def uniform(name: str) -> np.ndarray:
            return streams.generator("population", name).random(n)

        n = world_users(sc)
        active = uniform("active") < sc.population.monthly_active_fraction
        mix = sc.population.device_mix
        platform = (uniform("platform") < mix["ios"]).astype(np.int8)
        tz = sc.population.timezones
        offsets = np.array(list(tz.keys()), dtype=np.float64)
        weights = np.array(list(tz.values()), dtype=np.float64)
        cdf = np.cumsum(weights / weights.sum())
        pick = np.minimum(np.searchsorted(cdf, uniform("timezone"), side="right"), len(offsets) - 1)
        tz_ms = np.round(offsets[pick] * 3600 * MS).astype(np.int64)
        msg_mult = lognormal_mean_one(streams.generator("population", "message_rate"), sc.messaging.rate_sigma, n)
        keeps = (platform == ANDROID) & (uniform("keeps_socket") < sc.os.android.keeps_background_socket)
        phase = (uniform("push_phase") * 86_400 * MS).astype(np.int64)
        sess_mult = lognormal_mean_one(streams.generator("population", "session_rate"),
                                       sc.activity.session_rate_sigma, n)
        ids = np.flatnonzero(active).astype(np.int64)
        social = None
        cv = sc.messaging.conversations
        if cv.enabled:
            # its own stream: the graph never shifts the draws above (nor they it)
            social = conversations.build(cv, sc.messaging.group_recipients_mean, sc.messaging.group_recipients_max,
                                         ids, n, msg_mult * sess_mult, streams.generator("conversations"))
        push_off = streams.generator("push_users").random(n) < sc.push.disabled_fraction
        return cls(n, active, ids, platform, tz_ms, msg_mult, keeps, phase, sess_mult, social, push_off)
