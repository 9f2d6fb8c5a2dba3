"""Push wake-ups: an offline recipient's phone is woken by FCM/APNs and the app connects briefly.

Why a throttle: iOS delivers only 2-3 background pushes per hour to an app (PF §4.2) and a woken app
connects for up to ~30 s, so one wake serves a burst of messages. The throttle is modelled as one wake
per recipient per *slot* of ``max(min_interval, wake_s)`` (slots phase-shifted per user): the first
message copy that finds the recipient offline in a slot triggers a connection
``[t + delay, t + delay + wake)``; later copies in the slot are delivered by that connection if it is
still up, else they wait for the recipient's next connection. This keeps the model vectorised
(one sort per day) while respecting the platforms' rate limits.

The default slot (4 h on both platforms) is a *calibration*, not a platform limit: the message model
draws every copy's recipient independently, so a user's ~60-80 incoming copies a day are spread
uniformly over the day instead of arriving in conversation bursts that one wake (or the session the
notification prompts) would collect. With 10-20 min slots that gave ~35 wake-ups per DAU per day and
~60 connections per DAU; with 4-h slots the default chat app has ~6-7 wake-ups and ~25 connections
per DAU per day, PF §6 reconnects_per_dau_per_day. The price: copies that miss their slot's wake wait
for the next connection, so delivery latency and the stored-bytes level are overstated.
"""

from __future__ import annotations

import numpy as np

from sim.scenario import Push
from sim.world.population import IOS, Population
from sim.world.timeline import KEY, PUSH, Intervals


def wake_intervals(pop: Population, recipient: np.ndarray, t: np.ndarray, cfg: Push) -> Intervals:
    """Connections opened by push wake-ups for copies that found their recipient offline."""
    if not cfg.enabled or recipient.size == 0:
        return Intervals.empty()
    wake = int(cfg.wake_s * 1000)
    slot_len = np.where(
        pop.platform[recipient] == IOS,
        int(max(cfg.min_interval_ios_s * 1000, wake)),
        int(max(cfg.min_interval_android_s * 1000, wake)),
    ).astype(np.int64)
    slot = (t + pop.push_phase_ms[recipient]) // slot_len
    key = recipient * KEY + t
    if key.size > 1 and not bool(np.all(key[1:] >= key[:-1])):
        order = np.argsort(key)  # slots grow with t, so (recipient, t) orders slots too
    else:
        order = np.arange(key.size)
    r, s = recipient[order], slot[order]
    first = np.ones(r.size, dtype=bool)
    first[1:] = (r[1:] != r[:-1]) | (s[1:] != s[:-1])
    idx = order[first]
    st = t[idx] + int(cfg.delay_s * 1000)
    return Intervals.new(recipient[idx], st, st + wake, PUSH)  # sorted by (recipient, start)
