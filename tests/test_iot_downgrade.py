"""The IoT fleet under a downgrade to the free plan (IoT seed, "Billing terms"; sim/world/iot/enforcer.py).

"your account will be downgraded to the free version ... channels, devices, storage etc. exceeding the free
limits will be unavailable"; "Once you pay both invoices ... your limits and data will be restored
immediately". Inside a window, devices beyond the free counts are closed at the start, refused at every
attempt (each paying a handshake), keep their telemetry on the device and storm back at the end.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np
import pytest
from conservation import iot_conserved as conserved
from conservation import same_books as same

from sim.meters import MeterBook
from sim.pricing.invoices import calendar_months, invoice_timeline
from sim.pricing.plan import load_plan
from sim.pricing.restrictions import Restriction
from sim.world.events.iot import simulate_fleet_events
from sim.world.iot.enforcer import IotLimits, IotPlanLimits, free_counts
from sim.world.iot.fleet import IotFleetConfig, _Fleet, simulate_fleet

START = datetime(2026, 11, 1, tzinfo=UTC)
FREE = load_plan("flespi-free")
COMMERCIAL = load_plan("flespi-commercial")
DAY = 86400
WINDOW = [(DAY, 2 * DAY)]  # the second of three days
#: 150 trackers, the owner's application holds no session (so the free plan keeps exactly 100 devices)
FLEET = {"devices": 150, "extra_mqtt_sessions": 0, "read_every_min": 60}
QUIET = {"drops_per_device_per_day": 0.0, "payload_bytes": (100, 100)}


def downgraded(windows=WINDOW, free=FREE, dry_run=False) -> IotPlanLimits:
    return IotPlanLimits.from_plan(COMMERCIAL, dry_run=dry_run).with_downgrades(windows, free)


def run(enforcer=None, days=3, seed=3, engine=simulate_fleet, **kw):
    cfg = IotFleetConfig(**{**FLEET, **kw})
    book = MeterBook(start=START, minutes=days * 1440, days=days)
    seq = np.random.SeedSequence(seed)
    meters = engine(cfg, start=START, days=days, seed=seq, book=book, enforcer=enforcer)
    return book, meters


def fleet_run(enforcer=None, days=3, seed=3, **kw):
    """The fast engine's run with its outage table (as simulate_fleet does it)."""
    cfg = IotFleetConfig(**{**FLEET, **kw})
    if enforcer is not None and hasattr(enforcer, "crossing"):
        enforcer.start = START
    fleet = _Fleet(cfg, days, np.random.SeedSequence(seed), enforcer, 0)
    for _ in fleet.chunks():
        pass
    book = MeterBook(start=START, minutes=days * 1440, days=days)
    fleet.write(book, np.random.SeedSequence(seed))
    return fleet, book


def attempts_inside(a: int, b: int, b0: int = 1, bmax: int = 128) -> int:
    """Back-off attempts at a + 1, a + 3, a + 7, ... (doubling to the cap) strictly inside (a, b)."""
    n, t, step = 0, a, b0
    while True:
        t += step
        if t >= b:
            return n
        n += 1
        step = min(step * 2, bmax)


def test_free_plan_counts():
    assert free_counts(FREE) == {"devices": 100, "channels": 3, "mqtt_sessions": 100}
    lim = downgraded()
    assert (lim.downgrade_devices, lim.downgrade_channels, lim.downgrade_mqtt_sessions) == (100, 3, 100)
    with pytest.raises(ValueError):
        IotPlanLimits().with_downgrades([(10, 5)], FREE)
    with pytest.raises(ValueError):
        IotPlanLimits().with_downgrades([(1.5, None)], FREE)


def test_refused_only_inside_the_window_only_beyond_100_devices():
    lim = downgraded()
    fleet, book = fleet_run(lim)
    c, rep = book.counts, lim.report
    conserved(c)
    o = fleet.out.full()
    rr, rt = o.rejected()
    assert len(rt) > 0 and (rt >= DAY).all() and (rt < 2 * DAY).all()  # only inside the window
    assert set(o.dev[rr].tolist()) == set(range(100, 150))  # only the devices beyond the free 100
    # counted: report == book, like every refused connection (each paid a handshake)
    dg = rep["downgrades"]
    assert dg["acted"] and dg["devices_kept"] == 100 and dg["devices_affected"] == 50
    assert dg["refused_attempts"] == len(rt) == c["iot_downgrade_refusals"] == c["rejected_connections"]
    assert rep["rejected_connections"] == {"downgraded": len(rt)}
    assert c["full_handshakes"] + c["resumed_handshakes"] == c["connections"] + c["rejected_connections"]
    (w,) = dg["windows"]
    assert (w["start"], w["end"]) == ("2026-11-02T00:00:00+00:00", "2026-11-03T00:00:00+00:00")
    assert w["refused_attempts"] == len(rt)
    # a device up at the window's start is closed then and retries on its back-off: exactly these attempts
    up_at_start = w["connections_closed"]
    assert 40 <= up_at_start <= 50
    per_dev = np.bincount(o.dev[rr], minlength=150)[100:]
    assert (per_dev == attempts_inside(DAY, 2 * DAY)).sum() >= up_at_start
    # the kept devices live exactly as in the unrestricted run
    free_fleet, _ = fleet_run(IotPlanLimits.from_plan(COMMERCIAL))
    fo = free_fleet.out.full()
    for col in ("t_down", "t_up"):
        mine = getattr(o, col)[(o.dev < 100) & o.active]
        theirs = getattr(fo, col)[(fo.dev < 100) & fo.active]
        assert np.array_equal(mine, theirs)


def test_devices_already_down_at_the_start_stay_down_until_the_end():
    # long coverage gaps: many devices are inside a cellular outage when the window opens; their own
    # reconnection attempts are refused inside the window too
    lim = downgraded()
    fleet, book = fleet_run(lim, drops_per_device_per_day=6.0, coverage_gap_mean_s=3600.0)
    conserved(book.counts)
    w = lim.report["downgrades"]["windows"][0]
    assert w["connections_closed"] <= 45  # at least 5 of the 50 were down at the window's start
    o = fleet.out.full()
    aff = o.active & (o.dev >= 100)
    assert not ((o.t_up[aff] >= DAY) & (o.t_up[aff] < 2 * DAY)).any()
    rr, rt = o.rejected()
    late = o.dev[rr] >= 100
    assert ((rt[late] >= DAY) & (rt[late] < 2 * DAY)).sum() == w["refused_attempts"]


def test_quiet_fleet_exact_attempts_and_storm_at_restoration():
    lim = downgraded()
    fleet, book = fleet_run(lim, **QUIET)
    n = attempts_inside(DAY, 2 * DAY)  # 680: 1, 3, ..., 255 s, then every 128 s
    assert book.counts["rejected_connections"] == 50 * n
    # all 50 come back at their first attempt after the window: in one second, 127 s after restoration
    o = fleet.out.full()
    back = o.t_up[o.active & (o.dev >= 100) & (o.t_up >= 2 * DAY) & (o.t_up < 3 * DAY)]
    assert len(back) == 50 and len(set(back.tolist())) == 1 and back[0] == 2 * DAY + 127
    w = lim.report["downgrades"]["windows"][0]
    assert w["reconnections"] == w["storm_peak_per_minute"] == 50
    assert w["storm_peak_minute"] == "2026-11-03T00:02:00+00:00"


def test_storm_far_above_the_usual_connection_rate():
    lim = downgraded()
    fleet, book = fleet_run(lim, drops_per_device_per_day=2.0)
    base_fleet, base_book = fleet_run(IotPlanLimits.from_plan(COMMERCIAL), drops_per_device_per_day=2.0)
    usual = base_book.counts["connections"] / (3 * 1440)  # per minute, 150 devices x 2 drops a day
    assert usual < 0.5
    o = fleet.out.full()
    t = o.t_up[o.active & (o.t_up < 3 * DAY)]
    first_after = np.bincount((t[(t >= 2 * DAY) & (t < 2 * DAY + 128)] - 2 * DAY) // 60, minlength=3)
    w = lim.report["downgrades"]["windows"][0]
    assert w["reconnections"] == 50 and w["storm_peak_per_minute"] >= 40
    assert first_after.max() >= 40 > 50 * usual


@pytest.mark.parametrize("qos", [0, 1])
def test_messages_conserved_wait_on_the_device_and_overflow(qos):
    # a 100-message queue: the day's telemetry of an unavailable device overflows it
    lim = downgraded()
    book, _ = run(lim, qos=qos, device_queue_max=100, drops_per_device_per_day=2.0)
    free_book, _ = run(IotPlanLimits.from_plan(COMMERCIAL), qos=qos, device_queue_max=100,
                       drops_per_device_per_day=2.0)  # fmt: skip
    c, rep = book.counts, lim.report
    conserved(c)
    assert c["iot_messages_sent"] == free_book.counts["iot_messages_sent"]  # the schedule is the same
    lost = c["iot_dropped_device_queue_full"] - free_book.counts["iot_dropped_device_queue_full"]
    assert lost > 50 * 100  # every unavailable device loses most of a day beyond its 100 queued messages
    assert rep["dropped"]["device_queue_full"] == c["iot_dropped_device_queue_full"]
    assert c["iot_pending_on_device_end"] == 0  # all delivered after the storm
    # an unbounded queue loses nothing: everything arrives after restoration
    lim = downgraded()
    book, _ = run(lim, qos=qos, device_queue_max=None, drops_per_device_per_day=2.0)
    conserved(book.counts)
    assert book.counts["iot_dropped_device_queue_full"] == 0
    assert book.counts["iot_delivered"] + book.counts["iot_dropped"] == book.counts["iot_messages_sent"]


def test_open_window_unavailable_to_the_end_and_window_from_the_start():
    lim = downgraded([(0, 3600), (2 * DAY, None)])
    book, _ = run(lim, drops_per_device_per_day=2.0)
    c, dg = book.counts, lim.report["downgrades"]
    conserved(c)
    first, last = dg["windows"]
    assert first["connections_closed"] == 0 and first["reconnections"] == 50  # never connected, then back
    assert last["end"] is None and last["unavailable_at_end"] == 50 and last["reconnections"] == 0
    assert c["iot_pending_on_device_end"] > 0


def test_channels_and_sessions_fold_into_the_devices_kept():
    # 5 channels of 30 devices: the free plan's 3 channels hold devices 0..89 (fewer than 100)
    lim = downgraded()
    fleet, book = fleet_run(lim, channels=5, **QUIET)
    assert lim.report["downgrades"]["devices_kept"] == 90
    o = fleet.out.full()
    rr, _ = o.rejected()
    assert set(o.dev[rr].tolist()) == set(range(90, 150))
    # the owner's application holds a session: 100 free sessions leave 99 devices
    lim = downgraded()
    fleet, _ = fleet_run(lim, extra_mqtt_sessions=1, **QUIET)
    assert lim.report["downgrades"]["devices_kept"] == 99


def test_with_a_channel_suspension_nothing_connects_inside_the_window():
    # a channel limit binding at the morning peak and after every storm, around and inside a window 06:00-09:00
    msgs = Restriction(scope="channel", measure="messages_per_minute", limit=150, action="suspend",
                       duration="1min")  # fmt: skip
    plan = COMMERCIAL.model_copy(update={"restrictions": {"channel_messages_per_minute": msgs}})
    a, b = 6 * 3600, 9 * 3600
    lim = IotPlanLimits.from_plan(plan).with_downgrades([(a, b)], FREE)
    fleet, book = fleet_run(lim, days=1, drops_per_device_per_day=4.0)
    c = book.counts
    conserved(c)
    starts = [datetime.fromisoformat(s["start"]) for s in lim.report["suspensions"]]
    inside = sum(a <= (t - START).total_seconds() < b for t in starts)
    assert inside > 5 and len(starts) > inside + 100
    o = fleet.out.full()
    aff = o.active & (o.dev >= 100)
    assert not ((o.t_up[aff] >= a) & (o.t_up[aff] < b)).any()
    # the 100 kept devices do reconnect inside the window (after their channel's suspensions)
    kept = o.active & (o.dev < 100)
    assert ((o.t_up[kept] >= a) & (o.t_up[kept] < b)).sum() > 100
    rej = lim.report["rejected_connections"]
    assert rej["downgraded"] == lim.report["downgrades"]["refused_attempts"] > 0
    assert rej["channel_suspended"] > 0
    assert rej["downgraded"] + rej["channel_suspended"] == c["rejected_connections"]


def test_no_window_window_after_the_run_and_dry_run_are_bit_identical():
    kw = {"drops_per_device_per_day": 4.0}
    base = run(IotPlanLimits.from_plan(COMMERCIAL), **kw)
    same(base, run(None, **kw))
    same(base, run(downgraded([]), **kw))
    after = downgraded([(3 * DAY, None)])  # starts when the run ends
    same(base, run(after, **kw))
    assert after.report["downgrades"]["acted"] is False
    dry = downgraded(dry_run=True)
    same(base, run(dry, **kw))
    assert dry.report["downgrades"]["acted"] is False and not dry.binds


def test_events_engine_same_exact_attempts_on_a_quiet_fleet():
    # the plain contract (no recorder): the free counts given directly
    kw = {"devices": 40, **QUIET}
    lim = IotLimits(downgrades=[(3600, 7200)], downgrade_devices=25)
    fast, _ = run(lim, days=1, **kw)
    lim = IotLimits(downgrades=[(3600, 7200)], downgrade_devices=25)
    ev, _ = run(lim, days=1, engine=simulate_fleet_events, **kw)
    n = attempts_inside(3600, 7200)
    for book in (fast, ev):
        c = book.counts
        conserved(c)
        assert c["rejected_connections"] == c["iot_downgrade_refusals"] == 15 * n
        assert c["iot_downgrade_devices"] == 15 and c["connections"] == 15  # the storm: each back once
        assert c["iot_pending_on_device_end"] == 0


def test_events_engine_conserves_with_drops_and_reports():
    lim = downgraded([(3600, 4 * 3600)])
    book, _ = run(lim, days=1, engine=simulate_fleet_events, devices=120, drops_per_device_per_day=4.0,
                  device_queue_max=200)  # fmt: skip
    c, dg = book.counts, lim.report["downgrades"]
    conserved(c)
    assert dg["devices_affected"] == 20 and dg["refused_attempts"] == c["iot_downgrade_refusals"] > 20 * 50
    assert lim.report["rejected_connections"]["downgraded"] == dg["refused_attempts"]
    assert dg["windows"][0]["reconnections"] == 20


def test_built_from_a_billing_timeline():
    # never paid from November: downgraded on January 1; a fleet running December 31 - January 1
    never = SimpleNamespace(policy="never", late_days=0)
    end = datetime(2027, 2, 1, tzinfo=UTC)
    tl = invoice_timeline(calendar_months(START, end), end, never, UTC)
    origin = datetime(2026, 12, 31, tzinfo=UTC)
    assert tl.windows_s(origin) == [(DAY, None)]
    lim = IotPlanLimits.from_plan(COMMERCIAL).with_downgrades(tl.windows_s(origin), FREE)
    cfg = IotFleetConfig(**FLEET, **QUIET)
    book = MeterBook(start=origin, minutes=2 * 1440, days=2)
    simulate_fleet(cfg, start=origin, days=2, seed=np.random.SeedSequence(1), book=book, enforcer=lim)
    (w,) = lim.report["downgrades"]["windows"]
    assert w["start"] == "2027-01-01T00:00:00+00:00" and w["end"] is None and w["unavailable_at_end"] == 50
    assert book.counts["rejected_connections"] == 50 * attempts_inside(DAY, 2 * DAY + 1)
