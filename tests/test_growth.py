"""Population growth (sim/world/growth.py): curves, pool size, presence windows drawn user by user.

Statistical checks are two-sided 4-sigma per time point with a Bonferroni family: a point's false-alarm
probability is P(|Z| > 4) = 6.3e-5 (normal approximation to the binomial count), so a family of 13 (21)
points fails a correct model with probability at most 8.3e-4 (1.3e-3) for a random seed; the seeds are fixed,
so the tests are deterministic. Each check is shown to fail on an injected fault.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from sim.rng import Streams
from sim.world import growth as G
from sim.world.growth import Growth

R12 = 100 ** (1 / 12) - 1  # 500 -> 50,000 in 12 months
NOV = datetime(2026, 11, 1, tzinfo=UTC)
Z = 4.0  # sigmas per point


def _counts_ok(join_s, leave_s, t_s, expected, n):
    """Points where the number present (join <= t < leave) is more than Z sigma from ``expected``
    (binomial: n pool users, each present with probability expected / n)."""
    bad = []
    for i, (s, e) in enumerate(zip(t_s, expected, strict=True)):
        count = int(np.count_nonzero((join_s <= s) & (leave_s > s)))
        p = e / n
        sigma = math.sqrt(n * p * (1 - p))
        if abs(count - e) > Z * sigma + 1e-9:
            bad.append((i, count, round(float(e), 1), round(sigma, 1)))
    return bad


# -- curves ---------------------------------------------------------------------------------------------------


def test_rate_500_to_50000_in_12_months():
    assert R12 == pytest.approx(0.4678, abs=1e-4)
    g = Growth(model="rate", monthly_rate=R12)
    u = G.target(g, 500, np.array([0.0, 6.0, 12.0]))
    assert u == pytest.approx([500.0, 5_000.0, 50_000.0], rel=1e-12)
    assert round(float(u[-1])) == 50_000
    # continuous within a month: half a month is a factor sqrt(1 + r)
    assert G.target(g, 500, 0.5) == pytest.approx(500 * math.sqrt(1 + R12))


def test_logistic_approaches_the_cap_and_starts_like_rate():
    g = Growth(model="logistic", monthly_rate=0.5, cap=50_000)
    t = np.linspace(0, 36, 361)
    u = G.target(g, 500, t)
    assert u[0] == pytest.approx(500.0)
    assert np.all(np.diff(u) > 0) and np.all(u < 50_000)
    # U(1) = K / (1 + 99 / 1.5) = 50,000 / 67; rate model: 750
    assert u[10] == pytest.approx(50_000 / 67)
    # U(36) = K / (1 + 99 * 1.5^-36): within 0.005 % of the cap
    assert u[-1] == pytest.approx(50_000 / (1 + 99 * 1.5 ** -36))
    assert u[-1] > 0.99995 * 50_000
    p = G.pool(g, 500, 36)  # no churn: the pool is everyone present at the end
    assert p.n == 500 + round(float(u[-1]) - 500)


def test_list_interpolation_both_lengths():
    g = Growth(model="list", users=[500, 1000, 4000])  # months + 1 values for 2 months: the last is the end
    g.check_against(500, 2)
    assert G.target(g, 500, np.array([0, 0.5, 1, 1.25, 2])) == pytest.approx([500, 750, 1000, 1750, 4000])
    flat = Growth(model="list", users=[500, 1000])  # months values: the last month stays flat
    flat.check_against(500, 2)
    assert G.target(flat, 500, np.array([0.5, 1.0, 1.5, 2.0])) == pytest.approx([750, 1000, 1000, 1000])
    assert G.pool(flat, 500, 2).n == 1000
    with pytest.raises(ValueError, match="growth.users has 3 values; simulation.months 12 needs 12"):
        g.check_against(500, 12)


def test_activity_multiplier():
    g = Growth(model="rate", monthly_rate=0.1, activity=0.02)
    assert G.activity_multiplier(g, np.array([0.0, 12.0])) == pytest.approx([1.0, 1.02 ** 12])
    assert G.activity_multiplier(Growth(model="rate", monthly_rate=0.1), 5.0) == 1.0
    assert G.activity_multiplier(None, np.arange(3)) == pytest.approx([1, 1, 1])


# -- pool size ------------------------------------------------------------------------------------------------


def test_pool_size_closed_form_with_churn():
    g = Growth(model="rate", monthly_rate=R12, churn=0.05)
    p = G.pool(g, 500, 12)
    lam = -math.log(0.95)
    gr = math.log(100) / 12
    arrivals = 49_500 + lam * 500 * 99 / gr  # U(T) - U0 + lambda * integral of U
    assert p.churn_rate == pytest.approx(lam)
    assert p.arrivals == pytest.approx(arrivals, rel=1e-9)
    assert p.n == 500 + round(arrivals) == 56_616
    # the pool's expected present follows U up to the rounding of the pool size and the grid
    t = np.linspace(0, 12, 97)
    assert np.max(np.abs(G.expected_present(p, t) - G.target(g, 500, t))) < 0.1


def test_no_growth_is_the_users_present_throughout():
    p = G.pool(None, 300, 3)
    assert p.n == 300 and p.arrivals == 0
    join, leave = G.presence(p, *np.random.default_rng(0).random((2, 300)), G.month_lengths_s(NOV, 3))
    assert np.all(np.isneginf(join)) and np.all(np.isposinf(leave))
    assert G.expected_active_in_month(p) == pytest.approx([300, 300, 300])


# -- presence follows the curve -------------------------------------------------------------------------------


def test_present_at_month_starts_follows_u_with_churn_and_fails_without_the_churn_term():
    g = Growth(model="rate", monthly_rate=R12, churn=0.05)
    p = G.pool(g, 500, 12)
    lengths = G.month_lengths_s(NOV, 12)
    uj, ul = np.random.default_rng(20261101).random((2, p.n))
    months = np.arange(13)
    t_s = G.months_to_seconds(months, lengths)
    join, leave = G.presence(p, uj, ul, lengths)
    assert _counts_ok(join, leave, t_s, G.target(g, 500, months), p.n) == []

    # fault: gross arrivals U' only (the lambda U replacing the leavers forgotten)
    u_grid = G.target(g, 500, p.t)
    fa = u_grid - 500
    faulty = dataclasses.replace(p, cum_arrivals=fa, arrivals=float(fa[-1]), n=500 + round(float(fa[-1])))
    uj, ul = np.random.default_rng(20261101).random((2, faulty.n))
    join, leave = G.presence(faulty, uj, ul, lengths)
    bad = _counts_ok(join, leave, t_s, G.target(g, 500, months), faulty.n)
    assert len(bad) >= 10  # every month after the first few is far off (month 12: ~43,500 present, not 50,000)


def test_decline_faster_than_churn_and_zero_users_follow_the_list():
    g = Growth(model="list", users=[1000, 2000, 500, 800, 0, 300], churn=0.05)
    p = G.pool(g, 1000, 5)
    assert not p.constant_hazard
    lengths = G.month_lengths_s(datetime(2027, 1, 31, tzinfo=UTC), 5)
    t = np.arange(21) / 4
    uj, ul = np.random.default_rng(7).random((2, p.n))
    join, leave = G.presence(p, uj, ul, lengths)
    assert _counts_ok(join, leave, G.months_to_seconds(t, lengths), G.target(g, 1000, t), p.n) == []
    at4 = G.months_to_seconds(4.0, lengths)
    assert np.count_nonzero((join <= at4) & (leave > at4)) == 0  # no one is left when the list says 0


def test_a_decline_is_all_leaving():
    g = Growth(model="rate", monthly_rate=-0.3, churn=0.05)  # falls faster than churn: no arrivals
    p = G.pool(g, 10_000, 12)
    assert p.n == 10_000 and p.arrivals == 0
    assert G.expected_present(p, 12.0) == pytest.approx(10_000 * 0.7 ** 12)
    lengths = G.month_lengths_s(NOV, 12)
    join, leave = G.presence(p, *np.random.default_rng(3).random((2, p.n)), lengths)
    months = np.arange(13)
    assert _counts_ok(join, leave, G.months_to_seconds(months, lengths), 10_000 * 0.7 ** months, p.n) == []


def test_active_in_month():
    # no churn: everyone present at a month's end was present at its start or joined during it
    g0 = Growth(model="rate", monthly_rate=R12)
    p0 = G.pool(g0, 500, 12)
    assert G.expected_active_in_month(p0) == pytest.approx(G.target(g0, 500, np.arange(1, 13)), abs=0.5)
    # with churn: against windows drawn, 4 sigma per month, 12 months (false alarm <= 7.6e-4)
    g = Growth(model="rate", monthly_rate=R12, churn=0.05)
    p = G.pool(g, 500, 12)
    lengths = G.month_lengths_s(NOV, 12)
    join, leave = G.presence(p, *np.random.default_rng(11).random((2, p.n)), lengths)
    edges = G.months_to_seconds(np.arange(13), lengths)
    expected = G.expected_active_in_month(p)
    assert expected[0] == pytest.approx(500 + p.cum_arrivals[G.STEPS_PER_MONTH], abs=0.5)
    for m in range(12):
        count = np.count_nonzero((join < edges[m + 1]) & (leave > edges[m]))
        q = expected[m] / p.n
        assert abs(count - expected[m]) <= Z * math.sqrt(p.n * q * (1 - q)), m
    assert G.expected_active_in_month(p, 3) == pytest.approx(expected[3])
    with pytest.raises(ValueError, match="0 .. 11"):
        G.expected_active_in_month(p, 12)


# -- windows ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("growth", [
    Growth(model="rate", monthly_rate=R12, churn=0.05),
    Growth(model="rate", monthly_rate=R12),
    Growth(model="list", users=[1000, 2000, 500, 800, 0, 300], churn=0.05),
    Growth(model="list", users=[1000, 2000, 500, 800, 0, 300]),
])
def test_leave_after_join_always(growth):
    users0 = 500 if growth.model == "rate" else 1000
    p = G.pool(growth, users0, 5)
    p0 = p.initial_fraction
    top = 1 - 2.0 ** -53
    edge = np.array([0.0, p0, np.nextafter(p0, 0), top, 0.5])
    uj = np.concatenate([np.repeat(edge, len(edge)), np.random.default_rng(5).random(100_000)])
    ul = np.concatenate([np.tile(np.array([0.0, top, 0.5, 1e-300, 2.0 ** -53]), len(edge)),
                         np.random.default_rng(6).random(100_000)])
    join, leave = G.presence(p, uj, ul, G.month_lengths_s(NOV, 5))
    assert np.all(leave > join)
    assert not np.any(np.isnan(join)) and not np.any(np.isnan(leave))
    assert np.all(np.isneginf(join) == (uj < p0))
    span = G.months_to_seconds(5.0, G.month_lengths_s(NOV, 5))
    assert np.all(join[np.isfinite(join)] >= 0) and np.all(join[np.isfinite(join)] <= span)  # < in months
    if growth.churn == 0 and growth.model == "rate":
        assert np.all(np.isposinf(leave))


def test_first_users_do_not_depend_on_how_many_are_drawn():
    p = G.pool(Growth(model="rate", monthly_rate=R12, churn=0.05), 500, 12)
    lengths = G.month_lengths_s(NOV, 12)
    small = G.uniforms(Streams(seed=9), 1_000)
    big = G.uniforms(Streams(seed=9), p.n)
    assert np.array_equal(small[0], big[0][:1_000]) and np.array_equal(small[1], big[1][:1_000])
    js, ls = G.presence(p, *small, lengths)
    jb, lb = G.presence(p, *big, lengths)
    assert np.array_equal(js, jb[:1_000]) and np.array_equal(ls, lb[:1_000])


def test_first_tenth_of_the_pool_is_a_random_subsample():
    """Two-sample KS, first 10 % of the pool against the rest, on join and on leave times, each at level
    1e-3 (the atoms at -inf / +inf make it conservative); sorting the pool by join time must fail it."""
    g = Growth(model="rate", monthly_rate=R12, churn=0.05)
    p = G.pool(g, 5_000, 12)
    assert p.n > 500_000
    lengths = G.month_lengths_s(NOV, 12)
    join, leave = G.presence(p, *G.uniforms(Streams(seed=2026), p.n), lengths)
    head = p.n // 10

    def pvalues(j, lv):
        j, lv = np.where(np.isfinite(j), j, -1.0), np.where(np.isfinite(lv), lv, 1e12)
        return stats.ks_2samp(j[:head], j[head:]).pvalue, stats.ks_2samp(lv[:head], lv[head:]).pvalue

    pj, pl = pvalues(join, leave)
    assert pj > 1e-3 and pl > 1e-3, (pj, pl)
    order = np.argsort(join, kind="stable")  # fault: initial users first, then arrivals in order
    pj, pl = pvalues(join[order], leave[order])
    assert pj < 1e-3 and pl < 1e-3, (pj, pl)


# -- calendar months --------------------------------------------------------------------------------------------


def test_month_lengths_and_mid_december():
    lengths = G.month_lengths_s(NOV, 2)
    assert lengths == [30 * 86_400.0, 31 * 86_400.0]
    assert NOV + timedelta(seconds=float(G.months_to_seconds(1.5, lengths))) == datetime(2026, 12, 16, 12, tzinfo=UTC)
    # a user drawn to join at t = 1.5 months joins mid-December
    g = Growth(model="rate", monthly_rate=R12, churn=0.05)
    p = G.pool(g, 500, 2)
    k = int(1.5 * G.STEPS_PER_MONTH)
    u = p.initial_fraction + (1 - p.initial_fraction) * p.cum_arrivals[k] / p.arrivals
    join, _ = G.presence(p, np.array([u]), np.array([0.5]), lengths)
    assert abs(float(join[0]) - 45.5 * 86_400) < 1.0
    # February has 28 days; months beyond the list use the mean month
    feb = G.month_lengths_s(datetime(2027, 2, 1, tzinfo=UTC), 2)
    assert feb == [28 * 86_400.0, 31 * 86_400.0]
    assert G.months_to_seconds(np.array([0.5, 1.0, 3.0]), feb) == pytest.approx(
        [14 * 86_400, 28 * 86_400, 59 * 86_400 + G.AVERAGE_MONTH_S])
    s = np.array([-np.inf, 0.0, 1e6, 5e6, 1e7, np.inf])
    assert G.months_to_seconds(G.seconds_to_months(s, feb), feb) == pytest.approx(s)
    # the 31st clamps to the month's end; a DST change shows in the length
    assert np.array(G.month_lengths_s(datetime(2027, 1, 31, tzinfo=UTC), 3)) / 86_400 == pytest.approx([28, 31, 30])
    berlin = G.month_lengths_s(datetime(2027, 3, 1, tzinfo=ZoneInfo("Europe/Berlin")), 1)
    assert berlin == [31 * 86_400.0 - 3_600]


# -- bad settings ---------------------------------------------------------------------------------------------


def _one_line(exc) -> str:
    text = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
    assert "\n" not in text
    return text


@pytest.mark.parametrize(("data", "message"), [
    ({"model": "rate", "monthly_rate": 0.1, "churn": -0.1}, "greater than or equal to 0"),
    ({"model": "rate", "monthly_rate": 0.1, "churn": 1.0}, "less than 1"),
    ({"model": "rate", "monthly_rate": 0.1, "churn": float("nan")}, "finite"),
    ({"model": "rate"}, "model 'rate' needs monthly_rate"),
    ({"model": "logistic", "monthly_rate": 0.5}, "model 'logistic' needs cap"),
    ({"model": "logistic", "monthly_rate": 0.0, "cap": 1000}, "logistic monthly_rate must be positive"),
    ({"model": "list"}, "model 'list' needs users"),
    ({"model": "list", "users": []}, "at least one value"),
    ({"model": "list", "users": [500, -1]}, "greater than or equal to 0"),
    ({"model": "list", "users": [500, True]}, "boolean"),
    ({"model": "rate", "monthly_rate": -1.0}, "greater than -1"),
    ({"model": "rate", "monthly_rate": 0.1, "cap": 1000}, "cap applies to model 'logistic' only"),
    ({"model": "logistic", "monthly_rate": 0.1, "cap": 1000, "users": [1]}, "users applies to model 'list' only"),
    ({"model": "rate", "monthly_rate": True}, "expected a number, got true"),
    ({"model": "rate", "monthly_rate": 0.1, "rate": 0.2}, "Extra inputs are not permitted"),
    ({"model": "exponential", "monthly_rate": 0.1}, "Input should be 'rate', 'logistic' or 'list'"),
])
def test_bad_settings_are_validation_errors(data, message):
    with pytest.raises(ValidationError) as e:
        Growth.model_validate(data)
    assert message in _one_line(e.value)


@pytest.mark.parametrize(("growth", "users0", "months", "message"), [
    (Growth(model="logistic", monthly_rate=0.5, cap=400), 500, 12,
     "growth.cap 400 must exceed population.users 500"),
    (Growth(model="list", users=[500, 600, 700]), 500, 12,
     "growth.users has 3 values; simulation.months 12 needs 12 (one per month start) or 13"),
    (Growth(model="list", users=[400, 600]), 500, 2, "growth.users[0] 400 must equal population.users 500"),
    (Growth(model="rate", monthly_rate=1e6), 500, 12, "lower growth.monthly_rate"),
    (Growth(model="rate", monthly_rate=5.0, churn=0.9), 500, 12, "users into the pool"),
    (Growth(model="rate", monthly_rate=0.1), 500, 0, "simulation.months must be a whole number of at least 1"),
    (Growth(model="rate", monthly_rate=0.1), 0, 12, "population.users must be a whole number of at least 1"),
])
def test_settings_that_do_not_fit_the_scenario(growth, users0, months, message):
    with pytest.raises(ValueError) as e:
        growth.check_against(users0, months)
    assert message in _one_line(e.value)
    with pytest.raises(ValueError, match="must|needs|lower"):
        G.pool(growth, users0, months)


def test_every_field_is_documented():
    for name, f in Growth.model_fields.items():
        assert f.description and len(f.description) > 20, name
    assert Growth(model="rate", monthly_rate=0.1).churn == 0.0


def test_presence_refuses_bad_inputs():
    p = G.pool(Growth(model="rate", monthly_rate=0.1), 10, 2)
    lengths = G.month_lengths_s(NOV, 2)
    with pytest.raises(ValueError, match="one length"):
        G.presence(p, np.zeros(3), np.zeros(4), lengths)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        G.presence(p, np.ones(3), np.zeros(3), lengths)
    with pytest.raises(ValueError, match="the pool spans 2"):
        G.presence(p, np.zeros(3), np.zeros(3), lengths[:1])
