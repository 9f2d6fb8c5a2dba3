"""The events engine on its own: laws it must keep exactly, the same output shape as the fast engine, and the
enforcer interface acting one event at a time (tests/test_engines_agree.py compares its figures with the fast engine).
"""

from __future__ import annotations

import functools

import numpy as np

from sim.scenario import load_scenario
from sim.simulate import simulate
from sim.world.enforcer import Enforcer


def quick(*sets: str, engine: str = "events"):
    return load_scenario("scenarios/quick.yaml", [f"engine={engine}", "population.users=400", "simulation.days=1",
                                                  *sets])


@functools.cache
def runs():
    sc = quick("messaging.no_store_fraction=0.2", "messaging.ttl_s=1800")
    return simulate(sc, progress=False, raise_errors=True), simulate(sc, progress=False, raise_errors=True)


def conserved(c: dict) -> bool:
    return c["stored_at_start"] + c["messages_sent"] == (c["delivered"] + c["stored"] + c["expired"] + c["dropped"]
                                                         + c["rejected"] + c["discarded"])


def test_every_copy_is_delivered_stored_expired_dropped_rejected_or_discarded():
    r, _ = runs()
    c = r.usage["counts"]
    assert conserved(c) and c["expired"] > 0 and c["dropped"] > 0 and c["delivered"] > 0
    assert c["delivered"] == c["delivered_immediately"] + c["delivered_from_store"]
    # receipts obey the same law
    assert c["receipts_stored_at_start"] + c["receipts_sent"] == (
        c["receipts_delivered"] + c["receipts_stored"] + c["receipts_expired"])
    # every connection has a cause, and every handshake a connection
    causes = ("foreground", "background", "push", "call", "reconnect")
    assert c["connections"] == sum(c[f"connections_{k}"] for k in causes)
    assert c["connections"] == c["full_handshakes"] + c["resumed_handshakes"]
    assert c["silent_disconnects"] + c["graceful_disconnects"] <= c["connections"] + 1000


def test_the_same_seed_gives_the_same_usage_and_the_run_records_the_engine():
    a, b = runs()
    assert a.usage == b.usage
    assert a.usage["run"]["engine"] == "events" and a.run_info()["engine"] == "events"


def test_the_usage_has_the_fast_engines_keys():
    r, _ = runs()
    fast = simulate(quick("messaging.no_store_fraction=0.2", "messaging.ttl_s=1800", engine="fast"), progress=False,
                    raise_errors=True)
    for section in ("meters", "breakdown", "activity"):
        assert set(r.usage[section]) == set(fast.usage[section])
    assert set(fast.usage["counts"]) <= set(r.usage["counts"])
    assert list(r.frame.columns) == list(fast.frame.columns)
    # MAU: exactly the population's active users connect, in both engines
    assert sum(r.usage["meters"]["mau"]["values"]) == sum(fast.usage["meters"]["mau"]["values"])


class _Suspend(Enforcer):
    """Written for the fast engine's day batches: rejects the messages of minute 600 and suspends minute 720."""

    def admit_messages(self, t_ms, sender, fanout):
        return (t_ms // 60_000) % 1440 != 600

    def suspensions(self, day_start_ms, day_end_ms, messages_per_minute, connections_per_minute):
        a = day_start_ms + 720 * 60_000
        return [(a, a + 60_000)]


def test_an_enforcer_written_for_day_batches_acts_event_by_event():
    sc = quick("population.users=1000", "os.android.keeps_background_socket=1.0")
    r = simulate(sc, progress=False, raise_errors=True, enforcer=_Suspend())
    f, c = r.frame, r.usage["counts"]
    assert f["ccu"].iloc[720] == 0 and f["ccu_max"].iloc[720] == 0  # everything cut for the minute
    assert f["messages_originated"].iloc[600] == 0 and f["messages_originated"].iloc[720] == 0
    assert c["suspensions"] == 1 and c["suspension_closed_connections"] > 0
    assert c["rejected_enforcer"] > 0 and c["rejected_suspended"] > 0 and c["rejected_attempts"] > 0
    # the reconnect storm: clients cut at minute 720 come back together when it ends
    assert c["connections_reconnect"] > 0.5 * c["suspension_closed_connections"]
    assert f["connects"].iloc[721] > 1.5 * f["connects"].iloc[700:720].mean()
    assert conserved(c)


def test_a_per_second_cap_is_met_by_clients_that_retry():
    from sim.world.plan_enforcer import PlanEnforcer

    sc = quick("messaging.messages_per_dau_per_day=200")
    e = PlanEnforcer(message_rate=1.0, retries=3, backoff_s=1.0)
    r = simulate(sc, progress=False, raise_errors=True, enforcer=e)
    c = r.usage["counts"]
    assert c["rejected_attempts"] > 0 and c["message_retries"] > 0 and c["rejected"] > 0 and conserved(c)
    # at most one originated message is accepted in any wall-clock second of the period
    per_minute = np.asarray(r.frame["messages_originated"])
    assert per_minute.max() <= 60
    assert e.report["refused_attempts"]["message_rate"] == c["rejected_attempts"]
    assert e.report["rejected"]["message_rate"] == c["rejected_message_rate"]
