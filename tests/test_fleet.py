"""Fleets: distributions, draws, shares, --set, bad fleet files, `sim fleet` outputs, load sums and capacity.

Statistical tests draw 20,000 values and use a stated test at alpha = 1e-3 (a false alarm once in a thousand
runs for a correct implementation; the draws are seeded, so a given run is deterministic). Each is shown to
reject an injected fault (a wrong sigma, alpha, bound or weight) at the same alpha, so it has power.

Fleets that run are tiny (20-60 users or a handful of trackers, 2 days, no warm-up: ~0.3 s an app).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

import sim.scenario
from sim.cli import main
from sim.experiments.executors import InlineExecutor, local_pool
from sim.fleets import load_fleet, run_fleet
from sim.fleets.fleet_file import Choice, Lognormal, Pareto, Uniform, param_uniform
from sim.fleets.runner import FleetRun
from sim.fleets.worker import run_app

ROOT = Path(__file__).resolve().parents[1]
QUICK = str(ROOT / "scenarios" / "quick.yaml")
IOT = str(ROOT / "scenarios" / "iot-trackers.yaml")
ALPHA = 1e-3
N = 20_000


def fleet_doc(**over) -> dict:
    """A tiny two-archetype fleet (chat apps of 20-60 users, tracker fleets of 3-8 devices, 2 days)."""
    doc = {
        "name": "tiny", "seed": 1, "apps": 4,
        "simulation": {"start": "2026-11-01T00:00:00Z", "days": 2, "warmup_days": 0},
        "capacity": {"connections_per_server": 7, "messages_per_second_per_server": 0.3, "egress_percentile": 95},
        "archetypes": {
            "chat": {"scenario": QUICK, "share": 0.75, "plans": ["mesibo-free", "mesibo-cloud"],
                     "params": {"population.users": {"dist": "lognormal", "median": 35, "sigma": 0.5, "min": 20,
                                                     "max": 60, "round": True},
                                "population.device_mix": {"dist": "choice", "values": ["global", "us"],
                                                          "weights": [0.6, 0.4]}}},
            "iot": {"scenario": IOT, "share": 0.25,
                    "params": {"iot.devices": {"dist": "pareto", "alpha": 1.5, "scale": 3, "max": 8, "round": True}}},
        },
    }
    for key, value in over.items():
        doc[key] = value
    return doc


def write_fleet(tmp_path: Path, doc: dict | None = None, name: str = "fleet.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc if doc is not None else fleet_doc(), sort_keys=False))
    return path


def uniforms(key: str, n: int = N, seed: int = 1) -> np.ndarray:
    """The uniforms apps 0..n-1 of a fleet seeded ``seed`` draw parameter ``key`` from (the fleet's own path)."""
    return np.array([param_uniform(seed, i, key) for i in range(n)])


# -- distributions ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def u20k() -> np.ndarray:
    return uniforms("population.users")


def ks_p(values: np.ndarray, dist) -> float:
    return float(stats.kstest(values, dist.cdf).pvalue)


@pytest.mark.parametrize("case", [
    # (distribution as written, scipy's closed form, the same distribution with a fault injected)
    ({"dist": "lognormal", "median": 300, "sigma": 1.6}, stats.lognorm(s=1.6, scale=300),
     {"dist": "lognormal", "median": 300, "sigma": 1.6 * 1.15}),
    ({"dist": "lognormal", "mean": 500, "sigma": 1.2}, stats.lognorm(s=1.2, scale=500 * math.exp(-1.2 ** 2 / 2)),
     {"dist": "lognormal", "median": 500, "sigma": 1.2}),       # fault: the mean read as the median
    ({"dist": "pareto", "alpha": 1.2, "scale": 50}, stats.pareto(b=1.2, scale=50),
     {"dist": "pareto", "alpha": 1.2 * 1.15, "scale": 50}),
    ({"dist": "uniform", "low": 10, "high": 60}, stats.uniform(loc=10, scale=50),
     {"dist": "uniform", "low": 10, "high": 63}),
], ids=["lognormal-median", "lognormal-mean", "pareto", "uniform"])
def test_numeric_distributions_match_their_closed_forms_by_ks(case, u20k):
    """KS test of 20,000 draws (the fleet's own per-app uniforms) against scipy's closed form, alpha 1e-3; the
    faulty variant must be rejected at the same alpha."""
    doc, closed, faulty = case
    good = {"lognormal": Lognormal, "pareto": Pareto, "uniform": Uniform}[doc["dist"]].model_validate(doc)
    bad = type(good).model_validate(faulty)
    assert ks_p(good.draw(u20k), closed) > ALPHA
    assert ks_p(bad.draw(u20k), closed) < ALPHA


def test_choice_matches_its_weights_by_chi_square(u20k):
    """Chi-square goodness of fit of 20,000 choices against the weights, alpha 1e-3; swapped weights rejected."""
    good = Choice.model_validate({"dist": "choice", "values": ["a", "b", "c"], "weights": [0.6, 0.3, 0.1]})
    bad = Choice.model_validate({"dist": "choice", "values": ["a", "b", "c"], "weights": [0.57, 0.33, 0.1]})
    expected = np.array([0.6, 0.3, 0.1]) * N
    for d, reject in ((good, False), (bad, True)):
        counts = np.bincount(d.index(u20k), minlength=3)
        p = stats.chisquare(counts, expected).pvalue
        assert (p < ALPHA) == reject, (counts, p)
    equal = Choice.model_validate({"dist": "choice", "values": [1, 2]})
    assert list(equal.probabilities) == [0.5, 0.5] and equal.mean() == 1.5


def test_bounds_and_rounding(u20k):
    """Clipped to [min, max] (the mass beyond each bound lands on it: a binomial test at 1e-3 against the closed
    form's tail), then rounded half-to-even to whole numbers that equal the rounded unrounded draw."""
    d = Lognormal.model_validate({"dist": "lognormal", "median": 300, "sigma": 1.6, "min": 50, "max": 5000,
                                  "round": True})
    raw = Lognormal.model_validate({"dist": "lognormal", "median": 300, "sigma": 1.6})
    x, y = d.draw(u20k), raw.draw(u20k)
    assert x.min() == 50 and x.max() == 5000 and np.all(x == np.rint(np.clip(y, 50, 5000)))
    assert np.all(x == np.floor(x)) and isinstance(d.value(0.5), int) and d.value(0.5) == 300
    closed = stats.lognorm(s=1.6, scale=300)
    for k, p in ((int((x == 50).sum()), closed.cdf(50)), (int((x == 5000).sum()), closed.sf(5000))):
        assert stats.binomtest(k, N, p).pvalue > ALPHA
    # a fault (bounds applied after rounding the other way: floor) changes values
    assert not np.all(np.floor(np.clip(y, 50, 5000)) == x)


@pytest.mark.parametrize("doc", [
    {"dist": "lognormal", "median": 300, "sigma": 1.6, "min": 20, "max": 20000},
    {"dist": "pareto", "alpha": 1.2, "scale": 50, "max": 10000},
    {"dist": "pareto", "alpha": 1.0, "scale": 10, "min": 15, "max": 5000},
    {"dist": "uniform", "low": 10, "high": 60, "min": 20},
])
def test_clipped_means_in_closed_form_match_draws(doc, u20k):
    """The closed-form E[clip(X)] (fleet.json's expected totals) within 4 standard errors of the mean of 20,000
    clipped draws (a false alarm once in 16,000)."""
    d = {"lognormal": Lognormal, "pareto": Pareto, "uniform": Uniform}[doc["dist"]].model_validate(doc)
    x = d.draw(u20k)
    assert abs(x.mean() - d.mean()) < 4 * x.std() / math.sqrt(N), (x.mean(), d.mean())


def test_fleet_draws_use_the_per_app_uniforms(tmp_path):
    fleet = load_fleet(write_fleet(tmp_path))
    for i in range(fleet.apps):
        spec = fleet.app(i)
        for key, dist in fleet.archetypes[spec.archetype].doc.params.items():
            assert spec.params[key] == dist.value(param_uniform(1, i, key))


# -- shares, seeds, reproducibility -----------------------------------------------------------------------


def test_shares_are_drawn_in_proportion(tmp_path):
    """4,000 apps' archetypes against shares 0.75 / 0.25 / 0: binomial test at 1e-3; a zero share never wins."""
    doc = fleet_doc()
    doc["archetypes"]["none"] = {"scenario": QUICK, "share": 0.0}
    fleet = load_fleet(write_fleet(tmp_path, doc))
    names = [fleet.app(i).archetype for i in range(4000)]
    assert "none" not in names
    assert stats.binomtest(names.count("chat"), 4000, 0.75).pvalue > ALPHA
    assert stats.binomtest(names.count("chat"), 4000, 0.70).pvalue < ALPHA   # power against a 5-point error


def test_reproducible_and_append_stable(tmp_path):
    """Adding apps appends: apps=10 and apps=20 draw the same first 10 apps (archetype, seed, parameters), and a
    run of 2 apps is the first 2 rows of a run of 3. Seeds differ between apps and between fleet seeds."""
    path = write_fleet(tmp_path)
    ten, twenty = load_fleet(path, ["apps=10"]), load_fleet(path, ["apps=20"])
    assert [ten.app(i) for i in range(10)] == [twenty.app(i) for i in range(10)]
    seeds = {twenty.app(i).seed for i in range(20)}
    assert len(seeds) == 20 and load_fleet(path, ["seed=2"]).app(0).seed not in seeds
    a = run_fleet(load_fleet(path, ["apps=2"]), executor=InlineExecutor(), progress=False).apps
    b = run_fleet(load_fleet(path, ["apps=3"]), executor=InlineExecutor(), progress=False).apps
    cols = [c for c in a.columns if c != "wall_s" and c in b.columns]
    pd.testing.assert_frame_equal(a[cols], b[cols].iloc[:2])


def test_set_overrides(tmp_path):
    path = write_fleet(tmp_path)
    fleet = load_fleet(path, ["apps=3", "seed=5", "archetypes.chat.share=0.5", "archetypes.iot.share=0.5",
                              "archetypes.chat.params.population.users.median=50",
                              "archetypes.chat.params.population.device_mix={dist: fixed, value: ios}",
                              "archetypes.chat.set.messaging.messages_per_dau_per_day=7",
                              "set.population.dau_over_mau=0.5", "simulation.days=1",
                              "capacity.connections_per_server=99", "sample.max_users=1000"])
    assert (fleet.apps, fleet.seed, fleet.days) == (3, 5, 1)
    assert fleet.doc.archetypes["chat"].params["population.users"].median == 50
    assert fleet.doc.capacity.connections_per_server == 99 and fleet.doc.sample.max_users == 1000
    chat = next(fleet.app(i) for i in range(50) if fleet.app(i).archetype == "chat")
    sc = fleet.scenario(chat)
    assert sc.population.device_mix == {"android": 0.0, "ios": 1.0}
    assert sc.messaging.messages_per_dau_per_day == 7 and sc.population.dau_over_mau == 0.5
    assert sc.simulation.days == 1 and sc.seed == chat.seed


# -- bad fleet files --------------------------------------------------------------------------------------


def _bad(doc_change, sets=()):
    def make(tmp_path):
        doc = fleet_doc()
        doc_change(doc)
        return write_fleet(tmp_path, doc), list(sets)
    return make


def _users(doc, **kw):
    doc["archetypes"]["chat"]["params"]["population.users"].update(kw)


BAD = {
    "unknown key": (_bad(lambda d: d.update(colour="red")), "colour", "unknown key"),
    "unknown distribution key": (_bad(lambda d: _users(d, sigma2=1)),
                                 "archetypes.chat.params.population.users.sigma2", "unknown key"),
    "unknown distribution": (_bad(lambda d: _users(d, dist="gaussian")),
                             "archetypes.chat.params.population.users", "unknown distribution 'gaussian'"),
    "negative sigma": (_bad(lambda d: _users(d, sigma=-1)), "archetypes.chat.params.population.users.sigma",
                       "greater than 0"),
    "median and mean": (_bad(lambda d: _users(d, mean=40)), "archetypes.chat.params.population.users",
                        "exactly one of median or mean"),
    "min above max": (_bad(lambda d: _users(d, min=70)), "archetypes.chat.params.population.users", "min (70)"),
    "true for a number": (_bad(lambda d: _users(d, sigma=True)), "archetypes.chat.params.population.users.sigma",
                          "expected a number"),
    "shares": (_bad(lambda d: d["archetypes"]["iot"].update(share=0.3)), "archetypes", "shares must sum to 1"),
    "weights": (_bad(lambda d: d["archetypes"]["chat"]["params"]["population.device_mix"].update(weights=[0.5, 0.4])),
                "archetypes.chat.params.population.device_mix", "weights must sum to 1"),
    "missing scenario": (_bad(lambda d: d["archetypes"]["chat"].update(scenario="nowhere.yaml")),
                         "archetypes.chat.scenario", "no such scenario"),
    "not a scenario key": (_bad(lambda d: d["archetypes"]["chat"]["params"].update(
        {"population.userz": {"dist": "fixed", "value": 3}})), "archetypes.chat.params.population.userz",
        "not a scenario key"),
    "bad --set path": (_bad(lambda d: None, ["archetypes.chat.set.population.userz=3"]),
                       "archetypes.chat.set.population.userz", "not a scenario key"),
    "bad --set key": (_bad(lambda d: None, ["appz=3"]), "appz", "unknown key"),
    "bad --set value": (_bad(lambda d: None, ["apps=0"]), "apps", "greater than or equal to 1"),
    "a draw the scenario refuses": (_bad(lambda d: _users(d, min=-5, max=0.4, round=False)),
                                    "archetypes.chat.params.population.users", "drew 0.4"),
    "drawn clock": (_bad(lambda d: d["archetypes"]["chat"]["params"].update(
        {"simulation.days": {"dist": "fixed", "value": 3}})), "archetypes.chat.params.simulation.days",
        "common clock"),
    "two clocks": (_bad(lambda d: d["archetypes"]["iot"].update(set={"simulation.days": 3})), "archetypes.iot",
                   "one clock"),
    "unknown plan": (_bad(lambda d: d["archetypes"]["chat"].update(plans=["mesibo-fre"])), "archetypes.chat.plans.0",
                     "unknown plan"),
    "free plan not priced": (_bad(lambda d: d.update(free_plan="flespi-free")), "free_plan", "not among the plans"),
    "seed in set": (_bad(lambda d: d.update(set={"seed": 3})), "set.seed", "drawn by the fleet"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_fleet_files_end_with_one_line_and_exit_2(name, tmp_path, capsys):
    make, field, problem = BAD[name]
    path, sets = make(tmp_path)
    out = tmp_path / "out"
    argv = ["fleet", str(path), "--out", str(out), "--no-progress", "--workers", "1"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert str(path) in err and f": {field}: " in err and problem in err, err
    assert not out.exists()


# -- a run: outputs, load, capacity -----------------------------------------------------------------------

CONTRACT = ["app", "archetype", "seed", "sampled", "users", "sample_users", "devices", "sample_devices",
            "param.population.users", "param.population.device_mix", "param.iot.devices",
            "mau", "mau_ci_low", "mau_ci_high", "peak_ccu", "peak_ccu_ci_low", "peak_ccu_ci_high", "outbound_gb",
            "stored_gb", "stored_gb_max", "turn_gb", "messages", "connections", "connection_hours",
            "peak_messages_per_s", "error"]
FILES = ["apps.parquet", "apps.csv", "load.csv", "capacity.json", "fleet.json", "app_ccu.npy", "bills_cdf.png",
         "free_limits.png", "load_day.png"]


@pytest.fixture(scope="module")
def fleet_run(tmp_path_factory):
    """`sim fleet` on the tiny fleet (5 apps, in-process), and the fleet it ran."""
    tmp = tmp_path_factory.mktemp("fleet")
    path = write_fleet(tmp)
    out = tmp / "out"
    assert main(["fleet", str(path), "--out", str(out), "--no-progress", "--workers", "1", "--set", "apps=5"]) == 0
    return load_fleet(path, ["apps=5"]), out


def test_sim_fleet_writes_every_file_and_the_contract_columns(fleet_run):
    fleet, out = fleet_run
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    apps = pd.read_parquet(out / "apps.parquet")
    csv = pd.read_csv(out / "apps.csv")
    assert list(apps["app"]) == list(range(5)) and list(csv.columns) == list(apps.columns) and len(csv) == 5
    assert set(CONTRACT) <= set(apps.columns)
    assert apps["error"].isna().all()
    for p in ("mesibo-free", "mesibo-cloud", "flespi-free", "flespi-commercial"):
        for c in ("total", "total_exact", "binds", "violations", "free"):
            assert f"{c}.{p}" in apps.columns
    chat = apps[apps["archetype"] == "chat"]
    iot = apps[apps["archetype"] == "iot"]
    assert len(chat) and len(iot)
    for m in ("mau", "peak_ccu", "outbound", "storage", "turn"):
        assert chat[f"use.mesibo-free.{m}"].notna().all() and f"q.mesibo-free.{m}" in apps.columns
    assert iot["total.mesibo-free"].isna().all() and chat["total.flespi-free"].isna().all()
    # the float total is the exact Decimal's value; use = quantity / limit (the fraction limit: of the MAU)
    from decimal import Decimal

    assert all(Decimal(s) == Decimal(repr(f)).quantize(Decimal("0.01"))
               for s, f in zip(chat["total_exact.mesibo-cloud"], chat["total.mesibo-cloud"], strict=True))
    assert np.allclose(chat["use.mesibo-free.mau"], chat["q.mesibo-free.mau"] / 1000)
    assert np.allclose(chat["use.mesibo-free.outbound"], chat["q.mesibo-free.outbound"] / 5)
    # unsampled: CIs are the values themselves; the app's class is its free plan's verdict
    assert (apps["mau_ci_low"] == apps["mau"]).all() and (apps["peak_ccu_ci_high"] == apps["peak_ccu"]).all()
    assert (apps["free_plan"] == apps["archetype"].map({"chat": "mesibo-free", "iot": "flespi-free"})).all()
    assert all(r["free"] == r[f"free.{r['free_plan']}"] for _, r in apps.iterrows())
    ccu = np.load(out / "app_ccu.npy")
    assert ccu.dtype == np.float32 and ccu.shape == (5, 2 * 96)
    assert np.array_equal(ccu.max(axis=1), apps["peak_ccu"].to_numpy(dtype=np.float32))
    info = json.loads((out / "fleet.json").read_text())
    assert info["apps"] == 5 and info["seed"] == 1 and info["clock"]["minutes"] == 2880 and "versions" in info
    assert info["apps_free"] + info["apps_paying"] == 5


def test_load_sums_conserve_the_apps_series(fleet_run):
    """Each minute's load is the sum of the apps' own series (each app re-run on its own), split by class; the
    totals over minutes equal the apps' totals (messages: the apps' messages_sent)."""
    fleet, out = fleet_run
    apps = pd.read_parquet(out / "apps.parquet")
    load = pd.read_csv(out / "load.csv")
    assert len(load) == 2880 and load["time"].iloc[0] == "2026-11-01T00:00:00Z"
    sums = {(q, c): np.zeros(2880) for q in ("ccu", "messages", "egress") for c in ("free", "paying")}
    for task, ident in FleetRun(fleet).tasks():
        rec = run_app(task)
        cls = "free" if apps.loc[ident["app"], "free"] else "paying"
        for q in ("ccu", "messages", "egress"):
            sums[(q, cls)] += rec["series"][q]
        assert rec["row"]["messages_sent"] == apps.loc[ident["app"], "messages_sent"]
    for c in ("free", "paying"):
        assert np.array_equal(load[f"ccu_{c}"].to_numpy(), sums[("ccu", c)])
        assert np.allclose(load[f"messages_per_s_{c}"] * 60, sums[("messages", c)], rtol=0, atol=1e-6)
        assert np.allclose(load[f"egress_bytes_per_s_{c}"] * 60, sums[("egress", c)], rtol=1e-12)
    assert load["ccu"].sum() == (load["ccu_free"] + load["ccu_paying"]).sum() == \
        sum(s.sum() for (q, _), s in sums.items() if q == "ccu")
    assert round(load["messages_per_s"].sum() * 60) == apps["messages_sent"].sum()


def test_capacity_by_hand_from_load_csv(fleet_run):
    fleet, out = fleet_run
    load = pd.read_csv(out / "load.csv")
    apps = pd.read_csv(out / "apps.csv")
    cap = json.loads((out / "capacity.json").read_text())
    for name, sfx in (("total", ""), ("free", "_free"), ("paying", "_paying")):
        c = cap[name]
        ccu = load[f"ccu{sfx}"].to_numpy()
        mps = load[f"messages_per_s{sfx}"].to_numpy()
        eg = np.sort(load[f"egress_bytes_per_s{sfx}"].to_numpy())
        assert c["servers_for_connections"] == math.ceil(ccu.max() / 7)
        assert c["servers_for_messages"] == math.ceil(mps.max() / 0.3)
        assert c["servers"] == max(math.ceil(ccu.max() / 7), math.ceil(mps.max() / 0.3))
        assert c["egress_percentile_bytes_per_s"] == eg[math.ceil(0.95 * eg.size) - 1]   # nearest rank
        rows = apps if name == "total" else apps[apps["free"] == (name == "free")]
        assert c["stored_gb"] == pytest.approx(rows["stored_gb"].sum(), rel=1e-12, abs=1e-15)
        assert c["apps"] == len(rows)
    assert cap["total"]["servers_for_connections"] >= 2    # the tiny capacity makes the count non-trivial


def test_executors_give_the_same_tables(tmp_path):
    """In-process and a local pool of 2 give the same apps table (but wall_s), load and per-app CCU bins."""
    fleet = load_fleet(write_fleet(tmp_path), ["apps=4"])
    a = run_fleet(fleet, executor=InlineExecutor(), progress=False)
    pool = local_pool(2)
    try:
        b = run_fleet(fleet, executor=pool, progress=False)
    finally:
        pool.shutdown()
    pd.testing.assert_frame_equal(a.apps.drop(columns="wall_s"), b.apps.drop(columns="wall_s"))
    pd.testing.assert_frame_equal(a.load, b.load)
    assert np.array_equal(a.app_ccu, b.app_ccu) and a.capacity == b.capacity


def test_shipped_small_apps_fleet():
    """fleets/small-apps.yaml: 1,000 apps, at least 5 M MAU in expectation (closed forms), most apps tiny and a
    few large, large apps sampled."""
    fleet = load_fleet(ROOT / "fleets" / "small-apps.yaml")
    assert fleet.apps == 1000 and fleet.days == 30
    expected = fleet.expected()
    assert expected["active_users"] >= 5e6
    users = np.array([fleet.app(i).params.get("population.users", 0) for i in range(fleet.apps)])
    chat = users[users > 0]
    assert np.median(chat) < 500 and chat.max() > 100_000 and chat.sum() >= 5e6
    assert fleet.sampled_apps > 0


@pytest.mark.skipif(not hasattr(sim.scenario.Population, "model_fields")
                    or "sample" not in sim.scenario.Population.model_fields,
                    reason="population.sample is not in this version of the scenario schema")
def test_large_apps_are_sampled(tmp_path):
    """Apps above the cap run on population.sample / iot.sample; their rows say so and carry the CIs."""
    doc = fleet_doc(apps=3, sample={"max_users": 30, "max_devices": 4})
    doc["archetypes"]["chat"]["params"]["population.users"] = {"dist": "fixed", "value": 90}
    doc["archetypes"]["iot"]["params"]["iot.devices"] = {"dist": "fixed", "value": 12}
    apps = run_fleet(load_fleet(write_fleet(tmp_path, doc)), executor=InlineExecutor(), progress=False).apps
    assert apps["error"].isna().all(), apps["error"].tolist()
    assert apps["sampled"].all()
    chat, iot = apps[apps["archetype"] == "chat"], apps[apps["archetype"] == "iot"]
    assert (chat["users"] == 90).all() and (chat["sample_users"] == 30).all()
    assert (iot["devices"] == 12).all() and (iot["sample_devices"] == 4).all()
    assert (apps["mau_ci_low"] <= apps["mau"]).all() and (apps["mau"] <= apps["mau_ci_high"]).all()
    assert (apps["peak_ccu_ci_low"] <= apps["peak_ccu"]).all() and (apps["peak_ccu"] <= apps["peak_ccu_ci_high"]).all()
