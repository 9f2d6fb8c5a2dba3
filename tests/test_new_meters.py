"""Meters other platforms bill: messages per direction and their sizes, connection time, channels, MQTT sessions.

The mobile world (both engines, through sim/world/connections.py and sim/world/message_meter.py) and the IoT fleet
(sim/world/iot/meters.py) write ``messages_in`` / ``messages_out`` (1min), ``message_sizes_in`` / ``_out`` and
``connection_seconds`` (1d distributions), ``connection_minutes`` / ``connection_hours`` (1d), ``peak_channels``
(1min, mobile) and ``mqtt_session_hours`` (1d, IoT). Checked against the run's own counts, byte breakdown and
concurrency, against a brute-force recount of the channels, against what a plan computes from the distribution,
and across sampling and billing months.
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal

import numpy as np
import pytest

from sim.meters import MeterBook
from sim.pricing.metering import measure
from sim.pricing.plan import load_plan, plan_from_dict
from sim.pricing.pricing import price
from sim.pricing.usage import usage_from_dict
from sim.scenario import load_scenario
from sim.simulate import simulate
from sim.world import connections as conn_mod
from sim.world.enforcer import Enforcer
from sim.world.iot.config import IotFleetConfig
from sim.world.iot.fleet import simulate_fleet

NEW_MOBILE = ("messages_in", "messages_out", "message_sizes_in", "message_sizes_out", "connection_seconds",
              "connection_minutes", "connection_hours", "peak_channels")
SMALL = ["population.users=300", "simulation.days=2"]


def run(sets, path="quick", **kw):
    r = simulate(load_scenario(path, sets), progress=False, raise_errors=True, **kw)
    assert r.ok, r.error
    return r


def items(meter):
    it = meter["items"]
    return (np.asarray(it["at"], dtype=np.int64), np.asarray(it["value"], dtype=np.float64),
            np.asarray(it["count"], dtype=np.float64))


def day_sums(values, days):
    """A 1min series of a UTC period summed per calendar day."""
    return np.asarray(values, dtype=np.float64).reshape(days, 1440).sum(axis=1)


class RejectSome(Enforcer):
    """Refuses every message of users whose id is a multiple of 3 (one refused attempt each, no retry)."""

    def admit_messages(self, t_ms, sender, fanout, sizes=None):
        return np.asarray(sender) % 3 != 0


@pytest.fixture(scope="module", params=["fast", "events"])
def engine_run(request):
    return request.param, run([*SMALL, f"engine={request.param}"])


# -- messages -------------------------------------------------------------------------------------------------
def test_messages_in_and_out_are_the_runs_uploads_and_deliveries(engine_run):
    _, r = engine_run
    m, c = r.usage["meters"], r.usage["counts"]
    assert set(NEW_MOBILE) <= set(m)
    n_in, n_out = sum(m["messages_in"]["values"]), sum(m["messages_out"]["values"])
    assert n_in == c["messages_originated"] + c["receipts_sent"] + c.get("rejected_attempts", 0) > 0
    assert n_out == c["delivered"] + c["receipts_delivered"] > 0
    for d in ("in", "out"):
        at, value, count = items(m[f"message_sizes_{d}"])
        assert count.sum() == sum(m[f"messages_{d}"]["values"])
        # by calendar day: the day's messages per minute
        per_day = np.bincount(at, weights=count, minlength=2)
        np.testing.assert_array_equal(per_day, day_sums(m[f"messages_{d}"]["values"], 2))
        assert (value > 0).all() and (count == np.floor(count)).all()


def test_days_are_the_periods_calendar_days_in_its_time_zone():
    """A period in Berlin over the end of summer time: its second day has 25 hours, its last one 23 of 24."""
    from sim.pricing.period import Interval, Period

    r = run(["population.users=300", "simulation.days=3", "simulation.start=2026-10-24T00:00:00+02:00",
             "simulation.tz=Europe/Berlin"])
    m, p = r.usage["meters"], r.usage["period"]
    period = Period.create(p["start"], p["end"], p["tz"])
    bounds = period.day_bounds(Interval.parse("1min"))
    assert period.days == 3 and list(np.diff(np.r_[bounds, 3 * 1440])) == [1440, 1500, 1380]
    for d in ("in", "out"):
        at, _, count = items(m[f"message_sizes_{d}"])
        np.testing.assert_array_equal(np.bincount(at, weights=count, minlength=3),
                                      np.add.reduceat(np.asarray(m[f"messages_{d}"]["values"], dtype=float), bounds))
    at, _, count = items(m["connection_seconds"])
    assert set(at.tolist()) == {0, 1, 2}
    usage_from_dict(r.usage, "<run>")


def test_sizes_add_up_to_the_payload_bytes_when_only_messages_carry_payload():
    r = run([*SMALL, "messaging.delivery_receipts=false", "messaging.read_receipts=false"])
    m, bd = r.usage["meters"], r.usage["breakdown"]
    for d, side in (("in", "inbound"), ("out", "outbound")):
        _, value, count = items(m[f"message_sizes_{d}"])
        assert float((value * count).sum()) == bd[side]["payload"] > 0


@pytest.mark.parametrize("engine", ["fast", "events"])
def test_refused_attempts_are_messages_in_and_their_error_replies_are_not_messages_out(engine):
    r = run([*SMALL, f"engine={engine}"], enforcer=RejectSome())
    m, c = r.usage["meters"], r.usage["counts"]
    assert c["rejected_attempts"] > 0
    assert sum(m["messages_in"]["values"]) == c["messages_originated"] + c["receipts_sent"] + c["rejected_attempts"]
    assert sum(m["messages_out"]["values"]) == c["delivered"] + c["receipts_delivered"]
    assert items(m["message_sizes_in"])[2].sum() == sum(m["messages_in"]["values"])


def test_the_error_reply_keeps_its_bytes():
    """``count=False`` changes the message meters only: the reply's bytes are the same."""
    from sim.protocol import Protocol
    from sim.scenario import validate_scenario
    from sim.world.message_meter import MessageMeter

    sc = validate_scenario({"name": "t", "simulation": {"days": 1}, "population": {"users": 10}}, "<t>")
    books = []
    for count in (True, False):
        book = MeterBook(start=datetime(2026, 11, 1), minutes=1440, days=1)
        mm = MessageMeter(book, Protocol(sc.protocol), sc.messaging, {})
        mm.add_messages(np.full(5, 24), np.array([3, 3, 9, 700, 1439]), "out", receipt=True, count=count)
        mm.add_messages(np.array([10, 250, 4000]), np.array([1, 2, 2]), "out", receipt=False, count=count)
        books.append((book, mm.meters()))
    (a, ma), (b, mb) = books
    assert all(np.array_equal(a.bytes[k], b.bytes[k]) for k in a.bytes)
    assert sum(ma["messages_out"]["values"]) == 8 and sum(mb["messages_out"]["values"]) == 0
    assert ma["message_sizes_out"]["items"] == {"at": [0, 0, 0, 0], "value": [10, 24, 250, 4000], "count": [1, 5, 1, 1]}
    assert mb["message_sizes_out"]["items"] == {"at": [], "value": [], "count": []}


# -- connection time ------------------------------------------------------------------------------------------
def test_connection_items_are_the_periods_connections(engine_run):
    _, r = engine_run
    m, c = r.usage["meters"], r.usage["counts"]
    at, sec, count = items(m["connection_seconds"])
    ccu = r.frame["ccu"].to_numpy()
    # every connection opened in the period, and those carried from the warm-up (up at its first minute)
    assert count.sum() == c["connections"] + ccu[0]
    # each connection's time, rounded up to whole seconds, against the concurrency at each minute's start
    hours = np.asarray(m["connection_hours"]["values"], dtype=np.float64)
    assert abs(hours.sum() * 60 - ccu.sum()) <= count.sum()
    assert hours.sum() <= (sec * count).sum() / 3600 <= hours.sum() + count.sum() / 3600
    # minutes: each item rounded up on its own, between the exact minutes and one more per item
    minutes = np.asarray(m["connection_minutes"]["values"], dtype=np.float64)
    per_day = np.bincount(at, weights=count, minlength=2)
    assert (minutes >= hours * 60 - 1e-6).all() and (minutes <= hours * 60 + per_day + 1e-6).all()
    np.testing.assert_array_equal(minutes, np.bincount(at, weights=np.ceil(sec / 60) * count, minlength=2))


def test_a_plan_computes_the_same_minutes_from_connection_seconds(engine_run):
    _, r = engine_run
    m = r.usage["meters"]
    plan = plan_from_dict({
        "name": "t", "description": "t", "currency": "USD",
        "metrics": {
            "per_connection": {"meter": "connection_seconds", "aggregation": "sum", "meter_unit": "seconds",
                               "unit": "minutes", "each": {"step": 1, "step_unit": "minutes"}},
            "connections": {"meter": "connection_seconds", "aggregation": "count", "unit": "connections"},
            "series": {"meter": "connection_minutes", "aggregation": "sum", "unit": "minutes"},
            "hours": {"meter": "connection_hours", "aggregation": "sum", "unit": "hours"}},
        "charges": [{"metric": "per_connection", "model": "per_unit", "unit_price": "0.001"}]}, "<t>")
    q = measure(plan, usage_from_dict(r.usage, "<run>"))
    assert q["per_connection"].quantity == q["series"].quantity == Decimal(sum(m["connection_minutes"]["values"]))
    assert q["connections"].quantity == Decimal(int(items(m["connection_seconds"])[2].sum()))
    assert float(q["hours"].quantity) == pytest.approx(sum(m["connection_hours"]["values"]), abs=1e-6)


def test_shipped_plans_price_the_simulated_usage():
    r = run(SMALL)
    usage = usage_from_dict(r.usage, "<run>")
    for name in ("ably-standard", "pubnub-transactions", "pusher-sandbox", "emqx-serverless"):
        b = price(usage, load_plan(name))
        assert not set(b.missing_meters) & set(NEW_MOBILE), (name, b.missing_meters)


def test_a_connection_of_no_time_opened_in_the_period_is_an_item_and_the_warm_ups_are_not():
    from sim.protocol import Protocol
    from sim.scenario import validate_scenario

    sc = validate_scenario({"name": "t", "simulation": {"days": 2}, "population": {"users": 10}}, "<t>")
    day = 86_400_000
    book = MeterBook(start=datetime(2026, 10, 31), minutes=3 * 1440, days=2)
    cm = conn_mod.ConnectionMeter(book, Protocol(sc.protocol), sc.network, 10, np.array([day, 2 * day]), True, True)
    user = np.array([0, 1, 2, 3, 4])
    start = np.array([day - 5000, day - 9000, day + 1000, 2 * day - 1500, day - 20])
    end = np.array([day, day + 1, day + 1000, 2 * day + 400, 3 * day + 5 * day])
    cm.record_close(user, start, end, None)
    meters = cm.time_meters()
    # all in the warm-up: none; carried, 1 ms in the period: 1 s on day 0; opened in it, 0 ms: 0 s on day 0;
    # across midnight, 1.9 s: 2 s on the day it ends (1); carried and open at the period end: its 2 days, on day 1
    assert meters["connection_seconds"]["items"] == {"at": [0, 0, 1, 1], "value": [0, 1, 2, 172800],
                                                     "count": [1, 1, 1, 1]}
    assert meters["connection_minutes"]["values"] == [1, 1 + 2880]
    assert meters["connection_hours"]["values"][0] == pytest.approx(1 / 3_600_000)


# -- channels ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ["fast", "events"])
def test_peak_channels_is_a_brute_force_count_of_channels_with_a_member_online(engine, monkeypatch):
    closes, meters = [], {}
    record_close, flush = conn_mod.ConnectionMeter.record_close, conn_mod.ConnectionMeter.flush

    def spy_close(self, user, start, end_ms, graceful, keepalives=None):
        closes.append((user.copy(), start.copy(), np.minimum(end_ms, self.end_ms)))
        return record_close(self, user, start, end_ms, graceful, keepalives)

    def spy_flush(self):
        meters["conn"] = self
        return flush(self)

    monkeypatch.setattr(conn_mod.ConnectionMeter, "record_close", spy_close)
    monkeypatch.setattr(conn_mod.ConnectionMeter, "flush", spy_flush)
    r = run([*SMALL, f"engine={engine}"])
    cm = meters["conn"]
    u, s, e = (np.concatenate([c[i] for c in closes]) for i in range(3))
    M = cm.minutes
    a, b = np.minimum(-(-s // 60_000), M), np.minimum(-(-e // 60_000), M)
    online = np.zeros((cm.active_day.shape[1], M + 1), dtype=np.int32)
    np.add.at(online, (u, a), 1)
    np.add.at(online, (u, b), -1)
    online = np.cumsum(online, axis=1)[:, :M] > 0
    from sim.rng import Streams
    from sim.world.population import Population

    groups = Population.draw(load_scenario("quick", [*SMALL, f"engine={engine}"]), Streams(r.seed)).social.groups
    gid = np.repeat(np.arange(groups.off.size - 1), np.diff(groups.off))
    attached = np.zeros((groups.off.size - 1, M), dtype=bool)
    np.logical_or.at(attached, gid, online[groups.items])
    m0 = cm.period_start // 60_000
    expect = np.maximum(np.asarray(r.usage["meters"]["peak_ccu"]["values"]), (online.sum(axis=0) + attached.sum(axis=0))[m0:])
    np.testing.assert_array_equal(r.usage["meters"]["peak_channels"]["values"], expect)
    # channel_minutes: the channels attached at each minute's start, each personal channel and group once
    np.testing.assert_array_equal(r.usage["meters"]["channel_minutes"]["values"],
                                  (online.sum(axis=0) + attached.sum(axis=0))[m0:])


def test_peak_channels_is_at_least_peak_ccu_and_equal_without_conversations(engine_run):
    _, r = engine_run
    m = r.usage["meters"]
    ch, ccu = np.asarray(m["peak_channels"]["values"]), np.asarray(m["peak_ccu"]["values"])
    assert (ch >= ccu).all() and ch.max() > ccu.max()  # each user is in ~4 groups
    plain = run([*SMALL, "messaging.conversations.enabled=false"])
    assert plain.usage["meters"]["peak_channels"] == plain.usage["meters"]["peak_ccu"]


def test_the_channel_bitmaps_are_cut_into_windows_when_large(monkeypatch):
    whole = run(SMALL)
    monkeypatch.setattr(conn_mod, "_BITMAP_BYTES", 1)  # one 64-minute window at a time
    cut = run(SMALL)
    assert cut.usage["meters"]["peak_channels"] == whole.usage["meters"]["peak_channels"]


# -- engines ------------------------------------------------------------------------------------------------------
def test_the_engines_agree_on_the_new_meters_statistically():
    """Not identical (their behavioural draws differ, tests/test_engines_agree.py); close on a mid-size app."""
    sets = ["population.users=800", "simulation.days=2"]
    fast, ev = run([*sets, "engine=fast"]), run([*sets, "engine=events"])
    fm, em = fast.usage["meters"], ev.usage["meters"]
    assert set(fm) == set(em)
    for name in ("messages_in", "messages_out", "connection_minutes", "connection_hours"):
        a, b = sum(fm[name]["values"]), sum(em[name]["values"])
        assert b == pytest.approx(a, rel=0.2), name
    for name in ("message_sizes_in", "message_sizes_out", "connection_seconds"):
        (_, va, ca), (_, vb, cb) = items(fm[name]), items(em[name])
        assert cb.sum() == pytest.approx(ca.sum(), rel=0.2), name
        assert (vb * cb).sum() / cb.sum() == pytest.approx((va * ca).sum() / ca.sum(), rel=0.25), name
    assert max(em["peak_channels"]["values"]) == pytest.approx(max(fm["peak_channels"]["values"]), rel=0.25)


# -- months and sampling ------------------------------------------------------------------------------------------
def test_month_slices_of_the_new_meters_add_up_to_the_whole_run():
    r = run(["population.users=120", "simulation.days=null", "simulation.months=2", "simulation.warmup_days=1"])
    whole = r.usage["meters"]
    assert len(r.months) == 2
    for name in ("messages_in", "messages_out", "connection_minutes", "connection_hours", "peak_channels"):
        parts = [m["meters"][name]["values"] for m in r.months]
        assert [x for p in parts for x in p] == whole[name]["values"], name
    nov_days = 30
    for name in ("message_sizes_in", "message_sizes_out", "connection_seconds"):
        at, value, count = items(whole[name])
        (a0, v0, c0), (a1, v1, c1) = (items(m["meters"][name]) for m in r.months)
        assert (a0 < nov_days).all() and (a1 < 31).all()
        np.testing.assert_array_equal(np.concatenate([a0, a1 + nov_days]), at)
        np.testing.assert_array_equal(np.concatenate([v0, v1]), value)
        np.testing.assert_array_equal(np.concatenate([c0, c1]), count)
        for m in r.months:  # each month's usage is an ordinary one-month usage
            usage_from_dict(m, "<month>")
    # a connection up at December's first instant is cut there: its November part and its December part
    ccu = r.frame["ccu"].to_numpy()
    assert items(whole["connection_seconds"])[2].sum() == r.usage["counts"]["connections"] + ccu[0] + ccu[nov_days * 1440]


def test_a_sampled_run_scales_the_new_meters_like_the_others():
    sets = ["population.users=600", "simulation.days=2", "population.timezones=europe"]
    sampled = run([*sets, "population.sample=60"])
    world = run([*sets[1:], "population.users=60"])  # the world a sample of 60 simulates
    sm, wm = sampled.usage["meters"], world.usage["meters"]
    for name in ("messages_in", "messages_out"):
        assert sum(sm[name]["values"]) == 10 * sum(wm[name]["values"])
        assert all(isinstance(v, int) for v in sm[name]["values"])
    for name in ("message_sizes_in", "message_sizes_out", "connection_seconds"):
        (a, v, c), (wa, wv, wc) = items(sm[name]), items(wm[name])
        np.testing.assert_array_equal(a, wa)
        np.testing.assert_array_equal(v, wv)
        np.testing.assert_allclose(c, 10 * wc)
    for name in ("connection_minutes", "connection_hours"):
        np.testing.assert_allclose(sm[name]["values"], 10 * np.asarray(wm[name]["values"]), rtol=1e-12)
    ch, peak = np.asarray(sm["peak_channels"]["values"]), np.asarray(sm["peak_ccu"]["values"])
    assert (ch >= peak).all() and ch.max() > peak.max()
    usage_from_dict(sampled.usage, "<sampled>")


# -- IoT ----------------------------------------------------------------------------------------------------------
START = datetime(2026, 11, 1)
DROPPY = {"devices": 80, "drops_per_device_per_day": 8.0, "moving_interval_s": (20, 40), "read_every_min": 60,
          "buffer_ttl_min": 600}


def fleet(fn=simulate_fleet, days=1, seed=1, enforcer=None, **kw):
    cfg = IotFleetConfig(**kw)
    book = MeterBook(start=START, minutes=days * 1440, days=days)
    meters = fn(cfg, start=START, days=days, seed=np.random.SeedSequence(seed), book=book, enforcer=enforcer)
    return book, meters


def events_fleet(**kw):
    from sim.world.events.iot import simulate_fleet_events

    return fleet(simulate_fleet_events, **kw)


@pytest.fixture(scope="module", params=["fast", "events"])
def iot_run(request):
    book, meters = fleet(days=2, **DROPPY) if request.param == "fast" else events_fleet(days=2, **DROPPY)
    return request.param, book, meters


def test_iot_messages_are_the_publishes_on_the_wire(iot_run):
    _, book, m = iot_run
    c = book.counts
    n_in = sum(m["messages_in"]["values"])
    assert n_in == c["iot_delivered"] + c["iot_discarded"] + c["iot_rejected"] + c["iot_retransmitted"] > 0
    np.testing.assert_array_equal(m["messages_in"]["values"], book.series["iot_messages"])  # no limits: all kept
    at, value, count = items(m["message_sizes_in"])
    assert count.sum() == n_in and (value * count).sum() == book.total_bytes("in", "payload")
    np.testing.assert_array_equal(np.bincount(at, weights=count, minlength=2), day_sums(m["messages_in"]["values"], 2))
    assert set(m["messages_out"]["values"]) == {0} and len(m["messages_out"]["values"]) == 2 * 1440


def test_iot_connection_time_follows_the_connection_level(iot_run):
    _, book, m = iot_run
    at, sec, count = items(m["connection_seconds"])
    # the devices' connections up at the period start, and every reconnection
    assert count.sum() == book.counts["connections"] + DROPPY["devices"]
    hours = np.asarray(m["connection_hours"]["values"])
    np.testing.assert_allclose(hours, np.bincount(at, weights=sec * count, minlength=2) / 3600)
    level = book.series["iot_connections"]
    assert abs(hours.sum() * 60 - level.sum()) <= count.sum()
    minutes = np.asarray(m["connection_minutes"]["values"])
    np.testing.assert_array_equal(minutes, np.bincount(at, weights=np.ceil(sec / 60) * count, minlength=2))
    assert (minutes >= hours * 60).all() and (minutes <= hours * 60 + np.bincount(at, weights=count, minlength=2)).all()


def test_mqtt_session_hours_persistent_sessions_all_day_others_while_connected(iot_run):
    _, book, m = iot_run
    cfg = IotFleetConfig(**DROPPY)
    hours = np.asarray(m["mqtt_session_hours"]["values"])
    if cfg.persistent_sessions:
        assert list(hours) == [(cfg.devices + cfg.extra_mqtt_sessions) * 24] * 2
    book2, m2 = fleet(days=2, **{**DROPPY, "persistent_sessions": False, "extra_mqtt_sessions": 3})
    h2 = np.asarray(m2["mqtt_session_hours"]["values"])
    # the owner's 3 sessions all day, the devices' while connected (in-day): the whole connected time
    assert h2.sum() == pytest.approx(3 * 24 * 2 + sum(m2["connection_hours"]["values"]), rel=1e-12)
    assert (h2 <= 3 * 24 + cfg.devices * 24).all() and (h2 > 3 * 24).all()


def test_a_persistent_session_fleet_has_sessions_x_24_x_days():
    book, m = fleet(days=3, devices=40, persistent_sessions=True, extra_mqtt_sessions=2,
                    drops_per_device_per_day=0.0)
    assert m["mqtt_session_hours"]["values"] == [42 * 24] * 3 and sum(m["mqtt_session_hours"]["values"]) == 42 * 24 * 3
    # a quiet fleet: every device connected all period, one item each, on the last day, in both engines
    ev_book, ev = events_fleet(days=3, devices=40, persistent_sessions=True, extra_mqtt_sessions=2,
                               drops_per_device_per_day=0.0)
    for meters in (m, ev):
        assert meters["connection_seconds"]["items"] == {"at": [2], "value": [3 * 86400], "count": [40]}
        assert meters["connection_minutes"]["values"] == [0, 0, 40 * 3 * 1440]
    for name in ("messages_out", "mqtt_session_hours", "connection_hours", "connection_minutes"):
        assert m[name] == ev[name], name


def test_iot_engines_agree_on_connection_time():
    fast = [fleet(seed=s, **DROPPY) for s in (1, 2, 3)]
    ev = [events_fleet(seed=s, **DROPPY) for s in (1, 2, 3)]

    def mean(runs, name):
        return np.mean([sum(m[name]["values"]) for _, m in runs])

    for name in ("connection_minutes", "connection_hours", "messages_in"):
        assert mean(ev, name) == pytest.approx(mean(fast, name), rel=0.03), name
    n = [np.mean([items(m["connection_seconds"])[2].sum() for _, m in runs]) for runs in (fast, ev)]
    assert n[1] == pytest.approx(n[0], rel=0.1)


@pytest.mark.parametrize("engine", ["fast", "events"])
def test_iot_connections_with_suspensions_and_refused_sessions(engine):
    from sim.world.iot.enforcer import IotLimits

    lim = IotLimits(channel_messages_per_minute=24, mqtt_sessions=15)  # 14 devices with a session: 28 a minute
    kw = {"devices": 20, "moving_fraction": 1.0, "moving_interval_s": (30, 30), "drops_per_device_per_day": 4.0,
          "enforcer": lim}
    book, m = fleet(**kw) if engine == "fast" else events_fleet(**kw)
    c = book.counts
    assert c["channel_suspensions"] > 10 and c["mqtt_sessions_refused_devices"] > 0
    refused = c["mqtt_sessions_refused_devices"]
    _, sec, count = items(m["connection_seconds"])
    assert count.sum() == c["connections"] + 20 - refused
    assert abs(sum(m["connection_hours"]["values"]) * 60 - book.series["iot_connections"].sum()) <= count.sum()
    assert sum(m["messages_in"]["values"]) == (c["iot_delivered"] + c["iot_discarded"] + c["iot_rejected"]
                                               + c["iot_retransmitted"])


def test_an_iot_months_run_splits_connections_at_the_month_start_and_slices_add_up():
    r = run(["iot.devices=30", "simulation.days=null", "simulation.months=2", "iot.drops_per_device_per_day=1"],
            path="iot-trackers")
    whole = r.usage["meters"]
    for name in ("messages_in", "messages_out", "connection_minutes", "connection_hours", "mqtt_session_hours"):
        assert [x for m in r.months for x in m["meters"][name]["values"]] == whole[name]["values"], name
    for name in ("message_sizes_in", "connection_seconds"):
        total = sum(items(m["meters"][name])[2].sum() for m in r.months)
        assert total == items(whole[name])[2].sum()
    # each device is up at December's first instant unless a drop holds it down then: its connection cut in two
    n = items(whole["connection_seconds"])[2].sum()
    up = r.frame["iot_connections"].to_numpy()[30 * 1440]
    assert abs(n - (r.usage["counts"]["connections"] + 30 + up)) <= 2
    assert whole["mqtt_session_hours"]["values"] == [31 * 24] * 61


def test_a_sampled_fleet_scales_its_messages_and_keeps_the_full_fleets_sessions():
    sets = ["iot.devices=200", "simulation.days=2"]
    sampled = run([*sets, "iot.sample=20"], path="iot-trackers")
    world = run(["iot.devices=20", "simulation.days=2"], path="iot-trackers")
    sm, wm = sampled.usage["meters"], world.usage["meters"]
    assert sum(sm["messages_in"]["values"]) == 10 * sum(wm["messages_in"]["values"])
    np.testing.assert_allclose(items(sm["connection_seconds"])[2], 10 * items(wm["connection_seconds"])[2])
    assert sm["mqtt_session_hours"]["values"] == [201 * 24] * 2  # persistent: the full fleet's sessions all day
    assert math.isclose(sum(sm["connection_hours"]["values"]), 10 * sum(wm["connection_hours"]["values"]))
    usage_from_dict(sampled.usage, "<sampled>")


def test_meters_of_two_worlds_on_one_clock_add_up():
    """``sim.meters.add_meters``: a chat app's and a fleet's meters of one name (series value by value,
    distributions pair by pair)."""
    from sim.meters import add_meters

    a = {"interval": "1d", "items": {"at": [0, 1], "value": [10, 20], "count": [3, 1]}}
    b = {"interval": "1d", "items": {"at": [1, 0], "value": [20, 5], "count": [2, 7]}}
    assert add_meters(a, b) == {"interval": "1d", "items": {"at": [0, 0, 1], "value": [5, 10, 20], "count": [7, 3, 3]}}
    assert add_meters({"interval": "1min", "values": [1, 2]}, {"interval": "1min", "values": [0, 3]})["values"] == [1, 5]
    with pytest.raises(ValueError):
        add_meters({"interval": "1min", "values": [1]}, {"interval": "1d", "values": [1]})


def test_a_chat_app_and_a_fleet_on_one_run_add_their_messages_and_connection_time():
    """simulate's ``_merge_iot``: the app's and the fleet's meters of one name add up (they used to be replaced by
    the fleet's)."""
    base = ["iot.devices=20", "simulation.days=2"]
    app = ["population.users=200", "population.monthly_active_fraction=0.6"]
    both = run([*base, *app], path="iot-trackers").usage["meters"]
    fleet_only = run(base, path="iot-trackers").usage["meters"]
    app_only = run([*base, *app, "iot=null"],
                   path="iot-trackers").usage["meters"]
    assert sum(app_only["messages_in"]["values"]) > 0 and sum(fleet_only["messages_in"]["values"]) > 0
    for name in ("messages_in", "messages_out", "connection_minutes"):
        assert sum(both[name]["values"]) == sum(app_only[name]["values"]) + sum(fleet_only[name]["values"]), name
    for name in ("message_sizes_in", "connection_seconds"):
        assert items(both[name])[2].sum() == items(app_only[name])[2].sum() + items(fleet_only[name])[2].sum()


# -- inbound bytes and channel minutes -----------------------------------------------------------------------------
def test_inbound_bytes_are_the_client_to_platform_bytes_outbound_bytes_counts_the_other_way(engine_run):
    from sim.meters import BILLED_OUTBOUND

    _, r = engine_run
    inbound = r.usage["breakdown"]["inbound"]
    total = sum(r.usage["meters"]["inbound_bytes"]["values"])
    assert math.isclose(total, sum(inbound[c] for c in BILLED_OUTBOUND), abs_tol=len(BILLED_OUTBOUND))
    assert total < sum(inbound.values())  # TCP/IP (and TURN media) are not in it
    assert total > inbound["payload"] > 0


def test_channel_minutes_without_groups_are_connection_time_on_the_minute_grid():
    """Without conversations each connected user attaches one channel: ``channel_minutes`` counts, per minute start,
    the connections open then. Summed, that is each connection's number of minute starts inside it, which differs
    from its length in minutes by less than one: |sum - connection minutes| < number of connections."""
    r = run([*SMALL, "messaging.conversations.enabled=false"])
    m = r.usage["meters"]
    cm = np.asarray(m["channel_minutes"]["values"])
    assert (cm <= np.asarray(m["peak_ccu"]["values"])).all()
    exact = sum(m["connection_hours"]["values"]) * 60
    n = items(m["connection_seconds"])[2].sum()
    assert abs(cm.sum() - exact) < n and cm.sum() > 0


def test_channel_minutes_count_the_group_channels_once_however_many_members_are_on(engine_run):
    _, r = engine_run
    m = r.usage["meters"]
    cm, ch = np.asarray(m["channel_minutes"]["values"]), np.asarray(m["peak_channels"]["values"])
    assert (cm <= ch).all() and (cm == ch).mean() > 0.5  # the peak differs only where a minute's peak passes its start
    plain = run([*SMALL, "messaging.conversations.enabled=false"]).usage["meters"]
    assert cm.sum() > 1.5 * sum(plain["channel_minutes"]["values"])  # each user is in ~4 groups


def test_a_fractional_distribution_keeps_its_counts_when_written():
    """A sampled run's distribution counts are estimates (x ratio): written back as they are, not truncated."""
    u = usage_from_dict({"period": {"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"},
                         "meters": {"connection_seconds": {"interval": "1d", "items": {
                             "at": [0, 0], "value": [30, 90], "count": [2.5, 1]}}}}, "<t>")
    assert u.to_dict()["meters"]["connection_seconds"]["items"]["count"] == [2.5, 1.0]
