"""Free-plan headroom (sim/pricing/headroom.py): usage / limit per limit, which limit binds first, and the growth
factor at which the app leaves the free tier. Expected numbers are worked out by hand in the comments."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import numpy as np
import pytest

from sim.cli import main
from sim.pricing import headroom as exported
from sim.pricing import price
from sim.pricing.headroom import Headroom, headroom, scale_usage
from sim.pricing.plan import load_plan, plan_from_dict
from tests.helpers import GB, NOV, usage

MESIBO_SMALL = {"mau": 400, "outbound_bytes": 2 * GB, "stored_bytes": 0.3 * GB, "turn_bytes": 0.5 * GB,
                "peak_ccu": 30}


def violated(u, plan) -> set[str]:
    return {v.metric for v in price(u, plan).violations}


def test_exported_from_the_pricing_package():
    assert exported is headroom


def test_mesibo_free_small_app_by_hand():
    h = headroom(usage(MESIBO_SMALL), load_plan("mesibo-free"))
    assert isinstance(h, Headroom) and h.plan == "mesibo-free" and not h.exceeded
    mau, ccu, out, storage, turn = (h.limit(m) for m in ("mau", "peak_ccu", "outbound", "storage", "turn"))
    # usage / limit: 400/1000, 30/(0.10 x 400 = 40), 2/5, 0.3/1, 0.5/2
    assert [x.usage_fraction for x in h.limits] == pytest.approx([0.4, 0.75, 0.4, 0.3, 0.25])
    assert mau.quantity == 400 and mau.limit == 1000 and isinstance(mau.quantity, Decimal)
    assert ccu.limit == Decimal("40.0") and ccu.kind == "max_fraction_of" and ccu.of_metric == "mau"
    assert out.quantity == 2 and out.unit == "GB" and storage.quantity == Decimal("0.3")
    assert not any(x.exceeded for x in h.limits)
    # growth: 1000/400 = 2.5, 5/2 = 2.5, 1/0.3 = 3.33, 2/0.5 = 4; CCU/MAU does not move with growth
    assert mau.growth_factor == 2.5                      # exact: the closed form checks out through the metering
    assert out.growth_factor == pytest.approx(2.5, rel=1e-9)
    assert storage.growth_factor == pytest.approx(1 / 0.3, rel=1e-9)
    assert turn.growth_factor == pytest.approx(4, rel=1e-9)
    assert math.isinf(ccu.growth_factor)
    # MAU and outbound both reach their limits at 2.5: a tie, both bind first
    assert h.growth_factor == pytest.approx(2.5, rel=1e-9)
    assert h.binding == ("mau", "outbound") and mau.binds_first and out.binds_first and not storage.binds_first
    assert "2.5 x today's usage" in h.text() and "mau, outbound" in h.text()


def test_at_least_rule_raises_the_mau_quantity():
    # peak CCU 60 > 10 % of 400: billable MAU = max(400, 10 x 60) = 600, so MAU's limit is reached at 1000/600
    u = usage(MESIBO_SMALL | {"peak_ccu": 60})
    h = headroom(u, load_plan("mesibo-free"))
    mau, ccu = h.limit("mau"), h.limit("peak_ccu")
    assert mau.quantity == 600 and "10 x peak_ccu" in mau.derived_from
    assert mau.usage_fraction == pytest.approx(0.6) and mau.growth_factor == pytest.approx(1000 / 600, rel=1e-9)
    # 60 > 0.10 x 400 = 40: the CCU limit is exceeded, and growth keeps the ratio: factor 0, already
    assert ccu.exceeded and ccu.usage_fraction == pytest.approx(1.5) and ccu.growth_factor == 0
    assert h.exceeded and h.growth_factor == 0 and h.binding == ("peak_ccu",) and "already outside" in h.text()
    # scaled by the reported MAU factor, MAU itself crosses 1000 (through the 10 x CCU rule)
    g = mau.growth_factor
    assert "mau" in violated(scale_usage(u, g * (1 + 1e-9)), load_plan("mesibo-free"))
    assert "mau" not in violated(scale_usage(u, g * (1 - 1e-9)), load_plan("mesibo-free"))


def test_at_least_binds_first_without_a_ratio_limit():
    # mesibo-cloud's metrics with mesibo-free's MAU limit only: 10 x 30 = 300 MAU billable for 200 measured
    doc = {"name": "t", "description": "t", "metrics": {
        "mau": {"meter": "mau", "aggregation": "unique", "at_least": {"metric": "peak_ccu", "multiplier": 10}},
        "peak_ccu": {"meter": "peak_ccu", "aggregation": "max"}},
        "limits": [{"metric": "mau", "max": 1000}, {"metric": "peak_ccu", "max": 200}]}
    plan = plan_from_dict(doc)
    h = headroom(usage({"mau": 200, "peak_ccu": 30}), plan)
    assert h.limit("mau").quantity == 300 and h.limit("mau").growth_factor == pytest.approx(1000 / 300, rel=1e-9)
    assert h.limit("peak_ccu").growth_factor == pytest.approx(200 / 30, rel=1e-9)
    assert h.binding == ("mau",)


def _storage_plan(limit, mode: str, precision: int = 0):
    return plan_from_dict({"name": f"s-{mode}", "description": "t", "metrics": {
        "storage": {"meter": "stored_bytes", "aggregation": "max", "meter_unit": "bytes", "unit": "GB",
                    "round": {"mode": mode, "precision": precision}}},
        "limits": [{"metric": "storage", "max": limit}]})


@pytest.mark.parametrize(("limit", "mode", "precision", "expected"), [
    # ceil to whole GB: ceil(0.3 g) > 1 as soon as 0.3 g > 1, g = 3.33 (not 1 / ceil(0.3) = 1)
    (1, "ceil", 0, 1 / 0.3),
    (2, "ceil", 0, 2 / 0.3),
    (Decimal("1.5"), "ceil", 0, 1 / 0.3),       # ceil(x) > 1.5 <=> ceil(x) >= 2 <=> x > 1
    # floor: floor(0.3 g) > 1 <=> 0.3 g >= 2
    (1, "floor", 0, 2 / 0.3),
    # half up: round(0.3 g) > 1 <=> 0.3 g >= 1.5
    (1, "half_up", 0, 1.5 / 0.3),
    # ceil to 0.1 GB: ceil(x, 0.1) > 1.05 <=> x > 1.0
    (Decimal("1.05"), "ceil", 1, 1 / 0.3),
])
def test_rounding_moves_the_growth_factor(limit, mode, precision, expected):
    plan = _storage_plan(limit, mode, precision)
    u = usage({"stored_bytes": 0.3 * GB})
    h = headroom(u, plan)
    s = h.limit("storage")
    assert s.growth_factor == pytest.approx(expected, rel=1e-9)
    assert not violated(scale_usage(u, s.growth_factor * (1 - 1e-9)), plan)
    assert violated(scale_usage(u, s.growth_factor * (1 + 1e-9)), plan) == {"storage"}


def test_storage_ceil_quantity_is_the_rounded_one():
    h = headroom(usage({"stored_bytes": 0.3 * GB}), _storage_plan(1, "ceil"))
    s = h.limit("storage")
    assert s.quantity == 1 and s.usage_fraction == 1.0 and not s.exceeded   # 1 GB rounded, not above 1 GB


FLESPI = {"channels": 1, "streams": 2, "devices": 40, "containers": 0, "abques": 5, "cdns": 1, "mqtt_sessions": 30,
          "tokens": 10, "subaccounts": 0, "limits": 0}


def test_flespi_free_by_hand():
    h = headroom(usage(FLESPI), load_plan("flespi-free"))
    frac = {x.metric: x.usage_fraction for x in h.limits}
    assert frac == pytest.approx({"channels": 1 / 3, "streams": 2 / 3, "devices": 0.4, "containers": 0, "abques": 0.5,
                                  "cdns": 0.2, "mqtt_sessions": 0.3, "tokens": 0.01, "subaccounts": 0, "limits": 0})
    g = {x.metric: x.growth_factor for x in h.limits}
    assert {k: v for k, v in g.items() if math.isfinite(v)} == pytest.approx(
        {"channels": 3, "streams": 1.5, "devices": 2.5, "abques": 2, "cdns": 5, "mqtt_sessions": 100 / 30,
         "tokens": 100}, rel=1e-9)
    assert {k for k, v in g.items() if math.isinf(v)} == {"containers", "subaccounts", "limits"}   # unused
    assert h.binding == ("streams",) and h.growth_factor == pytest.approx(1.5) and not h.exceeded


def test_flespi_limit_of_zero_is_exceeded_at_any_scale():
    h = headroom(usage(FLESPI | {"subaccounts": 1}), load_plan("flespi-free"))
    sub = h.limit("subaccounts")
    assert sub.exceeded and math.isinf(sub.usage_fraction) and sub.growth_factor == 0
    assert h.exceeded and h.binding == ("subaccounts",) and "a limit of 0" in h.text()
    assert h.to_dict()["limits"][8]["usage_fraction"] is None


def test_already_exceeded_app():
    # 2000 MAU against 1000: exceeded, usage 2.0 of the limit; inside again below 1000/2000 = 0.5
    u = usage({"mau": 2000, "peak_ccu": 100, "outbound_bytes": 1 * GB})
    plan = load_plan("mesibo-free")
    h = headroom(u, plan)
    mau = h.limit("mau")
    assert mau.exceeded and mau.usage_fraction == 2.0 and mau.growth_factor == 0.5
    assert h.exceeded and h.growth_factor == 0.5 < 1 and h.binding == ("mau",)
    assert {x.metric for x in h.limits if x.exceeded} == violated(u, plan) == {"mau"}
    assert "already outside the free tier" in h.text() and "0.5" in h.text()
    assert not violated(scale_usage(u, 0.5 * (1 - 1e-9)), plan)
    assert violated(scale_usage(u, 0.5 * (1 + 1e-9)), plan) == {"mau"}


def test_no_limits_no_headroom():
    assert headroom(usage(MESIBO_SMALL), load_plan("mesibo-cloud")) is None


def _series_usage():
    """A simulated-looking usage: hourly series over a day, MAU as ids first seen per hour."""
    rng = np.random.default_rng(7)
    period = {"start": "2026-11-01", "end": "2026-11-02"}
    ids = [[f"u{i}" for i in rng.choice(300, size=40, replace=False)] for _ in range(24)]
    return usage({
        "mau": {"interval": "1h", "ids": ids},
        "peak_ccu": {"interval": "1h", "values": rng.integers(0, 25, 24).tolist()},
        "outbound_bytes": {"interval": "1h", "values": (rng.random(24) * 0.07 * GB).tolist()},
        "stored_bytes": {"interval": "1h", "values": (rng.random(24) * 0.2 * GB).tolist()},
        "turn_bytes": {"interval": "1h", "values": (rng.random(24) * 0.03 * GB).tolist()},
        "devices": {"interval": "1h", "values": rng.integers(5, 17, 24).tolist()},
        "channels": {"interval": "1h", "values": [1] * 24},
        "mqtt_sessions": {"interval": "1h", "values": rng.integers(0, 13, 24).tolist()},
        "tokens": {"interval": "1h", "values": [3] * 24},
    }, period)


CASES = [
    ("mesibo-free", lambda: usage(MESIBO_SMALL)),
    ("mesibo-free", lambda: usage({"mau": 900, "outbound_bytes": 1.234567 * GB, "stored_bytes": 0.77 * GB,
                                   "turn_bytes": 1.9 * GB, "peak_ccu": 89})),
    ("mesibo-free", _series_usage),
    ("flespi-free", lambda: usage(FLESPI)),
    ("flespi-free", _series_usage),
    ("storage-ceil", lambda: usage({"stored_bytes": {"interval": "1d", "values": [0.123456789 * GB] * 30}}, NOV)),
]


@pytest.mark.parametrize(("plan_name", "make"), CASES)
def test_scaling_by_the_factor_really_exceeds_in_price(plan_name, make):
    """The reported factor is the boundary price() sees: x (1 + 1e-9) violates the limit, x (1 - 1e-9) does not."""
    plan = _storage_plan(1, "ceil") if plan_name == "storage-ceil" else load_plan(plan_name)
    u = make()
    h = headroom(u, plan)
    assert {x.metric for x in h.limits if x.exceeded} == violated(u, plan)
    checked = 0
    for lim in h.limits:
        g = lim.growth_factor
        if not (0 < g < math.inf):
            continue
        assert lim.metric not in violated(scale_usage(u, g * (1 - 1e-9)), plan), lim
        assert lim.metric in violated(scale_usage(u, g * (1 + 1e-9)), plan), lim
        checked += 1
    assert checked
    if not h.exceeded and math.isfinite(h.growth_factor):   # the app as a whole: free just below, out just above
        assert not violated(scale_usage(u, h.growth_factor * (1 - 1e-9)), plan)
        assert violated(scale_usage(u, h.growth_factor * (1 + 1e-9)), plan) >= set(h.binding)


def test_ids_scale_as_counts():
    u = _series_usage()
    grown = scale_usage(u, 2.0)
    plan = load_plan("mesibo-free")
    base = headroom(u, plan).limit("mau").quantity
    assert headroom(grown, plan).limit("mau").quantity == 2 * base


def test_to_dict_is_json():
    h = headroom(usage(MESIBO_SMALL), load_plan("mesibo-free"))
    doc = json.loads(json.dumps(h.to_dict(), allow_nan=False))
    assert doc["plan"] == "mesibo-free" and doc["binding"] == ["mau", "outbound"] and doc["exceeded"] is False
    assert doc["growth_factor"] == pytest.approx(2.5)
    ccu = doc["limits"][1]
    assert ccu["growth_factor"] is None and ccu["limit"] == 40 and ccu["fraction"] == "0.10"
    assert doc["limits"][3] == {**doc["limits"][3], "quantity": 0.3, "limit": 1, "unit": "GB", "kind": "max"}
    df = h.to_dataframe()
    assert df.loc["mau", "quantity"] == Decimal(400)


def test_sim_run_writes_headroom_json_and_prints_the_table(capsys, tmp_path):
    out = tmp_path / "res"
    code = main(["run", "scenarios/quick.yaml", "--set", "population.users=50", "--set", "simulation.days=1",
                 "--set", "plans=[mesibo-cloud, mesibo-free]", "--no-progress", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "free-plan headroom, mesibo-free:" in printed and "exceeded at growth" in printed
    assert "free-plan headroom, mesibo-cloud" not in printed              # not a free plan
    assert printed.index("plan mesibo-free: bill") < printed.index("free-plan headroom")
    doc = json.loads((out / "headroom.json").read_text())
    assert [p["plan"] for p in doc["plans"]] == ["mesibo-free"]
    plan = doc["plans"][0]
    assert [x["metric"] for x in plan["limits"]] == ["mau", "peak_ccu", "outbound", "storage", "turn"]
    assert set(plan) >= {"growth_factor", "exceeded", "binding", "own_run", "limits"}
    # the same numbers as the Python API on the usage that plan was priced on
    bills = json.loads((out / "bills.json").read_text())["bills"]
    free = next(b for b in bills if b["plan"] == "mesibo-free")
    used = out / ("usage-mesibo-free.json" if free["own_run"] else "usage.json")
    from sim.pricing.usage import load_usage

    again = headroom(load_usage(used), load_plan("mesibo-free")).to_dict()
    assert again | {"own_run": plan["own_run"]} == plan
    assert plan["exceeded"] == bool(free["violations"])


def test_sim_run_without_free_plans_writes_no_headroom(capsys, tmp_path):
    out = tmp_path / "res"
    assert main(["run", "scenarios/quick.yaml", "--set", "population.users=50", "--set", "simulation.days=1",
                 "--no-progress", "--out", str(out)]) == 0
    assert "free-plan headroom" not in capsys.readouterr().out
    assert not (out / "headroom.json").exists()
