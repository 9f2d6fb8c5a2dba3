"""Who is active, and when the period is: MAU is the active users; a period may start at any minute.

Regression tests for two artefacts: users who never use the app connected all the same (their
Android app's background socket had Doze windows), and a period not starting at 00:00 UTC failed after
the whole simulation (per-day meters had one value per 24 h of simulation, not per calendar day).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from sim.pricing.plan import load_plan
from sim.pricing.pricing import price
from sim.pricing.usage import usage_from_dict
from sim.rng import Streams
from sim.scenario import validate_scenario
from sim.simulate import simulate
from sim.world.population import Population


def chat(**sections):
    base = {"name": "p", "seed": 5, "simulation": {"days": 3},
            "population": {"users": 1200, "timezones": "europe"},
            # every Android app keeps a background socket: the case where inactive users used to connect
            "os": {"android": {"keeps_background_socket": 1.0}}}
    for k, v in sections.items():
        base[k] = {**base.get(k, {}), **v}
    return validate_scenario(base)


@pytest.mark.parametrize("fraction", [0.0, 0.3, 1.0])
def test_mau_is_exactly_the_active_users(fraction):
    sc = chat(population={"monthly_active_fraction": fraction})
    r = simulate(sc, progress=False, raise_errors=True)
    active = int(Population.draw(sc, Streams(sc.seed)).active.sum())
    assert sum(r.usage["meters"]["mau"]["values"]) == active
    if fraction == 0:
        assert r.usage["counts"]["connections"] == 0 and r.usage["counts"].get("messages_sent", 0) == 0
        assert r.usage["breakdown"]["outbound"]["tls_handshake"] == 0


def test_dau_over_mau_is_kept_while_every_active_user_shows_up():
    # 10 days at dau_over_mau 0.4: each active user has a sure day and other days at (0.4 - 0.1) / 0.9
    sc = chat(simulation={"days": 10}, population={"dau_over_mau": 0.4, "users": 3000},
              push={"enabled": False}, calls={"calls_per_dau_per_day": 0}, os={"android": {"keeps_background_socket": 0}})
    r = simulate(sc, progress=False, raise_errors=True)
    mau = sum(r.usage["meters"]["mau"]["values"])
    dau = np.array(r.usage["activity"]["dau"]["values"], dtype=float)
    # DAU counts day-active users (sessions) plus users still online from the day before (a few %)
    ratio = dau.mean() / mau
    se = np.sqrt(0.4 * 0.6 / mau / dau.size)
    assert 0.4 - 4 * se < ratio < 0.4 * 1.05 + 4 * se


@pytest.mark.parametrize("start, tz, n_days", [
    ("2026-11-01T00:00:00+01:00", "+01:00", 2),      # local midnight east of UTC
    ("2026-11-01T00:00:00-08:00", "-08:00", 2),      # local midnight west of UTC
    ("2026-11-01T12:00:00Z", None, 3),               # noon UTC: 2 x 24 h touch 3 calendar days
    ("2026-11-01T09:37:00+05:30", "+05:30", 3),      # any minute, any offset
])
def test_a_period_may_start_at_any_minute_in_any_time_zone(start, tz, n_days):
    sc = chat(simulation={"days": 2, "start": start}, population={"users": 400})
    assert sc.simulation.tz == tz
    r = simulate(sc, progress=False, raise_errors=True)
    u = r.usage
    assert u["period"].get("tz") == tz
    assert len(u["activity"]["dau"]["values"]) == n_days
    assert len(u["meters"]["outbound_bytes"]["values"]) == 2 * 1440
    usage = usage_from_dict(u, "<run>")
    for plan in ("mesibo-cloud", "mesibo-free"):
        bill = price(usage, load_plan(plan))
        assert bill.total >= Decimal("0")


def test_iot_element_counts_have_one_value_per_calendar_day():
    from sim.scenario import load_scenario

    sc = load_scenario("scenarios/iot-trackers.yaml", ["simulation.days=2", "iot.devices=20",
                                                       "simulation.start=2026-11-01T06:00:00Z"])
    r = simulate(sc, progress=False, raise_errors=True)
    assert len(r.usage["meters"]["channels"]["values"]) == 3
    bill = price(usage_from_dict(r.usage, "<run>"), load_plan("flespi-commercial"))
    assert bill.total >= Decimal("100")


def test_calendar_days_follow_a_daylight_saving_change():
    # Europe/Berlin leaves summer time on 2026-10-25: that calendar day has 25 hours, and 3 x 24 h from
    # 2026-10-24T00:00+02:00 end at 2026-10-26T23:00+01:00: three calendar days, the last one 23 h long
    sc = chat(simulation={"days": 3, "start": "2026-10-24T00:00:00+02:00", "tz": "Europe/Berlin"},
              population={"users": 300})
    r = simulate(sc, progress=False, raise_errors=True)
    assert r.usage["period"]["tz"] == "Europe/Berlin"
    assert len(r.usage["activity"]["dau"]["values"]) == 3
    price(usage_from_dict(r.usage, "<run>"), load_plan("mesibo-cloud"))


@pytest.mark.parametrize("start", ["2026-11-01T00:00:00Z", "2026-11-01T12:00:00Z"])
def test_iot_trips_follow_the_fleets_local_clock_whatever_the_start(start):
    # trips start by local hour (hour_weights); a fleet at UTC+3 peaks 3 hours earlier in UTC, and moving the
    # period start must not move it (the fleet used to read its hours from the start, and with the offset's sign
    # reversed)
    from sim.scenario import load_scenario

    weights = [0.0] * 24
    weights[18] = 1.0  # every trip starts between 18:00 and 19:00 local time
    sc = load_scenario("scenarios/iot-trackers.yaml", ["simulation.days=2", "iot.devices=200",
                                                       f"simulation.start={start}", "iot.utc_offset_hours=3",
                                                       f"iot.hour_weights={weights}", "iot.moving_fraction=0.3"])
    f = simulate(sc, progress=False, raise_errors=True).frame
    by_hour = f["iot_messages"].groupby(f.index.hour).sum()
    assert int(by_hour.idxmax()) == 15  # 18:00 local at UTC+3
