"""``run_command``: outputs on success, nothing written on bad input, usage accepted by pricing."""

from __future__ import annotations

import json

import pytest

from sim.errors import InputError
from sim.run import run_command


def test_run_writes_all_outputs_and_prices(tmp_path, capsys):
    out = tmp_path / "out"
    assert run_command("quick", ["population.users=300", "simulation.days=1", "plans=[mesibo-cloud, mesibo-onprem]"],
                       5, str(out), progress=False) == 0
    names = sorted(p.name for p in out.iterdir())
    expected = ["bills.json", "comparison.csv", "comparison.png", "connections.png", "outbound_bytes.png", "run.json",
                "stored_bytes.png", "timeseries.csv", "usage.json"]
    doc = json.loads((out / "bills.json").read_text())
    bills = doc["bills"]
    own = [b["plan"] for b in bills if b["own_run"]]
    assert names == sorted(expected + [f"usage-{p}.json" for p in own])
    usage = json.loads((out / "usage.json").read_text())
    assert len(usage["meters"]["outbound_bytes"]["values"]) == 1440
    assert sum(usage["meters"]["mau"]["values"]) <= 300
    assert "enforcement" not in usage          # the unrestricted run
    run = json.loads((out / "run.json").read_text())
    assert run["seed"] == 5 and run["scenario"]["population"]["users"] == 300 and run["versions"]["sim"]
    assert [b["plan"] for b in bills] == ["mesibo-cloud", "mesibo-onprem"]
    for b in bills:
        assert set(b["enforcement"]) >= {"suspensions", "rejected", "discarded", "notifications"}
    # on-premise has no runtime limits: it is priced on the unrestricted run, with nothing lost
    onprem = bills[1]
    assert not onprem["own_run"] and onprem["enforcement"]["rejected"] == {} and onprem["storm_extra"]["connections"] == 0
    # every usage file written is accepted by `sim price` as it is
    from sim.cli import main

    for name in ["usage.json"] + [f"usage-{p}.json" for p in own]:
        assert main(["price", str(out / name), "--plan", "mesibo-cloud", "--format", "json"]) == 0
    text = capsys.readouterr().out
    assert "MAU" in text and "overhead share" in text and "calculator (payload only" in text
    assert "messages rejected" in text


def test_bad_input_writes_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(InputError) as e:
        run_command("quick", ["population.users=-1"], None, str(out), progress=False)
    assert e.value.field == "population.users"
    with pytest.raises(InputError) as e:
        run_command("quick", ["plans=[no-such-plan]"], None, str(out), progress=False)
    assert e.value.field == "plans.0"
    assert not out.exists()


def test_iot_fleet_meters_fold_into_the_usage():
    import numpy as np

    from sim.scenario import load_scenario
    from sim.simulate import simulate

    sc = load_scenario("quick", ["iot.devices=200", "simulation.days=1", "population.users=300"])
    r = simulate(sc, progress=False, raise_errors=True)
    m, series = r.usage["meters"], r.book.series
    assert m["devices"]["values"] == [200]
    stored = np.asarray(m["stored_bytes"]["values"], dtype=float)
    assert np.allclose(stored, series["stored_bytes"] + series["iot_stored_bytes"])
    peak = np.asarray(m["peak_ccu"]["values"], dtype=float)
    assert np.array_equal(peak, series["ccu_max"] + series["iot_connections"])
    assert r.usage["counts"]["iot_messages_sent"] > 0 and r.usage["counts"]["messages_sent"] > 0
