"""Runtime restrictions are plan data: both seeds' tables load with their actions, and bad rows are errors."""

from __future__ import annotations

import pytest
from helpers import GB

from sim.errors import InputError
from sim.pricing.plan import load_plan, plan_from_dict

# The IoT seed's "Platform restrictions" table: (row, Free, Commercial, action).
TABLE = [
    ("rest_mqtt_traffic_per_minute", 200e6, 2000e6, "suspend"),
    ("api_requests_per_minute", 2000, 100_000, "suspend"),
    ("logs_storage_period", 3, 10, "delete_obsolete"),
    ("channel_connections", 1000, 50_000, "suspend"),
    ("channel_stored_bytes", 100e6, 1000e6, "suspend"),
    ("channel_traffic_per_minute", 100e6, 1000e6, "suspend"),
    ("channel_messages_per_minute", 5000, 200_000, "suspend"),
    ("stream_traffic_per_minute", 100e6, 1000e6, "suspend"),
    ("stream_stored_bytes", 100e6, 1000e6, "discard_new"),
    ("device_stored_bytes", 100e6, 10 * GB, "discard_new"),
    ("container_stored_bytes", 100e6, 10 * GB, "discard_new"),
    ("abque_stored_bytes", 100e6, 1000e6, "discard_new"),
    ("cdn_stored_bytes", 200e6, 10 * GB, "delete_new_files"),
    ("mqtt_sessions", 100, 10_000_000, "discard_new_sessions"),
    ("mqtt_subscriptions_per_session", 200, 5000, "discard_new_subscriptions"),
    ("mqtt_messages_per_minute", 1_000_000, 50_000_000, "suspend"),
    ("mqtt_session_storage", 100e6, 1000e6, "delete_session"),
    ("mqtt_retained_storage", 100e6, 10 * GB, "not_stored"),
]


@pytest.mark.parametrize(("row", "free", "commercial", "action"), TABLE)
def test_iot_restrictions_table(row, free, commercial, action):
    for plan, limit in (("flespi-free", free), ("flespi-commercial", commercial)):
        r = load_plan(plan).restrictions[row]
        assert r.resolved_limit(users=0) == limit and r.action == action
        if action == "suspend":
            assert r.duration_s == 60            # "suspended for 1 minute"


def test_account_inactivity_only_on_free():
    assert load_plan("flespi-free").restrictions["account_inactive"].resolved_limit(0) == 60
    assert "account_inactive" not in load_plan("flespi-commercial").restrictions


def test_messaging_rate_limit_scales_with_users_and_free_plan_throttles():
    r = load_plan("mesibo-cloud").restrictions["message_rate"]
    assert r.measure == "messages_per_second" and r.resolved_limit(users=100_000) == 500   # 0.5 % of 100K
    assert r.resolved_limit(users=600) == 10 and r.resolved_limit(users=2_000) == 10       # at least 10 per second
    assert r.resolved_limit(users=2_001) == pytest.approx(10.005)
    assert load_plan("mesibo-free").throttling.grace == "24h"
    assert load_plan("mesibo-onprem").restrictions == {}


@pytest.mark.parametrize(("row", "problem"), [
    ({"scope": "channel", "measure": "messages_per_minute", "limit": 5, "action": "suspend"}, "duration"),
    ({"scope": "channel", "measure": "messages_per_minute", "action": "reject"}, "exactly one of limit"),
    ({"scope": "app", "measure": "messages_per_second", "limit": 5, "limit_min": 2, "action": "reject"},
     "limit_min goes with limit_per_mau"),
    ({"scope": "galaxy", "measure": "messages_per_minute", "limit": 5, "action": "reject"}, "restrictions.r.scope"),
    ({"scope": "channel", "measure": "messages_per_minute", "limit": 5, "action": "reject", "burst": 2},
     "restrictions.r.burst"),
])
def test_bad_restrictions_name_the_field(row, problem):
    doc = {"name": "x", "description": "d", "metrics": {}, "restrictions": {"r": row}}
    with pytest.raises(InputError) as exc:
        plan_from_dict(doc, "bad.yaml")
    assert "bad.yaml" in str(exc.value) and problem in str(exc.value)
