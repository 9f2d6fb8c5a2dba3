"""Plans act during the mobile run: rate limit with retries, notifications, throttling, 10 % concurrency rule."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from sim.pricing.plan import load_plan
from sim.pricing.pricing import price
from sim.pricing.usage import usage_from_dict
from sim.scenario import load_scenario
from sim.simulate import simulate
from sim.world.enforcer import Enforcer
from sim.world.plan_enforcer import PlanEnforcer

FIXED = ["messaging.size.distribution=fixed", "messaging.size.mean_bytes=60", "messaging.media_fraction=0"]


def quick(*sets: str):
    return load_scenario("scenarios/quick.yaml", sets=list(sets))


def run(sc, enforcer=None, **kw):
    r = simulate(sc, progress=False, raise_errors=True, enforcer=enforcer, **kw)
    return r.usage, r.usage["counts"]


def without_enforcement(usage: dict) -> dict:
    return {k: v for k, v in usage.items() if k != "enforcement"}


def conserved(c: dict) -> bool:
    return c["stored_at_start"] + c["messages_sent"] == (c["delivered"] + c["stored"] + c["expired"] + c["dropped"] + c["rejected"]
                                  + c["discarded"])


class Spy(PlanEnforcer):
    """Records what the world offered and what the enforcer decided, day by day."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.offered: list[np.ndarray] = []
        self.decided: list = []

    def admit_messages(self, t_ms, sender, fanout):
        self.offered.append((np.array(t_ms), np.array(fanout)))
        res = super().admit_messages(t_ms, sender, fanout)
        self.decided.append(res)
        return res


@pytest.fixture(scope="module")
def unrestricted():
    return run(quick(*FIXED))[0]


def test_rate_limit_without_retries_rejects_exactly_the_excess(unrestricted):
    spy = Spy(message_rate=3.7, retries=0)          # 3 messages per second across the app
    usage, c = run(quick(*FIXED), spy)
    over = copies_over = 0
    for t, fan in spy.offered:
        sec = t // 1000
        rank = np.arange(sec.size) - np.searchsorted(sec, sec)     # position inside its second (t sorted)
        over += int((rank >= 3).sum())
        copies_over += int(fan[rank >= 3].sum())
    assert over > 1000
    assert c["messages_rejected"] == over and c["rejected"] == c["rejected_message_rate"] == copies_over
    assert c["rejected_attempts"] == over and c["message_retries"] == 0
    # every offered message is originated or rejected, and every recipient copy of it is counted as sent (the
    # world is not the unrestricted one from the second day on: rejected messages prompt fewer launches)
    assert c["messages_originated"] == sum(t.size for t, _ in spy.offered) - over
    assert c["messages_sent"] == sum(int(fan.sum()) for _, fan in spy.offered)
    base = unrestricted["counts"]["messages_originated"]
    assert abs(c["messages_originated"] + over - base) < 0.02 * base
    assert conserved(c)
    assert usage["enforcement"]["rejected"] == {"message_rate": copies_over}
    # a refused upload still crosses the wire: inbound payload of every attempt
    assert usage["breakdown"]["inbound"]["payload"] == 60 * (c["messages_originated"] + c["rejected_attempts"])


def test_rate_limit_with_retries_never_exceeds_the_cap_and_conserves():
    spy = Spy(message_rate=3, retries=3, backoff_s=1.0)
    usage, c = run(quick(*FIXED), spy)
    admitted = 0
    for (t, _), adm in zip(spy.offered, spy.decided, strict=True):
        if adm is None:
            assert np.bincount(t // 1000).max() <= 3
            admitted += t.size
            continue
        sec = adm.t[adm.keep] // 1000
        assert np.bincount(sec).max() <= 3                      # the cap holds, retries included
        assert (adm.t[adm.keep] >= t[adm.keep]).all()          # a retry only ever goes through later
        refused_sec = np.unique(adm.attempt_t // 1000)         # work-conserving: a refusal means a full second
        assert (np.bincount(sec, minlength=refused_sec.max() + 1)[refused_sec] == 3).all()
        admitted += int(adm.keep.sum())
    assert c["messages_originated"] == admitted
    assert c["message_retries"] > 0 and c["rejected"] > 0
    assert c["rejected_attempts"] == c["messages_rejected"] + c["message_retries"]
    assert conserved(c)
    assert usage["breakdown"]["inbound"]["payload"] == 60 * (c["messages_originated"] + c["rejected_attempts"])


def test_limits_far_above_usage_leave_the_run_bit_identical(unrestricted):
    plan = load_plan("mesibo-cloud")                    # rate limit 0.5 % x users: with 10^9 users, never reached
    e = PlanEnforcer.from_plan(plan, users=10**9)
    usage, _ = run(quick(*FIXED), e)
    assert without_enforcement(usage) == unrestricted
    assert not e.binds and usage["enforcement"]["rejected"] == {} and usage["enforcement"]["notifications"]


def test_dry_run_admits_everything_and_reports_what_would_bind(unrestricted):
    # mesibo-free's rate is 0.5 % of the users per second, at least 10/s; a 0.3 share of it: 3 messages per second
    e = PlanEnforcer.from_plan(load_plan("mesibo-free"), users=600, dry_run=True, rate_scale=0.3)
    usage, _ = run(quick(*FIXED), e)
    assert without_enforcement(usage) == unrestricted
    rep = usage["enforcement"]
    assert e.binds and rep["dry_run"] and rep["rejected"]["message_rate"] > 0
    assert rep["throttled_from"] is not None and rep["rejected"]["throttled"] > 0


@pytest.mark.parametrize("plan_name", ["mesibo-free", "mesibo-cloud"])
def test_notification_times_equal_pricing(plan_name):
    plan = load_plan(plan_name)
    e = PlanEnforcer.from_plan(plan, users=10**9)
    usage, _ = run(quick("simulation.days=3"), e)  # 3 days: both thresholds of two meters are crossed
    bill = price(usage_from_dict(without_enforcement(usage)), plan)
    ours = [(n["meter"], n["threshold"], datetime.fromisoformat(n["at"])) for n in usage["enforcement"]["notifications"]]
    theirs = [(n.meter, n.threshold, n.at) for n in bill.notifications]
    assert len(ours) >= 4 and ours == theirs


def test_throttling_starts_after_grace_and_only_past_a_free_limit():
    plan = load_plan("mesibo-free")                     # throttled to 1 message/s, 24 h after the last notification
    spy = Spy.from_plan(plan, users=10**9)
    usage, c = run(quick("simulation.days=3"), spy)
    rep = usage["enforcement"]
    start = datetime.fromisoformat(rep["throttled_from"])
    bill = price(usage_from_dict(without_enforcement(usage)), plan)
    exceeded = {v.meter: v.at for v in bill.violations if v.at is not None}
    assert exceeded
    # some free limit was passed before throttling, and 24 h had gone by since its last notification
    ok = [m for m, at in exceeded.items()
          if at <= start and max(n.at for n in bill.notifications if n.meter == m) + timedelta(hours=24) <= start]
    assert ok
    t0 = int((start - datetime.fromisoformat(usage["period"]["start"])).total_seconds() * 1000)
    for (t, _), adm in zip(spy.offered, spy.decided, strict=True):
        if adm is None:
            assert t[0] // 86_400_000 * 86_400_000 + 86_400_000 <= t0
            continue
        acc = adm.t[adm.keep]
        assert np.bincount(acc[acc >= t0] // 1000).max(initial=0) <= 1
        assert (adm.attempt_t >= t0).all()              # nothing refused before throttling (no rate limit here)
    assert c["rejected_throttled"] == c["rejected"] > 0 and rep["rejected"] == {"throttled": c["rejected"]}
    assert conserved(c)


def test_no_throttling_below_the_free_limits():
    e = PlanEnforcer.from_plan(load_plan("mesibo-free"), users=10**9)
    usage, c = run(quick("population.users=300"), e)    # 300 MAU, a few MB: every free limit far away
    assert usage["enforcement"]["throttled_from"] is None and c["rejected"] == 0 and not e.binds


def test_concurrency_rule_bills_ten_times_peak_ccu():
    # An app people keep open (15-minute sessions, one time zone): peak CCU well above 10 % of MAU.
    usage, _ = run(quick("activity.session_mean_s=900", "population.timezones=utc"))
    peak = max(usage["meters"]["peak_ccu"]["values"])
    mau = sum(usage["meters"]["mau"]["values"])
    assert peak > 0.10 * mau
    bill = price(usage_from_dict(usage), load_plan("mesibo-cloud"))
    line = next(ln for ln in bill.lines if ln.meter == "mau")
    assert line.quantity == 10 * peak and line.billable == 10 * peak - 1000


class _Cut(Enforcer):
    """Suspends the app for minute 720; lets the store take only every other copy."""

    def suspensions(self, day_start_ms, day_end_ms, messages_per_minute, connections_per_minute):
        a = day_start_ms + 720 * 60_000
        return [(a, a + 60_000)]

    def admit_storage(self, t_ms, nbytes, stored_level_bytes):
        return np.arange(t_ms.size) % 2 == 0


def test_suspension_rejections_and_discards_are_conserved():
    usage, c = run(quick("simulation.days=1"), _Cut())
    assert c["rejected_suspended"] == c["rejected"] > 0 and c["discarded"] == c["discarded_storage"] > 0
    assert conserved(c)


def test_mobile_enforcer_is_not_given_to_the_iot_fleet():
    sc = load_scenario("scenarios/iot-trackers.yaml", sets=["simulation.days=1", "iot.devices=20"])
    plain, _ = run(sc)
    usage, _ = run(sc, PlanEnforcer(message_rate=1e9))
    assert without_enforcement(usage) == plain
