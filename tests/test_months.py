"""Multi-month runs: month boundaries that do not show, growth that MAU follows, accounts that act on the world.

The ledger's arithmetic is tested rule by rule in tests/test_ledger.py and the invoice timeline in
tests/test_invoices.py; here the same rules are seen through whole runs (sim/months)."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import numpy as np
import pytest
from conservation import mobile_balance

from sim.cli import main
from sim.months.run import run_months
from sim.pricing.plan import load_plan
from sim.scenario import validate_scenario
from sim.simulate import simulate
from sim.world import growth as G
from sim.world.clock import WorldClock


def scenario(**over):
    raw = {
        "name": "months", "seed": 3,
        "simulation": {"start": "2026-11-01T00:00:00Z", "months": 2, "warmup_days": 1},
        "population": {"users": 120, "monthly_active_fraction": 0.9, "dau_over_mau": 0.4},
        "messaging": {"messages_per_dau_per_day": 8},
        "calls": {"calls_per_dau_per_day": 0.05},
    }
    for k, v in over.items():
        raw[k] = v if not isinstance(v, dict) or k not in raw else {**raw[k], **v}
    return validate_scenario(raw, "<test>")


@pytest.fixture(scope="module")
def two_months():
    sc = scenario()
    return sc, simulate(sc, progress=False, raise_errors=True)


def test_calendar_months_from_the_start():
    sc = scenario(simulation={"months": 3})
    assert sc.simulation.days == 30 + 31 + 31          # Nov, Dec, Jan
    clock = WorldClock.of(sc)
    assert list((clock.month_starts - clock.offset) // 86_400_000) == [0, 30, 61, 92]
    assert clock.month_of_day[29] == 0 and clock.month_of_day[30] == 1 and clock.month_of_day[91] == 2


def test_each_month_conserves_messages_and_the_store_carries_across_the_boundary(two_months):
    """A copy stored at the end of November is in November's `stored` and December's `stored_at_start`: counted once,
    sent in one month and delivered (or still stored) in the month it happened."""
    _, r = two_months
    nov, dec = (m["counts"] for m in r.months)
    assert mobile_balance(nov) == 0 and mobile_balance(dec) == 0
    assert nov["stored"] == dec["stored_at_start"] and nov["stored"] > 0
    whole = r.usage["counts"]
    for k in ("messages_sent", "delivered", "delivered_from_store", "expired", "connections", "full_handshakes"):
        assert nov[k] + dec[k] == whole[k], k
    assert dec["stored"] == whole["stored"] and nov["stored_at_start"] == whole["stored_at_start"]


def test_additive_meters_split_exactly_and_mau_restarts_each_month(two_months):
    sc, r = two_months
    whole = r.usage
    for name in ("outbound_bytes", "turn_bytes"):
        assert math.fsum(math.fsum(m["meters"][name]["values"]) for m in r.months) == pytest.approx(
            math.fsum(whole["meters"][name]["values"]), rel=1e-12)
    for d in ("outbound", "inbound"):
        for cat, v in whole["breakdown"][d].items():
            assert abs(sum(m["breakdown"][d][cat] for m in r.months) - v) <= len(r.months), (d, cat)
    # every active user connects in each month (a sure day per month): MAU is the active users, twice
    active = round(sc.population.users * sc.population.monthly_active_fraction)
    maus = [sum(m["meters"]["mau"]["values"]) for m in r.months]
    assert all(abs(x - active) <= 15 for x in maus) and sum(maus) == sum(whole["meters"]["mau"]["values"])
    # the stored level is one series: the last minute of November and the first of December are neighbours
    s_nov, s_dec = (m["meters"]["stored_bytes"]["values"] for m in r.months)
    assert abs(s_dec[0] - s_nov[-1]) <= max(s_nov[-1], 1) * 0.5


def test_a_month_priced_alone_equals_its_slice(two_months):
    """Each month's usage is an ordinary one-month usage document: `sim price` would bill it the same."""
    from sim.pricing.pricing import is_one_month, price
    from sim.pricing.usage import usage_from_dict

    _, r = two_months
    for m in r.months:
        u = usage_from_dict(json.loads(json.dumps(m)), "<month>")
        assert is_one_month(u)
        assert price(u, load_plan("mesibo-cloud")).total == Decimal("49.00")


def test_mau_per_month_follows_the_growth_rule():
    """MAU of month m is exactly the active pool users present in it, and that count follows the growth rule:
    Binomial(pool, q_m) with q_m = E[present in m] / pool x monthly-active fraction (users are i.i.d.). Test: |z| <
    4 per month (false alarm 6.3e-5 each, 1.9e-4 for the three). Injected fault: a world that ignores presence
    (every pool user from the start) fails it."""
    sc = scenario(simulation={"months": 3}, population={"users": 100},
                  growth={"model": "rate", "monthly_rate": 0.8, "churn": 0.1})
    r = simulate(sc, progress=False, raise_errors=True)
    pool = G.pool(sc.growth, 100, 3)
    q = G.expected_active_in_month(pool) / pool.n * sc.population.monthly_active_fraction
    maus = np.array([sum(m["meters"]["mau"]["values"]) for m in r.months])
    z = (maus - pool.n * q) / np.sqrt(pool.n * q * (1 - q))
    assert np.all(np.abs(z) < 4), (maus, pool.n * q)
    assert maus[2] > 2.5 * maus[0]

    from sim.world import presence
    original = presence.Presence.of
    try:
        presence.Presence.of = classmethod(lambda cls, *a, **k: None)
        bad = simulate(sc, progress=False, raise_errors=True)
    finally:
        presence.Presence.of = original
    bad_maus = np.array([sum(m["meters"]["mau"]["values"]) for m in bad.months])
    assert np.any(np.abs((bad_maus - pool.n * q) / np.sqrt(pool.n * q * (1 - q))) >= 4)


@pytest.mark.parametrize("engine, users", [("fast", 120), ("events", 60)])
def test_free_limits_renew_each_month(tmp_path, engine, users):
    """A free plan whose MAU limit the app passes in both months: notified and throttled in each month, from a time
    inside it; the throttle of November is gone on December 1 (the quota renewed). Both engines: the events engine
    asks the month's limits one message at a time."""
    plan = tmp_path / "tiny-free.yaml"
    plan.write_text(
        "name: tiny-free\ndescription: a free plan of 40 MAU\ncurrency: USD\n"
        "metrics:\n  mau: {meter: mau, aggregation: unique, unit: MAU}\n"
        "limits:\n  - {metric: mau, max: 40}\n"
        "notifications: {thresholds: [0.5, 0.75], of: limits}\n"
        "throttling: {grace: 1h, messages_per_second: 1}\n")
    sc = scenario(plans=[str(plan)], engine=engine, population={"users": users})
    mr = run_months(sc, [load_plan(str(plan))], progress=False)
    pm = mr.plans[0]
    froms = [e.get("throttled_from") for e in pm.enforcement]
    assert all(froms) and froms[0] < "2026-12-01" < froms[1] < "2027-01-01"
    assert [len([n for n in e["notifications"] if n["meter"] == "mau"]) for e in pm.enforcement] == [2, 2]
    # December's MAU starts from nothing: its notices come after December 1, not carried from November
    dec = [n["at"] for n in pm.enforcement[1]["notifications"]]
    assert min(dec) > "2026-12-01T00:00:00"
    assert pm.bills[0].violations and pm.bills[1].violations


def test_credits_running_out_throttle_the_world_from_the_ledgers_instant():
    """mesibo-cloud with no credit and no top-up: the first charges exhaust it, both notices fire at once, and 24 h
    later (the plan's grace) the app is throttled, in the world (messages rejected as throttled) and in the ledger."""
    sc = scenario(plans=["mesibo-cloud"], accounts={"mesibo-cloud": {"opening_balance": 0}},
                  population={"users": 1500}, simulation={"months": 1})
    mr = run_months(sc, [load_plan("mesibo-cloud")], progress=False)
    pm = mr.plans[0]
    (c,) = pm.ledger
    assert c.exhausted_at is not None and c.throttled_from is not None
    assert (c.throttled_from - c.exhausted_at).total_seconds() == pytest.approx(86_400, abs=1)
    assert pm.enforcement[0]["throttled_from"] == c.throttled_from.isoformat()
    assert pm.result.usage["enforcement"]["credit_throttled_from"] == c.throttled_from.isoformat()
    assert pm.enforcement[0]["rejected_messages"].get("throttled", 0) > 0
    assert c.closing == -pm.bills[0].total


def test_the_switch_to_payg_is_irreversible(tmp_path):
    """A free account switching when a free limit is exceeded: November (300 users) is free; December grows to 1,300,
    passes 1,000 MAU and is billed under mesibo-cloud from then on; February is back to 300 users, within every free
    limit, and still PAYG: the $49 minimum. (The free plan: mesibo-free's 1,000 MAU without its concurrency rule, which
    apps of a few hundred users exceed at once: tests/test_tune.py.)"""
    free = tmp_path / "mau-free.yaml"
    free.write_text("name: mau-free\ndescription: 1,000 free MAU\ncurrency: USD\n"
                    "metrics:\n  mau: {meter: mau, aggregation: unique, unit: MAU}\n"
                    "limits:\n  - {metric: mau, max: 1000}\n"
                    "notifications: {thresholds: [0.5, 0.75], of: limits}\n"
                    "throttling: {grace: 24h, messages_per_second: 1}\n")
    sc = scenario(simulation={"months": 4}, population={"users": 300, "monthly_active_fraction": 1.0},
                  growth={"model": "list", "users": [300, 300, 1300, 300, 300]},
                  messaging={"messages_per_dau_per_day": 3}, plans=[str(free)],
                  accounts={str(free): {"switch": {"to": "mesibo-cloud", "when": "exceeded", "credit": 100}}})
    plan = load_plan(str(free))
    mr = run_months(sc, [plan], progress=False)
    pm = mr.plans[0]
    assert pm.in_force == ["mau-free", "mesibo-cloud", "mesibo-cloud", "mesibo-cloud"]
    assert pm.switch.cycle == 1 and pm.switch.trigger == "exceeded" and pm.bills[0].total == 0
    from sim.pricing.pricing import price
    from sim.pricing.usage import usage_from_dict

    feb = pm.result.months[3]
    assert not price(usage_from_dict(feb, "<feb>"), plan).violations  # free would do...
    assert pm.bills[3].total == Decimal("49.00") and pm.bills[3].line("minimum_commitment").amount > 0  # ...but no way back
    # the ledger starts at the switch with its credit, and deducts each PAYG month
    assert pm.ledger[0].opening == 0 and pm.ledger[1].opening == pm.ledger[0].closing
    assert pm.ledger[0].top_ups[0].amount == Decimal(100) and pm.ledger[0].top_ups[0].reason == "switch"
    assert pm.ledger[-1].closing == Decimal(100) - sum(b.total for b in pm.bills[1:])


@pytest.mark.parametrize("sets, field", [
    (["growth.model=rate", "growth.monthly_rate=0.5", "growth.churn=1.5"], "growth.churn"),
    (["growth.model=rate"], "growth"),
    (["accounts.mesibo-onprem.opening_balance=10"], "accounts"),
    (["accounts.mesibo-cloud.top_up.when=notified", "accounts.mesibo-cloud.top_up.amount=40"],
     "accounts.mesibo-cloud.top_up.amount"),
    (["simulation.start=2026-11-30T00:00:00Z"], "simulation"),
    (["plans=[mesibo-free]", "accounts.mesibo-free.switch.to=mesibo-nowhere",
      "accounts.mesibo-free.switch.credit=50"], "accounts.mesibo-free.switch.to"),
])
def test_bad_growth_and_account_settings_are_one_line_and_exit_2(tmp_path, capsys, sets, field):
    raw = tmp_path / "s.yaml"
    raw.write_text("name: s\nsimulation: {months: 2}\npopulation: {users: 50}\nplans: [mesibo-cloud]\n")
    out = tmp_path / "out"
    args = ["run", str(raw), "--out", str(out)]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err and "Traceback" not in err
    assert not out.exists()


def test_sim_run_writes_months_csv_and_plot(tmp_path, capsys):
    raw = tmp_path / "s.yaml"
    raw.write_text("name: s\nseed: 2\nsimulation: {months: 2}\npopulation: {users: 60}\n"
                   "messaging: {messages_per_dau_per_day: 5}\ncalls: {calls_per_dau_per_day: 0}\n"
                   "plans: [mesibo-free, mesibo-cloud]\naccounts:\n  mesibo-cloud: {opening_balance: 60}\n")
    out = tmp_path / "out"
    assert main(["run", str(raw), "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "2026-11" in text and "2026-12" in text and "credits 60" in text
    import pandas as pd

    df = pd.read_csv(out / "months.csv")
    assert len(df) == 4 and set(df["plan"]) == {"mesibo-free", "mesibo-cloud"}
    cloud = df[df["plan"] == "mesibo-cloud"].reset_index()
    assert list(cloud["total"]) == [49.0, 49.0]
    assert list(cloud["credits_before"]) == [60.0, 11.0] and list(cloud["credits_after"]) == [11.0, -38.0]
    assert (out / "months.png").stat().st_size > 10_000
    acc = json.loads((out / "accounts.json").read_text())
    assert [p["plan"] for p in acc["plans"]] == ["mesibo-free", "mesibo-cloud"]


@pytest.mark.parametrize("engine, users", [("fast", 120), ("events", 40)])
def test_a_month_of_a_longer_run_is_that_month_run_alone(engine, users):
    """The month boundary does not show: November of a two-month run is, minute by minute and count by count, the
    same as November simulated on its own (same seed): per-day streams are named by the day, each month has its own
    sure days and day-activity probability, and nothing the world carries into December is billed in November."""
    two = simulate(scenario(engine=engine, population={"users": users}), progress=False, raise_errors=True)
    one = simulate(scenario(engine=engine, population={"users": users}, simulation={"months": 1}), progress=False,
                   raise_errors=True)
    nov, alone = two.months[0], one.months[0]
    assert nov["meters"] == alone["meters"]
    for k in ("messages_sent", "delivered", "stored", "connections", "full_handshakes", "resumed_handshakes"):
        assert nov["counts"][k] == alone["counts"][k], k
    # and a one-month run is the plain 30-day period it replaces
    plain = simulate(scenario(engine=engine, population={"users": users},
                              simulation={"months": None, "days": 30}), progress=False, raise_errors=True)
    assert plain.usage["meters"] == one.usage["meters"]


def test_an_unpaid_invoice_downgrades_the_fleet_until_paid(capsys, tmp_path):
    """scenarios/iot-downgrade.yaml: invoices paid 10 days late. November's (issued Dec 5, due Dec 28, reminder Dec
    25) is unpaid on Jan 1: the fleet runs under flespi-free's element counts until both invoices are paid on Jan 7
    (restored at once): devices beyond them are refused on every attempt in January only, and come back together."""
    out = tmp_path / "out"
    assert main(["run", "scenarios/iot-downgrade.yaml", "--set", "iot.devices=110", "--set", "iot.moving_fraction=0.1",
                 "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "downgraded to the free limits 2027-01-01 until 2027-01-07" in text
    import pandas as pd

    df = pd.read_csv(out / "months.csv").set_index("month")
    nov = df.loc["2026-11"]
    assert (nov["invoice_issued"][:10], nov["reminder"][:10], nov["invoice_due"][:10], nov["paid"][:10]) == (
        "2026-12-05", "2026-12-25", "2026-12-28", "2027-01-07")
    assert list(df["downgraded"]) == [False, False, True]
    assert df.loc["2027-01", "restored_at"].startswith("2027-01-07")
    refused = list(df["downgrade_refused_attempts"])
    # 110 devices, 99 kept (100 free sessions, one the owner's): 11 refused every ~128 s (back-off) for 6 days
    assert refused[:2] == [0, 0] and 11 * 6 * 86_400 / 128 * 0.8 < refused[2] < 11 * 6 * 86_400 / 128 * 1.2
    assert df.loc["2027-01", "downgrade_devices_affected"] == 11 and df.loc["2027-01", "restore_storm_per_minute"] >= 8
    usage = json.loads((out / "usage.json").read_text())["run"]
    c = usage["counts"]
    assert c["iot_messages_sent"] == (c["iot_delivered"] + c["iot_dropped"] + c["iot_rejected"] + c["iot_discarded"]
                                      + c["iot_pending_on_device_end"])


def test_sweeps_and_comparisons_price_a_months_scenario_month_by_month():
    """A sweep's run of a months scenario is the sum of its months (two minimum bills, not one); run_plans, which
    prices one period, refuses such a scenario rather than bill two months as one."""
    from sim.comparison import run_plans
    from sim.experiments.worker import run_task

    sc = scenario(population={"users": 40})
    rec = run_task({"key": "k", "scenario": sc, "plans": [load_plan("mesibo-cloud")], "seed": 1})
    assert rec["error"] is None
    (cloud,) = rec["plans"]
    assert cloud["total_exact"] == "98.00" and cloud["line_minimum_commitment"] > 0
    with pytest.raises(ValueError, match="month by month"):
        run_plans(sc, [load_plan("mesibo-cloud")], progress=False)
