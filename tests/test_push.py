"""Push wake-ups: bursts, throttled slots, and what the throttle remembers across midnight."""

from __future__ import annotations

import numpy as np

from sim.rng import Streams
from sim.scenario import validate_scenario
from sim.world.mobile.push import PushState, wake_intervals
from sim.world.population import ANDROID, IOS, Population


def two_users():
    sc = validate_scenario({"name": "p", "population": {"users": 2}})
    pop = Population.draw(sc, Streams(1))
    pop.platform[:] = [ANDROID, IOS]
    pop.push_phase_ms[:] = 0
    return sc, pop


def test_android_burst_is_one_connection_from_first_copy_to_wake_after_last():
    sc, pop = two_users()
    t = np.array([10_000, 25_000, 50_000, 200_000])           # 15 s and 25 s gaps (< 30 s), then 150 s
    iv = wake_intervals(pop, np.zeros(4, dtype=np.int64), t, sc.push)
    assert iv.start.tolist() == [12_000, 202_000]             # push delay 2 s
    assert iv.end.tolist() == [50_000 + 2_000 + 30_000, 200_000 + 32_000]


def test_a_burst_ends_at_its_own_last_copy_when_the_next_recipient_has_no_wake():
    # Regression: a burst's last copy was taken as the row before the next wake's first copy. When the next
    # recipient (an iPhone) had its slot's wake the day before, that row was the iPhone's copy: the Android
    # wake got another user's end (here earlier than its start, and the wake vanished).
    sc, pop = two_users()
    state = PushState(2)
    slot = 1_200_000  # iOS: one wake per 20 min
    state.last_slot[1] = 0
    rec = np.array([0, 1, 1], dtype=np.int64)
    t = np.array([900_000, 100_000, 150_000], dtype=np.int64)  # sorted by (recipient, time); user 1 in slot 0
    assert t[1] // slot == 0
    iv = wake_intervals(pop, rec, t, sc.push, state=state)
    assert iv.user.tolist() == [0]
    assert iv.start.tolist() == [902_000] and iv.end.tolist() == [932_000]


def test_a_throttled_slot_woken_yesterday_gets_no_second_wake_today():
    sc, pop = two_users()
    pop.push_phase_ms[1] = 600_000  # the iPhone's 20-min slots run from 23:50 to 00:10
    state = PushState(2)
    rec = np.array([1], dtype=np.int64)
    first = wake_intervals(pop, rec, np.array([86_390_000]), sc.push, state=state)    # 23:59:50
    again = wake_intervals(pop, rec, np.array([86_410_000]), sc.push, state=state)    # 00:00:10, same 20-min slot
    later = wake_intervals(pop, rec, np.array([87_700_000]), sc.push, state=state)    # the next slot
    assert len(first) == 1 and len(again) == 0 and len(later) == 1
    state.forget()
    assert len(wake_intervals(pop, rec, np.array([86_420_000]), sc.push, state=state)) == 1

