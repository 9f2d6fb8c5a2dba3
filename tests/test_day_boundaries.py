"""The seams of the day-by-day world do not show: no jump at midnight, no start-up transient.

The fast engine builds one day at a time, and a state that is lost at midnight (a push-throttle slot,
a Doze schedule, a connection, a session) makes concurrency and connects jump at every 00:00 of the
world's clock; a run that starts from nothing shows a transient at t = 0. Both reach bills (peak CCU
is billed and limited). The test world is stationary (flat diurnal profile, one time zone), so every
15-minute window has the same expected concurrency and connect rate, and any systematic difference
between the windows just after a boundary and those just before it is an artefact.

Test: for each seed, d = mean over midnights of (window after - window before), and for the start
d0 = first 5 minutes - the run's level after its first two hours; over S seeds the d (and d0) are
i.i.d., and a two-sided one-sample Student t test of mean = 0 is run for each quantity at
alpha = 0.001 (two quantities, two kinds of seam, two worlds: family-wise false-alarm rate <= 0.8 %).
The same test is shown to fail on injected faults: a run without warm-up (the start transient), and
a world that forgets its push-throttle slots at midnight (what the model used to do).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sim.scenario import validate_scenario
from sim.simulate import simulate

ALPHA = 0.001
WINDOW = 20  # minutes either side of a midnight
START = 5  # minutes at the start of the period (a start-up transient is steepest there)
SEEDS = range(1, 9)
DAYS = 3


#: A world where a lost throttle slot shows most: iPhones only, one wake per recipient per 4 hours.
LONG_THROTTLE = {"population": {"device_mix": "ios"}, "push": {"min_interval_ios_s": 14_400}}


def scenario(seed: int, extra: dict | None = None, **sim):
    raw = {
        "name": "seams", "seed": seed,
        "simulation": {"days": DAYS, **sim},
        "population": {"users": 2500, "timezones": "utc"},
        "activity": {"diurnal": {"shape": "flat"}},
        "messaging": {"group_fraction": 0.2, "group_recipients_mean": 6, "read_receipts": True},
        "calls": {"calls_per_dau_per_day": 0.3},
    }
    for k, v in (extra or {}).items():
        raw[k] = {**raw.get(k, {}), **v}
    return validate_scenario(raw)


def seam_differences(runs, col: str) -> tuple[np.ndarray, np.ndarray]:
    """Per seed: mean over midnights of (window after - window before); and the first window of the period
    (5 minutes) minus the run's level away from the start (the mean after its first two hours: the world is stationary)."""
    mid, start = [], []
    for frame in runs:
        x = frame[col].to_numpy(dtype=float)
        before = np.array([x[d * 1440 - WINDOW: d * 1440].mean() for d in range(1, DAYS)])
        after = np.array([x[d * 1440: d * 1440 + WINDOW].mean() for d in range(1, DAYS)])
        mid.append(after.mean() - before.mean())
        start.append(x[:START].mean() - x[120:].mean())
    return np.array(mid), np.array(start)


def rejects(d: np.ndarray) -> bool:
    """Two-sided one-sample t test of mean(d) = 0 at ALPHA."""
    return stats.ttest_1samp(d, 0.0).pvalue < ALPHA


def frames(extra: dict | None = None, **sim):
    out = []
    for s in SEEDS:
        r = simulate(scenario(s, extra, **sim), progress=False, raise_errors=True)
        out.append(r.frame)
    return out


@pytest.fixture(scope="module", params=["platform throttles", "long iOS throttle"])
def steady(request):
    return frames(LONG_THROTTLE if request.param == "long iOS throttle" else None)


@pytest.mark.slow
@pytest.mark.parametrize("col", ["ccu", "connects"])
def test_no_jump_at_midnight_and_no_start_transient(steady, col):
    mid, start = seam_differences(steady, col)
    level = np.mean([f[col].mean() for f in steady])
    assert level > (30 if col == "ccu" else 5)  # a world busy enough for the test to see something
    assert not rejects(mid), (col, mid, level)
    assert not rejects(start), (col, start, level)


@pytest.mark.slow
def test_the_test_sees_a_start_transient_without_warm_up():
    # injected fault: no warm-up, so the run starts with nobody connected, nobody in Doze, nothing stored
    mid, start = seam_differences(frames(warmup_days=0), "ccu")
    assert rejects(start) and start.mean() < 0


@pytest.mark.slow
def test_the_test_sees_push_throttle_state_lost_at_midnight(monkeypatch):
    # injected fault: the world forgets at midnight which throttle slots already had their wake-up (as the
    # model did before): every recipient woken late in the evening is woken again by the first copy after 00:00
    import sim.world.mobile.world as mobile

    orig = mobile.MobileWorld.step

    def forgetful(self, d):
        self.push_state.forget()
        return orig(self, d)

    monkeypatch.setattr(mobile.MobileWorld, "step", forgetful)
    mid, _ = seam_differences(frames(LONG_THROTTLE), "connects")
    assert rejects(mid) and mid.mean() > 0


def test_a_period_starting_at_noon_has_its_evening_peak_at_the_same_utc_hours():
    # the diurnal curve is in local time: moving the period start must not move the users' evenings. The peak
    # hour is read as the phase of the daily harmonic of concurrency by UTC hour (robust, unlike an argmax).
    def peak_hour(start: str) -> float:
        sc = validate_scenario({"name": "p", "seed": 3, "simulation": {"days": 2, "start": start},
                                "population": {"users": 2000, "timezones": "utc"}})
        f = simulate(sc, progress=False, raise_errors=True).frame
        by_hour = f["ccu"].groupby(f.index.hour).mean().reindex(range(24)).to_numpy()
        phase = np.angle((by_hour * np.exp(2j * np.pi * np.arange(24) / 24)).sum())
        return float(np.mod(phase * 24 / (2 * np.pi), 24))

    a, b = peak_hour("2026-11-01T00:00:00Z"), peak_hour("2026-11-01T12:00:00Z")
    assert abs(a - b) < 1.0 and 19 <= a <= 23, (a, b)  # default evening peak at 21:00 local (UTC users)
