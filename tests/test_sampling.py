"""Sampled runs (sim/sampling.py): ``population.sample`` / ``iot.sample`` simulate part of an app and scale it.

What is checked:

* a sample of at least the population is the unsampled run, bit for bit;
* additive meters are the sample world's times the ratio, exactly (bytes, counts, MAU, the stored level);
  an IoT fleet's element counts are the full fleet's;
* coverage against full runs: the full run's MAU and peak CCU fall inside the sampled run's 95 % intervals.
  Test: over K = 20 seeds, at most 3 misses. If the intervals covered exactly 95 %, misses ~ Binomial(20, 0.05)
  and P(misses >= 4) = 1.6 % (the false-alarm rate; the intervals are built conservative, so it is lower).
  Injected fault: the same check on the naive peak estimate (the ratio x the sample's own peak, with the
  same interval widths) fails it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from sim.sampling import Sample, level_estimate, mau_interval, world_scenario
from sim.scenario import load_scenario
from sim.simulate import simulate


def _run(path: str, sets: list[str], seed: int = 1):
    r = simulate(load_scenario(path, sets, seed=seed), progress=False)
    assert r.ok, r.error
    return r


SMALL = ["population.users=600", "simulation.days=2", "population.timezones=europe"]


def test_a_sample_of_the_whole_population_is_the_unsampled_run():
    base = _run("quick", ["population.users=60", "simulation.days=2"])
    for n in (60, 1000):
        same = _run("quick", ["population.users=60", "simulation.days=2", f"population.sample={n}"])
        assert "sampling" not in same.usage
        assert json.dumps(same.usage, sort_keys=True) == json.dumps(base.usage, sort_keys=True)
        assert same.frame.equals(base.frame)


def test_additive_meters_are_the_sample_worlds_times_the_ratio():
    sampled = _run("quick", [*SMALL, "population.sample=60"])
    world = _run("quick", [*SMALL[1:], "population.users=60"])  # the world a sample of 60 simulates
    su, wu = sampled.usage, world.usage
    doc = su["sampling"]["mobile"]
    assert (doc["population"], doc["sample"], doc["ratio"]) == (600, 60, 10.0)
    for name in ("outbound_bytes", "turn_bytes", "stored_bytes"):
        np.testing.assert_allclose(su["meters"][name]["values"], np.asarray(wu["meters"][name]["values"]) * 10,
                                   rtol=1e-12)
    assert sum(su["meters"]["mau"]["values"]) == 10 * sum(wu["meters"]["mau"]["values"])
    assert doc["mau"]["value"] == 10 * sum(wu["meters"]["mau"]["values"])
    for key in ("connections", "delivered", "messages_originated", "full_handshakes"):
        assert su["counts"][key] == 10 * wu["counts"][key]
    for d in ("outbound", "inbound"):
        for c, v in wu["breakdown"][d].items():
            assert abs(su["breakdown"][d][c] - 10 * v) <= 5  # rounded per category
    # the scaled frame sums to the scaled meters
    assert sampled.frame["messages"].sum() == pytest.approx(10 * world.frame["messages"].sum())
    assert max(su["meters"]["peak_ccu"]["values"]) == doc["peak_ccu"]["value"]
    assert doc["peak_ccu"]["ci_low"] <= doc["peak_ccu"]["value"] <= doc["peak_ccu"]["ci_high"]


def test_world_scenario_holds_the_sample_and_the_memory_estimate_follows():
    from sim.memory import estimate_bytes

    sc = load_scenario("quick", ["population.users=2000000", "population.sample=500"])
    assert world_scenario(sc).population.users == 500
    assert estimate_bytes(sc)[0] == estimate_bytes(load_scenario("quick", ["population.users=500"]))[0]


def test_iot_sample_scales_traffic_and_keeps_the_fleets_element_counts():
    sets = ["iot.devices=200", "simulation.days=2"]
    sampled = _run("iot-trackers", [*sets, "iot.sample=20"])
    world = _run("iot-trackers", ["iot.devices=20", "simulation.days=2"])
    m = sampled.usage["meters"]
    assert set(m["devices"]["values"]) == {200}
    assert set(m["mqtt_sessions"]["values"]) == {201}
    assert sampled.usage["counts"]["iot_messages_sent"] == 10 * world.usage["counts"]["iot_messages_sent"]
    assert sum(m["outbound_bytes"]["values"]) == pytest.approx(10 * sum(world.usage["meters"]["outbound_bytes"]["values"]))
    doc = sampled.usage["sampling"]["iot"]
    peak = max(m["peak_ccu"]["values"])  # the app's (no users here) plus the fleet's, minute by minute
    assert doc["ratio"] == 10 and peak == pytest.approx(doc["peak_ccu"]["value"], abs=1)
    assert doc["peak_ccu"]["ci_low"] <= peak <= doc["peak_ccu"]["ci_high"]


def test_level_estimate_closed_forms():
    days, r = 4, 9.0
    flat = np.full(days * 1440, 7.0)
    np.testing.assert_allclose(level_estimate(flat, r), 63.0)  # no fluctuation: r x the level
    # fluctuations grow by sqrt(r) (one copy on a 2-day period), measured against the smoothed mean day
    rng = np.random.default_rng(3)
    noisy = 50 + rng.normal(0, 1, 2 * 1440)
    est = level_estimate(noisy, r)
    assert est.mean() == pytest.approx(r * 50, rel=1e-3)
    # sd: sqrt(r) sigma for the fluctuation, plus r x the mean day's own error (sigma / sqrt(days x 31 minutes))
    assert np.std(est - r * 50) == pytest.approx(np.sqrt(r + r * r / (2 * 31)), rel=0.05)
    # on 20 days, 9 day-shifted copies of independent noise: the sum's sd is sqrt(9) sigma, scaled back by sqrt(9)
    long = 50 + rng.normal(0, 1, 20 * 1440)
    assert np.std(level_estimate(long, r) - r * 50) == pytest.approx(np.sqrt(r + r * r / (20 * 31)), rel=0.05)
    one_day = np.arange(1440.0)
    np.testing.assert_allclose(level_estimate(one_day, r), r * one_day)  # no mean day: scaled


def test_mau_interval_is_a_finite_population_wilson_interval():
    s = Sample(population=10_000, sample=400)
    e = mau_interval(240, s)
    assert e["value"] == 6000
    z = stats.norm.ppf(0.975)
    n_eff = 400 / (1 - 0.04)
    p = 0.6
    centre = (p + z * z / (2 * n_eff)) / (1 + z * z / n_eff)
    half = z * np.sqrt(p * (1 - p) / n_eff + z * z / (4 * n_eff ** 2)) / (1 + z * z / n_eff)
    assert e["ci_low"] == pytest.approx((centre - half) * 10_000)
    assert e["ci_high"] == pytest.approx((centre + half) * 10_000)
    everyone = mau_interval(400, s)
    assert everyone["ci_high"] == 10_000 and everyone["ci_low"] < 10_000  # p = 1 in the sample is no proof


COVER = ["population.users=1000", "simulation.days=14", "population.monthly_active_fraction=0.6",
         "population.timezones=europe"]
SEEDS = 20
MAX_MISSES = 3  # P(misses >= 4 | coverage 95 %) = 1.6 %


def _coverage_case(seed: int):
    full = _run("quick", COVER, seed)
    sampled = _run("quick", [*COVER, "population.sample=100"], seed)
    world = _run("quick", [*COVER, "population.users=100"], seed)  # the sample's own world
    doc = sampled.usage["sampling"]["mobile"]
    return {"peak": max(full.usage["meters"]["peak_ccu"]["values"]), "mau": sum(full.usage["meters"]["mau"]["values"]),
            "est": doc["peak_ccu"], "mau_est": doc["mau"],
            "naive": 10 * max(world.usage["meters"]["peak_ccu"]["values"])}


@pytest.fixture(scope="module")
def coverage_cases():
    return [_coverage_case(seed) for seed in range(1, SEEDS + 1)]


def _misses(cases, centre) -> int:
    out = 0
    for c in cases:
        half_lo, half_hi = c["est"]["value"] - c["est"]["ci_low"], c["est"]["ci_high"] - c["est"]["value"]
        v = centre(c)
        out += not (v - half_lo <= c["peak"] <= v + half_hi)
    return out


@pytest.mark.slow
def test_full_runs_fall_inside_the_sampled_intervals(coverage_cases):
    peak_misses = _misses(coverage_cases, lambda c: c["est"]["value"])
    mau_misses = sum(not (c["mau_est"]["ci_low"] <= c["mau"] <= c["mau_est"]["ci_high"]) for c in coverage_cases)
    assert peak_misses <= MAX_MISSES, [(c["peak"], c["est"]) for c in coverage_cases]
    assert mau_misses <= MAX_MISSES, [(c["mau"], c["mau_est"]) for c in coverage_cases]


@pytest.mark.slow
def test_the_naive_peak_fails_the_same_coverage_check(coverage_cases):
    """Injected fault: ratio x the sample's peak overstates the whole app's (a small sample's per-minute maximum
    counts nearly every connection that touches the minute, and its fluctuations are scaled by r, not sqrt(r))."""
    assert _misses(coverage_cases, lambda c: c["naive"]) > MAX_MISSES
    bias = np.mean([c["naive"] / c["peak"] - 1 for c in coverage_cases])
    assert bias > 0.2
