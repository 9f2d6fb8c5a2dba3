"""A daily message quota (``measure: messages_per_day``) refuses traffic past the UTC day's units instead of billing it.

Hand-computed cases on the enforcer (the fast engine's day batch and the events engine's message-by-message rule
on the same arrays, which must agree message for message), the reset at 00:00 UTC in a period of another zone,
``counts: originated_and_delivered``, the rate limit before the quota, dry runs, billing months; then full small
runs of both engines under a plan file whose quota binds (conservation, counts = report) and the plan row's
validation errors.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
import simpy
from conservation import mobile_balance

from sim.errors import InputError
from sim.pricing.plan import load_plan, plan_from_dict
from sim.scenario import load_scenario
from sim.simulate import simulate
from sim.world.enforcer import REJECT_REASONS, Admission, Enforcer, Shifted
from sim.world.events.client import later
from sim.world.events.server import MessageRateLimit
from sim.world.plan_enforcer import DailyQuota, PlanEnforcer

H = 3_600_000
UTC_START = datetime(2026, 11, 1, tzinfo=UTC)
NY_START = datetime(2026, 6, 1, tzinfo=timezone(timedelta(hours=-4)))   # New York in June (EDT): 00:00 = 04:00 UTC


def enforcer(*quotas: DailyQuota, start: datetime = UTC_START, **kw) -> PlanEnforcer:
    e = PlanEnforcer("p", quotas=quotas, **kw)
    e.begin(start, 3 * 1440)
    return e


def plan_doc(**row) -> dict:
    return {"name": "quota", "description": "a daily message quota", "metrics": {},
            "restrictions": {"daily": {"scope": "app", "measure": "messages_per_day", "action": "reject", **row}}}


# -- the events engine's rule, on the same arrays -------------------------------------------------------------


class _World:
    """What :class:`MessageRateLimit` needs of the events world: a SimPy clock, the enforcer, the day logs."""

    def __init__(self, enf: Enforcer) -> None:
        self.env = simpy.Environment()
        self.enforcer = enf
        self.dry_run = bool(getattr(enf, "dry_run", False))
        self.refused: list[tuple[int, int]] = []
        self.rejected: dict[str, int] = {}
        self.counts: dict[str, int] = {}

    def reject(self, reason: str, copies: int, notify: bool = True) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def count(self, name: str, k: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + k


class _Client:
    def __init__(self, user: int) -> None:
        self.user = user


class _Server:
    """Clients offering each message at its time; an accepted attempt is remembered with its time."""

    def __init__(self, enf: Enforcer) -> None:
        self.w = _World(enf)
        self.rate = MessageRateLimit(self)
        self.accepted: dict[int, int] = {}

    def originate(self, client, t, size, store, rcpts, quiet, attempt=0):
        if self.rate.admit(client, t, size, store, rcpts, quiet, attempt):
            self.accepted[client.user] = t


def events_engine(enf: Enforcer, t, fanout, sizes):
    """Offer message i at ``t[i]`` (``fanout[i]`` recipients) to the events engine's admission, on a SimPy clock."""
    srv = _Server(enf)
    env = srv.w.env
    for i, (ti, f, s) in enumerate(zip(t.tolist(), fanout.tolist(), sizes.tolist(), strict=True)):
        later(env, ti, lambda i=i, f=f, s=s: srv.originate(_Client(i), env.now, s, True, list(range(f)), None))
    env.run()
    return srv


def both_engines(make, t, fanout, sizes):
    """The fast engine's Admission and the events engine's outcome, each from a fresh enforcer ``make()``."""
    fast_e, ev_e = make(), make()
    adm = fast_e.admit_messages(t, np.zeros(t.size, dtype=np.int64), fanout, sizes=sizes)
    srv = events_engine(ev_e, t, fanout, sizes)
    return fast_e, adm, ev_e, srv


def assert_same(adm: Admission | None, srv: _Server, n: int, fast_e: PlanEnforcer, ev_e: PlanEnforcer) -> None:
    keep = np.ones(n, dtype=bool) if adm is None else adm.keep
    when = None if adm is None else adm.t
    assert sorted(srv.accepted) == np.flatnonzero(keep).tolist()
    if when is not None:
        assert all(srv.accepted[i] == int(when[i]) for i in srv.accepted)
    fast_att = [] if adm is None else sorted(adm.attempt_t.tolist())
    assert sorted(t for t, _ in srv.w.refused) == fast_att
    for key in ("rejected", "rejected_messages", "refused_attempts", "quota_days"):
        assert fast_e.report[key] == ev_e.report[key], key


# -- hand-computed ---------------------------------------------------------------------------------------------


def test_reason_codes_keep_their_values():
    assert REJECT_REASONS[:4] == ("message_rate", "throttled", "suspended", "enforcer")
    assert REJECT_REASONS[-1] == "daily_quota"


def test_size_units_hand_computed_and_the_quota_stays_exhausted():
    # 10 units a day, 4 KB units: 100 B = 1 unit, 5000 B = 2, 9000 B = 3
    t = np.array([1, 2, 3, 4, 5, 6, 7]) * H + np.array([0, 0, 0, 0, 0, 0, 0])
    sizes = np.array([100, 5000, 9000, 9000, 5000, 100, 100])
    # used: 1, 3, 6, 9, then 5000 B would make 11 > 10: refused, and so is everything after it that day (the 100 B
    # messages would fit the one unit left, but the quota is exhausted)
    t = np.r_[t, 24 * H + 1000]                     # the next UTC day: a fresh quota
    sizes = np.r_[sizes, 9000]
    fan = np.ones(t.size, dtype=np.int64)

    def make():
        return enforcer(DailyQuota("daily", 10, unit_bytes=4096))

    fast_e, adm, ev_e, srv = both_engines(make, t, fan, sizes)
    assert adm.keep.tolist() == [True, True, True, True, False, False, False, True]
    assert adm.reason.tolist() == [0, 0, 0, 0, 5, 5, 5, 0]
    assert sorted(adm.attempt_msg.tolist()) == [4, 5, 6]          # refused once each, never retried
    assert adm.attempt_t.tolist() == (t[[4, 5, 6]]).tolist()
    rep = fast_e.report
    assert rep["rejected_messages"] == {"daily_quota": 3} and rep["refused_attempts"] == {"daily_quota": 3}
    assert rep["quota_days"] == [{"day": "2026-11-01", "used": 9, "limit": 10,
                                  "reached_at": "2026-11-01T05:00:00+00:00", "rejected": 3}]
    assert fast_e.binds
    assert_same(adm, srv, t.size, fast_e, ev_e)


def test_exactly_full_day_is_reached_by_the_last_accepted_message():
    t = np.array([1, 2, 3]) * H
    fan = np.ones(3, dtype=np.int64)
    e = enforcer(DailyQuota("daily", 2))
    adm = e.admit_messages(t, np.zeros(3, dtype=np.int64), fan)   # no sizes: one unit each
    assert adm.keep.tolist() == [True, True, False]
    assert e.report["quota_days"][0]["reached_at"] == "2026-11-01T02:00:00+00:00"
    assert e.report["quota_days"][0]["used"] == 2


def test_the_quota_resets_at_midnight_utc_not_local():
    # a period in New York (EDT, UTC-4): the UTC day turns at 20:00 local; the world's days (local midnights) and
    # the calls of a day batch do not reset it
    day0 = np.array([1 * H, 2 * H, 3 * H, 20 * H - 1, 20 * H, 21 * H])
    day1 = np.array([24 * H + H, 24 * H + 2 * H])   # 01:00 and 02:00 local on the next day: the same UTC day as 20:00
    q = DailyQuota("daily", 3)

    fast_e = enforcer(q, start=NY_START)
    a0 = fast_e.admit_messages(day0, np.zeros(6, dtype=np.int64), np.ones(6, dtype=np.int64))
    a1 = fast_e.admit_messages(day1, np.zeros(2, dtype=np.int64), np.ones(2, dtype=np.int64))
    # UTC 2026-06-01: 01:00, 02:00, 03:00 local accepted; 19:59:59.999 refused. UTC 2026-06-02 from 20:00 local:
    # 20:00, 21:00, next day 01:00 accepted, 02:00 refused
    assert a0.keep.tolist() == [True, True, True, False, True, True]
    assert a1.keep.tolist() == [True, False]
    days = fast_e.report["quota_days"]
    assert [d["day"] for d in days] == ["2026-06-01", "2026-06-02"]
    assert days[1]["reached_at"] == "2026-06-02T05:00:00+00:00" and days[1]["rejected"] == 1   # 01:00 local
    ev_e = enforcer(q, start=NY_START)
    got = [ev_e.quota_admit(int(t), 100, 1) for t in np.r_[day0, day1]]
    assert [g is None for g in got] == [*a0.keep.tolist(), *a1.keep.tolist()]
    assert ev_e.report["quota_days"] == days


def test_originated_and_delivered_counts_each_copy():
    # units = chunks x (1 + fan-out): 1 x 2, 1 x 4, 2 x 3 (5000 B to 2 recipients) -> used 2, 6, 12 (the limit,
    # accepted); the last, 1 x 2, would make 14: refused
    t = np.array([1, 2, 3, 4]) * H
    fan = np.array([1, 3, 2, 1])
    sizes = np.array([100, 100, 5000, 100])
    make = lambda: enforcer(DailyQuota("daily", 12, unit_bytes=4096, delivered=True))  # noqa: E731
    fast_e, adm, ev_e, srv = both_engines(make, t, fan, sizes)
    assert adm.keep.tolist() == [True, True, True, False]
    assert fast_e.report["rejected"] == {"daily_quota": 1} and fast_e.report["quota_days"][0]["used"] == 12
    assert_same(adm, srv, t.size, fast_e, ev_e)
    # the plan field reaches the enforcer
    plan = plan_from_dict(plan_doc(limit=12, unit_bytes=4096, counts="originated_and_delivered"))
    q = PlanEnforcer.from_plan(plan, users=100).quotas
    assert q == (DailyQuota("daily", 12.0, 4096, True),)


def test_the_quota_applies_after_the_rate_limit_in_order_of_accepted_times():
    # 1 message per second, retries with 1.5 s back-off: message 1 (refused at 10 ms) retries at 1510 ms, but
    # message 2 took second 1 at 1500 ms; its second retry at 4510 ms goes through. Accepted in time order: 0, 2, 1.
    # A quota of 2 then refuses message 1 (the last accepted), not message 2.
    t = np.array([0, 10, 1500, 30_000, 32_000])
    fan = np.ones(5, dtype=np.int64)
    sizes = np.full(5, 100)

    def make():
        return enforcer(DailyQuota("daily", 2), message_rate=1, retries=2, backoff_s=1.5)

    fast_e, adm, ev_e, srv = both_engines(make, t, fan, sizes)
    assert adm.keep.tolist() == [True, False, True, False, False]
    names = [REJECT_REASONS[c - 1] if c else None for c in adm.reason.tolist()]
    assert names == [None, "daily_quota", None, "daily_quota", "daily_quota"]
    assert adm.t[2] == 1500 and adm.t[1] == 4510
    # refused attempts: message 1 at 10 and 1510 (rate), at 4510 (quota); 3 and 4 by the quota
    assert sorted(adm.attempt_t.tolist()) == [10, 1510, 4510, 30_000, 32_000]
    assert fast_e.report["refused_attempts"] == {"message_rate": 2, "daily_quota": 3}
    assert_same(adm, srv, t.size, fast_e, ev_e)


def test_the_two_engines_refuse_the_same_messages_on_random_traffic():
    rng = np.random.default_rng(5)
    n = 600
    # unique ms residues: no retry ever lands on another attempt's instant, so ties cannot order the engines apart
    t = np.sort(rng.integers(0, 40, n) * 1000 + rng.choice(1000, n, replace=False)) + 20 * H - 20_000
    fan = rng.integers(1, 5, n)
    sizes = rng.integers(10, 12_000, n)
    for start in (UTC_START, NY_START):       # NY: the UTC day turns 20 s into the traffic
        for delivered in (False, True):
            def make(start=start, delivered=delivered):
                return enforcer(DailyQuota("daily", 900 if delivered else 300, unit_bytes=4096, delivered=delivered),
                                message_rate=14, retries=2, backoff_s=1.0, start=start)

            fast_e, adm, ev_e, srv = both_engines(make, t, fan, sizes)
            assert adm is not None and (adm.reason == 5).sum() > 20 and (adm.reason == 1).sum() > 0
            assert_same(adm, srv, n, fast_e, ev_e)


def test_dry_run_records_without_acting():
    t = np.array([1, 2, 3, 4]) * H
    fan = np.full(4, 2)
    sizes = np.full(4, 100)
    e = enforcer(DailyQuota("daily", 2), dry_run=True)
    assert e.admit_messages(t, np.zeros(4, dtype=np.int64), fan, sizes=sizes) is None
    assert e.report["rejected"] == {"daily_quota": 4} and e.report["rejected_messages"] == {"daily_quota": 2}
    assert e.binds and e.report["quota_days"][0]["rejected"] == 2
    ev = enforcer(DailyQuota("daily", 2), dry_run=True)
    srv = events_engine(ev, t, fan, sizes)
    assert sorted(srv.accepted) == [0, 1, 2, 3] and srv.w.refused == []       # the world admits everything
    assert ev.report["rejected_messages"] == {"daily_quota": 2} and ev.binds


def test_wrappers_forward_sizes_and_the_quota_hook():
    e = enforcer(DailyQuota("daily", 3, unit_bytes=1000))
    s = Shifted(e, 2 * 86_400_000, 0)
    t = np.array([1, 2]) * H + 2 * 86_400_000
    adm = s.admit_messages(t, np.zeros(2, dtype=np.int64), np.ones(2, dtype=np.int64), sizes=np.array([1500, 1500]))
    assert adm.keep.tolist() == [True, False] and adm.attempt_t.tolist() == [t[1]]
    assert s.quota_admit(int(t[1]) + 1, 500, 1) == "daily_quota"      # exhausted for the rest of the UTC day

    class Old(Enforcer):   # an enforcer written before `sizes`: still called as it was
        def admit_messages(self, t_ms, sender, fanout):
            return np.ones(len(t_ms), dtype=bool)

    assert Shifted(Old(), 0, 0).admit_messages(t, t, t, sizes=t).all()


def test_billing_months_continue_the_utc_day():
    """Months of a run in New York start at local midnight (04:00 UTC): the UTC day they start in is counted whole."""
    from sim.months.enforcer import Monthly

    bounds = [NY_START + timedelta(days=k) for k in (0, 2, 4)]

    def make(key, start, minutes):
        return PlanEnforcer("p", quotas=(DailyQuota("daily", 3),))

    for hook in ("batch", "event"):
        m = Monthly(make, bounds)
        before = np.array([45, 46]) * H         # 21:00, 22:00 local on day 1 (month 0): UTC day 2026-06-03
        after = np.array([48 * H + 60_000, 48 * H + 120_000])   # 00:01, 00:02 local on day 2 (month 1): the same
        if hook == "batch":
            one = np.ones(2, dtype=np.int64)
            assert m.admit_messages(before, one, one) is None
            m.day_end(48 * H, lambda since=0: {})
            adm = m.admit_messages(after, one, one)
            assert adm.keep.tolist() == [True, False]
        else:
            assert [m.quota_admit(int(x), 10, 1) for x in (*before, *after)] == [None, None, None, "daily_quota"]
        rep = m.report
        assert rep["rejected_messages"] == {"daily_quota": 1}
        assert rep["quota_days"] == [{"day": "2026-06-03", "used": 3, "limit": 3,
                                      "reached_at": "2026-06-03T04:01:00+00:00", "rejected": 1}]


def test_a_sampled_run_gets_its_share_of_the_quota():
    from sim.comparison import mobile_enforcer

    plan = plan_from_dict(plan_doc(limit_per_mau=20))
    sc = load_scenario("scenarios/quick.yaml", ["population.users=10000", "population.sample=2500"])
    e = mobile_enforcer(plan, sc, False)
    assert e.quotas[0].limit == pytest.approx(20 * 10_000 * 0.25) and e.rate_cap is None
    full = mobile_enforcer(plan, load_scenario("scenarios/quick.yaml", ["population.users=10000"]), False)
    assert full.quotas[0].limit == 200_000
    # without a known share (rate_scale None, no quota_scale) the quota is not enforced, and says so
    assert PlanEnforcer.from_plan(plan, users=100, rate_scale=None).report["unsupported"] == ["daily"]


def test_the_iot_fleet_lists_the_quota_as_not_modelled():
    from sim.world.iot.enforcer import IotPlanLimits

    lim = IotPlanLimits.from_plan(plan_from_dict(plan_doc(limit=10)))
    assert [r["restriction"] for r in lim.not_modelled] == ["daily"]
    assert "daily message quota" in lim.not_modelled[0]["reason"]


# -- full runs -------------------------------------------------------------------------------------------------

CALM = ["population.users=400", "simulation.days=2", "messaging.rate_sigma=0", "activity.session_rate_sigma=0",
        "population.dau_over_mau=1"]


def quota_plan_file(tmp_path, **row):
    import yaml

    path = tmp_path / "quota.yaml"
    path.write_text(yaml.safe_dump(plan_doc(**row)))
    return load_plan(path)


def quota_run(plan, engine: str, *sets: str, seed: int = 1):
    from sim.comparison import mobile_enforcer

    sc = load_scenario("scenarios/quick.yaml", [f"engine={engine}", *CALM, *sets])
    e = mobile_enforcer(plan, sc, False)
    r = simulate(sc, seed=seed, progress=False, raise_errors=True, enforcer=e)
    return r, e


def check_run(r, e, limit: float) -> None:
    c, rep = r.usage["counts"], r.usage["enforcement"]
    assert mobile_balance(c) == 0                                   # every copy delivered, stored, ... or rejected
    assert c["rejected_daily_quota"] == c["rejected"] == rep["rejected"]["daily_quota"] > 0
    assert c["messages_rejected"] == rep["rejected_messages"]["daily_quota"]
    assert c["rejected_attempts"] == rep["refused_attempts"]["daily_quota"] == c["messages_rejected"]
    assert c.get("message_retries", 0) == 0                          # refused once, never retried
    days = rep["quota_days"]
    assert days and sum(d["rejected"] for d in days) == c["messages_rejected"]
    # one unit a message: a reached day used exactly the limit
    assert all(d["used"] == d["limit"] == limit for d in days)
    assert e.binds and rep == e.report


@pytest.mark.parametrize("engine", ["fast", "events"])
def test_a_full_run_under_a_binding_quota_conserves_and_counts_match(tmp_path, engine):
    plan = quota_plan_file(tmp_path, limit_per_mau=25)
    r, e = quota_run(plan, engine)
    check_run(r, e, 10_000)
    # each UTC day (the period starts at 00:00 UTC) originated at most the limit
    per_min = np.asarray(r.frame["messages_originated"])
    assert all(per_min[d * 1440:(d + 1) * 1440].sum() <= 10_000 for d in range(2))


def test_a_run_in_new_york_counts_utc_days(tmp_path):
    plan = quota_plan_file(tmp_path, limit=4000)
    r, e = quota_run(plan, "fast", "simulation.tz=America/New_York", "simulation.start=2026-06-01T00:00:00-04:00")
    check_run(r, e, 4000)
    assert r.usage["period"]["start"].startswith("2026-06-01T04:00:00")
    # UTC days 06-01 (from 00:00 local = 04:00 UTC) to 06-03 (ends 20:00 local on the second day)
    assert {d["day"] for d in e.report["quota_days"]} <= {"2026-06-01", "2026-06-02", "2026-06-03"}
    per_min = np.asarray(r.frame["messages_originated"])
    edges = [0, 20 * 60, 44 * 60, 48 * 60]                          # the UTC midnights, in minutes of the period
    assert all(per_min[a:b].sum() <= 4000 for a, b in zip(edges[:-1], edges[1:], strict=True))


def test_both_engines_reject_consistent_shares(tmp_path):
    """Different behaviour draws, the same app: the rejected share agrees within what the engines' volumes allow
    (calm users: a run's daily volume varies by ~1 %, so the share, 1 - limit / volume, by less than 1 point)."""
    plan = quota_plan_file(tmp_path, limit_per_mau=25)
    shares = {}
    for engine in ("fast", "events"):
        r, _ = quota_run(plan, engine)
        c = r.usage["counts"]
        shares[engine] = c["messages_rejected"] / (c["messages_originated"] + c["messages_rejected"])
    assert 0.2 < shares["fast"] < 0.6
    assert abs(shares["fast"] - shares["events"]) < 0.02


def test_comparison_reports_the_quota(tmp_path):
    """run_plans: the probe sees the quota bind, the own run enforces it, the issue lists the reason and the days."""
    from sim import yamlio
    from sim.comparison import run_plans
    from sim.pricing.plan import resolve_plan_path
    from sim.summary import enforcement_lines

    path = resolve_plan_path("mesibo-cloud")
    doc = yamlio.parse(yamlio.read_text(path, "plan file"), str(path))
    doc["name"] = "mesibo-cloud-quota"
    doc["restrictions"]["daily"] = plan_doc(limit=5000)["restrictions"]["daily"]
    plan = plan_from_dict(doc)
    sc = load_scenario("scenarios/quick.yaml", CALM)
    _, (out,) = run_plans(sc, [plan], progress=False)
    assert out.binds and out.enforced
    assert out.enforcement["rejected"]["daily_quota"] > 0 and out.row()["rejected"] > 0
    assert out.enforcement["quota_days"]
    lines = enforcement_lines(out.enforcement)
    assert any("daily_quota" in ln for ln in lines) and any("daily quota reached" in ln for ln in lines)


# -- validation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("row", "problem"), [
    ({"limit": 10, "unit_bytes": 0}, "unit_bytes must be a positive"),
    ({"limit": 10, "unit_bytes": -4}, "unit_bytes must be a positive"),
    ({"limit": 10, "unit_bytes": 2.5}, "restrictions.daily.unit_bytes"),
    ({"limit": 10, "counts": "everything"}, "restrictions.daily.counts"),
    ({"limit": 10, "action": "suspend", "duration": "1min"}, "action"),
    ({"limit": 10, "measure": "messages_per_second", "unit_bytes": 4096}, "unit_bytes goes with measure messages_per_day"),
    ({"limit": 10, "measure": "messages_per_second", "counts": "originated"}, "counts goes with measure messages_per_day"),
])
def test_bad_quota_rows_name_the_field(row, problem):
    with pytest.raises(InputError) as exc:
        plan_from_dict(plan_doc(**row), "bad.yaml")
    msg = str(exc.value)
    assert "bad.yaml" in msg and problem in msg and "\n" not in msg
