"""The default chat app against PF §6 reconnects_per_dau_per_day = 25 (log-normal, p10 5, p90 100), and
against the model's own calibrated value with platform push limits (``MODEL``).

Connections are recorded per (user, day) by wrapping ``ConnectionMeter.open``; DAU is a user-day with at
least one connection, as in the ``dau`` daily series. The band around 25 is derived from the sample:
users are independent (their days are not: a user's session-rate multiplier is drawn once), so the
standard error of the ratio estimator sum(C_u) / sum(D_u) comes from per-user totals (delta method).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.rng import Streams
from sim.scenario import load_scenario
from sim.simulate import simulate
from sim.world import connections as conn_mod
from sim.world.population import Population

DAY_MS = 86_400_000
TARGET = 25.0  # PF §6 reconnects_per_dau_per_day (an assumption "to calibrate against logs")
#: Where the model sits with platform push limits (PF §4.1-4.2: iOS 3 background pushes/h, Android FCM high
#: priority unthrottled), conversation bursts (sim/world/conversations.py) and launches that notifications
#: prompt counted among the day's launches (push.open_probability 0.65, Pielot et al. 2018): means of
#: 20,000 users x 2 days (chat-app 32.0: ~9 spontaneous launches, ~18 wake-ups of which ~11 open the app,
#: ~4 Doze windows) and mesibo-example 28.1. Above PF §6's 25, an assumption "to calibrate against logs":
#: 20-23 measured launches a day (activity.sessions_per_dau_per_day) plus a wake-up per incoming burst while
#: the app sleeps leave no room for 25 without a throttle below the platforms' (the 4-h throttle that used to
#: hit 25 delayed most offline copies by ~20 min to hours).
MODEL = {"chat-app": 32.0, "mesibo-example": 28.1}
#: How far a small run may sit from the model value on top of sampling error: 10 %.
CALIBRATION_TOL = 0.10


def per_user_day(monkeypatch, sc):
    """Run ``sc``; return a (days, users) array of connections opened per user per day."""
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    orig = conn_mod.ConnectionMeter.open

    def open_(self, tl, idx, *a, **k):
        if len(idx):
            seen.append((tl.user[idx].copy(), tl.start[idx] // DAY_MS))
        return orig(self, tl, idx, *a, **k)

    monkeypatch.setattr(conn_mod.ConnectionMeter, "open", open_)
    r = simulate(sc, progress=False, raise_errors=True)
    n, days = sc.population.users, sc.simulation.days
    u = np.concatenate([s[0] for s in seen])
    d = np.concatenate([s[1] for s in seen]) - sc.simulation.warmup_days  # world days -> period days
    u, d = u[d >= 0], d[d >= 0]
    per = np.bincount(d * n + u, minlength=days * n).reshape(days, n)
    assert per.sum() == r.usage["counts"]["connections"]
    # DAU = user-days with a connection (opened that day, or still up from the day before)
    assert (per > 0).sum() <= r.book.daily["dau"].sum() <= (per > 0).sum() * 1.02
    return per, r


def ratio_and_se(per: np.ndarray) -> tuple[float, float]:
    c = per.sum(axis=0).astype(float)  # connections per user over the run
    d = (per > 0).sum(axis=0).astype(float)  # DAU-days per user
    ratio = c.sum() / d.sum()
    se = math.sqrt(float(((c - ratio * d) ** 2).sum())) / d.sum()
    return ratio, se


@pytest.mark.parametrize("name", ["chat-app", "mesibo-example"])
def test_connections_per_dau_near_reference(monkeypatch, name):
    sc = load_scenario(name, ["population.users=3000", "simulation.days=2"])
    per, r = per_user_day(monkeypatch, sc)
    ratio, se = ratio_and_se(per)
    assert 0.05 < se < 1.5, se  # a few thousand users pin the mean to within a few %
    assert abs(ratio - MODEL[name]) < CALIBRATION_TOL * MODEL[name] + 4 * se, (ratio, se)
    assert ratio > TARGET  # the known gap to PF §6 (see MODEL): if this fails, recalibrate MODEL
    x = per[per > 0]
    p10, p50, p90 = np.percentile(x, [10, 50, 90])
    # heavy right tail, as the reference's log-normal: p10 < median < mean, and p90 several times p10.
    # (PF §6's log-normal with p10 5 and p90 100 has mean 44 and median 22: 25 cannot be both its mean
    # and p10/p90 5/100; the defaults aim at the mean.)
    assert p10 < p50 < ratio < p90, (p10, p50, ratio, p90)
    assert p10 <= 10 and p90 >= 40 and p90 / p10 >= 5, (p10, p90)
    c = r.usage["counts"]
    # foreground sessions and push wake-ups are the large causes (bursts merged: fewer wakes than copies
    # notified); Doze windows are well below both
    assert c["connections_foreground"] > c["connections_background"] > 0
    assert c["connections_push"] > c["connections_background"]
    assert c["push_wakeups"] < 0.8 * c["push_notifications"]
    # launches: the spontaneous ones and those a notification prompts add up to sessions_per_dau_per_day (20) per
    # day-active user-day (8 %: the prompted rate subtracted is the user's mean over earlier active days, one day
    # of history on the period's first day, and every day-active user launches at least once)
    launches = (c["sessions_spontaneous"] + c["sessions_prompted"]) / c["day_active_user_days"]
    assert launches == pytest.approx(sc.activity.sessions_per_dau_per_day, rel=0.08), launches
    assert c["sessions_prompted"] > 0.2 * c["sessions_spontaneous"]


def test_sessions_starting_during_linger_do_not_reconnect(world_scenario):
    """Socket linger after backgrounding merges sessions: M/G/inf busy periods with service = session + linger.

    Poisson session starts (rate lambda per user), exponential sessions (mean mu) and a linger L: a user's
    connections are the busy periods of an M/G/inf queue with service mu + L, whose rate is
    lambda exp(-lambda (mu + L)); without the merge it would be lambda.
    """
    n, days, lam_day, mu, linger = 2000, 1, 96, 120.0, 300.0
    sc = world_scenario(
        simulation={"days": days},
        population={"users": n, "dau_over_mau": 1.0, "device_mix": "android", "timezones": "utc"},
        activity={"sessions_per_dau_per_day": lam_day, "session_rate_sigma": 0.0, "min_one_session": False,
                  "session_mean_s": mu, "session_distribution": "exponential", "diurnal": {"shape": "flat"}},
        os={"android": {"bg_socket_lifetime_s": linger, "keeps_background_socket": 0.0}},
        push={"enabled": False},
        messaging={"messages_per_dau_per_day": 0},
        calls={"calls_per_dau_per_day": 0},
    )
    c = simulate(sc, progress=False, raise_errors=True).usage["counts"]
    lam = lam_day / 86_400
    expected = n * days * lam_day * math.exp(-lam * (mu + linger))
    sessions = n * days * lam_day
    # busy periods per user-day are under-dispersed vs Poisson; 5 sqrt(mean) + edge effects of one day
    assert abs(c["connections"] - expected) < 5 * math.sqrt(expected) + 0.01 * expected, (c["connections"], expected)
    assert c["connections"] < 0.75 * sessions  # about a third of the sessions merged into a lingering socket


def test_session_rate_sigma_spreads_users(world_scenario):
    """A per-user log-normal session-rate multiplier (Falaki's 10-200 interactions/day) widens the spread."""
    base = dict(
        simulation={"days": 1},
        population={"users": 2000, "dau_over_mau": 1.0, "timezones": "utc"},
        os={"android": {"keeps_background_socket": 0.0}},
        push={"enabled": False},
        messaging={"messages_per_dau_per_day": 0},
        calls={"calls_per_dau_per_day": 0},
    )
    spreads = []
    for sigma in (0.0, 1.0):
        sc = world_scenario(**base, activity={"session_rate_sigma": sigma})
        mult = Population.draw(sc, Streams(sc.seed)).session_mult
        assert mult.mean() == pytest.approx(1.0, abs=0.1 if sigma else 1e-12)
        spreads.append(np.percentile(mult, 90) / np.percentile(mult, 10))
        c = simulate(sc, progress=False, raise_errors=True).usage["counts"]
        # the mean number of sessions stays sessions_per_dau_per_day (20) whatever the spread (few merges)
        assert c["connections"] == pytest.approx(2000 * 20, rel=0.08)
    assert spreads[0] == 1.0
    assert spreads[1] == pytest.approx(math.exp(2 * 1.2816), rel=0.25)  # p90/p10 of a log-normal, sigma 1
