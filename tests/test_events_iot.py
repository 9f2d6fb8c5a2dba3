"""The event-level IoT engine (sim/world/events/iot.py) against its laws and against the fast engine.

(a) Conservation holds exactly on the events engine, with and without binding limits, and the closed
    forms it must reproduce event by event (reports and pings per parked hour, one report per interval).
(b) Differential test: both engines on the same small fleets, fixed seeds 1..6 each (per-seed values are
    independent replications; the engines use different random streams by design). Per quantity a
    two-sided Welch t test (Welch-Satterthwaite df) on the 6 + 6 per-seed values; the family of
    quantities of one fleet is corrected with Holm's step-down at family-wise 1 %, so with engines that
    agree in expectation the chance that a family flags anything is at most 1 % -- and since seeds are
    fixed the outcome is deterministic (it was checked once, it cannot flicker). A quantity constant
    across seeds in both engines (e.g. the peak of a fleet that is never all down) must be equal.
(c) Not toothless: the same comparison with the fast engine handed a drop rate 10 % higher flags it.

Run time: ~45 s on a loaded 2-core machine (most of it the events runs, cached per module); the
binding-limit comparison (~16 s) is marked slow (still runs in CI).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from conservation import iot_conserved as conserved
from scipy import stats

from sim.meters import MeterBook
from sim.world.events.iot import simulate_fleet_events
from sim.world.iot.config import IotFleetConfig
from sim.world.iot.enforcer import IotLimits, IotPlanLimits
from sim.world.iot.fleet import simulate_fleet

START = datetime(2026, 11, 1)
SEEDS = range(1, 7)
ALPHA = 0.01  # family-wise
QUIET = {"drops_per_device_per_day": 0.0, "payload_bytes": (100, 100)}
#: a fleet with many drops (so connections and handshakes are counted in the thousands), buffers read hourly
BASE = {"devices": 150, "drops_per_device_per_day": 12.0, "moving_interval_s": (20, 40), "qos": 0,
        "read_every_min": 60, "buffer_ttl_min": 600}  # fmt: skip
#: the same fleet with a channel limit that binds at the diurnal peaks (a suspension every few minutes there)
LIMITED = {**BASE, "devices": 100, "drops_per_device_per_day": 6.0}
LIMIT = 100  # messages per minute on the one channel


def run(fn, days=1, seed=1, enforcer=None, **kw):
    cfg = IotFleetConfig(**kw)
    book = MeterBook(start=START, minutes=days * 1440, days=days)
    meters = fn(cfg, start=START, days=days, seed=np.random.SeedSequence(seed), book=book, enforcer=enforcer)
    return book, meters


# -- (a) laws and closed forms ----------------------------------------------------------------------------
def test_parked_hour_closed_forms_event_by_event():
    # parked, a report every 300 s, keep-alive 60 s (PF §6): 12 reports and ceil(300/60)-1 = 4 pings per gap
    book, meters = run(simulate_fleet_events, devices=20, moving_fraction=0.0, **QUIET)
    c = book.counts
    assert c["iot_messages_sent"] == 20 * 288 and c["iot_keepalives"] == 20 * 288 * 4
    assert (book.series["iot_messages"].reshape(24, 60).sum(axis=1) == 20 * 12).all()  # per parked hour
    assert (book.series["iot_pings"].reshape(24, 60).sum(axis=1) == 20 * 48).all()
    fast, fast_m = run(simulate_fleet, devices=20, moving_fraction=0.0, **QUIET)
    for k in ("iot_messages_sent", "iot_keepalives", "connections"):
        assert c[k] == fast.counts[k]
    # a keep-alive cycle is 204 B on the wire for MQTT over TLS 1.3 over IPv4 (PF §3.1): both engines
    assert book.total_bytes("out", "keepalive") + book.total_bytes("in", "keepalive") == pytest.approx(
        fast.total_bytes("out", "keepalive") + fast.total_bytes("in", "keepalive")
    )
    assert meters.keys() == fast_m.keys() and meters["peak_ccu"] == 20
    assert set(book.counts) == set(fast.counts) and set(book.series) == set(fast.series)
    assert set(book.bytes) == set(fast.bytes)


def test_always_moving_one_report_per_interval():
    book, _ = run(simulate_fleet_events, days=2, devices=30, moving_fraction=1.0, moving_interval_s=(30, 30), **QUIET)
    assert book.counts["iot_messages_sent"] == 30 * 2 * 86400 // 30 and book.counts["iot_keepalives"] == 0
    assert (book.series["iot_messages"] == 60).all()


@pytest.mark.parametrize("qos", [0, 1])
def test_conservation_with_drops_and_same_seed_same_result(qos):
    kw = {**BASE, "devices": 60, "qos": qos}
    a, ma = run(simulate_fleet_events, days=2, seed=3, **kw)
    conserved(a.counts)
    assert a.counts["connections"] > 60 * 2 * 12 * 0.8
    assert a.counts["full_handshakes"] + a.counts["resumed_handshakes"] == a.counts["connections"]
    assert (a.counts["iot_dropped"] > 0) == (qos == 0)
    b, mb = run(simulate_fleet_events, days=2, seed=3, **kw)
    assert a.counts == b.counts and ma == mb
    assert all(np.array_equal(a.bytes[k], b.bytes[k]) for k in a.bytes)


@pytest.mark.parametrize("qos", [0, 1])
def test_conservation_with_binding_limits(qos):
    lim = IotLimits(channel_messages_per_minute=36)  # 20 devices x 2/min = 40/min: trips every cycle
    book, _ = run(simulate_fleet_events, devices=20, moving_fraction=1.0, moving_interval_s=(30, 30), qos=qos,
                  enforcer=lim, drops_per_device_per_day=4.0)  # fmt: skip
    c = book.counts
    conserved(c)
    assert c["channel_suspensions"] > 100 and c["rejected_connections"] > 0
    assert (c["iot_rejected"] > 0) == (qos == 0) and (c["iot_retransmitted"] > 0) == (qos == 1)
    assert c["full_handshakes"] + c["resumed_handshakes"] == c["connections"] + c["rejected_connections"]
    assert (book.series["iot_messages"] <= 2 * 36).all()


def test_conservation_sessions_buffer_and_platform_limits():
    from sim.pricing.plan import load_plan
    from sim.pricing.restrictions import Restriction

    free = load_plan("flespi-free")
    rows = {
        "buf": Restriction(scope="device", measure="stored_bytes", limit=5000, action="discard_new"),
        "plat": Restriction(scope="platform", measure="messages_per_minute", limit=150, action="suspend",
                            duration="1min"),  # fmt: skip
        "sess": free.restrictions["mqtt_sessions"] if "mqtt_sessions" in free.restrictions else None,
    }
    rows = {k: v for k, v in rows.items() if v is not None}
    lim = IotPlanLimits.from_plan(free.model_copy(update={"restrictions": rows}))
    kw = {"devices": 120, "read_every_min": 30, "device_queue_max": 500, "drops_per_device_per_day": 4.0}
    book, _ = run(simulate_fleet_events, enforcer=lim, **kw)
    c, rep = book.counts, lim.report
    conserved(c)
    assert c["iot_discarded"] > 0 and rep["discarded"]["device_buffer_full"] == c["iot_discarded"]
    assert c["platform_suspensions"] > 0 and len(rep["suspensions"]) == c["platform_suspensions"]
    if "sess" in rows:
        assert c["mqtt_sessions_refused_devices"] == 21 and c["mqtt_session_refusals"] > 21 * 600
        assert rep["rejected_connections"]["mqtt_session_refused"] == c["mqtt_session_refusals"]


def test_dry_run_records_without_acting():
    kw = {**BASE, "devices": 60}
    base = run(simulate_fleet_events, **kw)
    dry = IotLimits(channel_messages_per_minute=10)
    dry.dry_run = True  # type: ignore[attr-defined]
    b, _ = run(simulate_fleet_events, enforcer=dry, **kw)
    assert b.counts == base[0].counts


# -- (b) differential test -----------------------------------------------------------------------------------
def quantities(book: MeterBook, meters: dict) -> dict[str, float]:
    c = book.counts
    return {
        "sent": c["iot_messages_sent"],
        "delivered": c["iot_delivered"],
        "dropped": c["iot_dropped"],
        "rejected": c["iot_rejected"],
        "pings": c["iot_keepalives"],
        "connections": c["connections"],
        "full_handshakes": c["full_handshakes"],
        "resumed_handshakes": c["resumed_handshakes"],
        "rejected_connections": c["rejected_connections"],
        "outbound_bytes": float(book.outbound_billed_series().sum()),
        "inbound_bytes": float(sum(v.sum() for (d, _), v in book.bytes.items() if d == "in")),
        "peak_ccu": meters["peak_ccu"],
        "mean_connections": float(book.series["iot_connections"].mean()),
        "mean_stored_bytes": float(book.series["iot_stored_bytes"].mean()),
        "channel_suspensions": c["channel_suspensions"],
    }


def per_seed(fn, kw: dict, limit: int | None) -> dict[str, np.ndarray]:
    rows = []
    for s in SEEDS:
        lim = IotLimits(channel_messages_per_minute=limit) if limit is not None else None
        rows.append(quantities(*run(fn, seed=s, enforcer=lim, **kw)))
    return {k: np.array([r[k] for r in rows], float) for k in rows[0]}


def flagged(a: dict[str, np.ndarray], b: dict[str, np.ndarray], alpha: float = ALPHA) -> dict[str, float]:
    """Quantities whose Welch t test rejects equal means under Holm's correction (family-wise ``alpha``)."""
    p = {}
    for k in a:
        x, y = a[k], b[k]
        if x.std() == 0 and y.std() == 0:
            p[k] = 1.0 if x[0] == y[0] else 0.0
        else:
            p[k] = float(stats.ttest_ind(x, y, equal_var=False).pvalue)
    out, m = {}, len(p)
    for i, (k, pk) in enumerate(sorted(p.items(), key=lambda kv: kv[1])):
        if pk > alpha / (m - i):
            break
        out[k] = pk
    return out


@pytest.fixture(scope="module")
def base_runs():
    return per_seed(simulate_fleet, BASE, None), per_seed(simulate_fleet_events, BASE, None)


@pytest.fixture(scope="module")
def limited_runs():
    return per_seed(simulate_fleet, LIMITED, LIMIT), per_seed(simulate_fleet_events, LIMITED, LIMIT)


def test_engines_agree_on_a_fleet_with_drops(base_runs):
    fast, ev = base_runs
    assert flagged(fast, ev) == {}
    # and they are close, not just statistically indistinguishable: means within 3 % where counts are large
    for k in ("sent", "delivered", "pings", "connections", "outbound_bytes", "inbound_bytes", "mean_stored_bytes"):
        assert ev[k].mean() == pytest.approx(fast[k].mean(), rel=0.03), k


@pytest.mark.slow
def test_engines_agree_when_a_channel_limit_binds(limited_runs):
    fast, ev = limited_runs
    assert fast["channel_suspensions"].min() > 0 and ev["channel_suspensions"].min() > 0
    assert flagged(fast, ev) == {}


# -- (c) the comparison has teeth ------------------------------------------------------------------------------
def test_a_ten_percent_drop_rate_fault_in_one_engine_is_flagged(base_runs):
    _, ev = base_runs
    faulty = per_seed(simulate_fleet, {**BASE, "drops_per_device_per_day": BASE["drops_per_device_per_day"] * 1.1}, None)
    bad = flagged(faulty, ev)
    assert "connections" in bad, bad
