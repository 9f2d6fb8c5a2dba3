"""Experiments: study files, common random numbers, summaries, sequential replications, resume, executors.

Every study here is tiny (quick.yaml, 200 users, 1 day, no warm-up: ~0.2 s a run) so the file runs in well
under a minute.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from sim.experiments import load_study, run_study
from sim.experiments.executors import InlineExecutor, local_pool
from sim.experiments.seeds import run_seed
from sim.experiments.store import STORE

ROOT = Path(__file__).resolve().parents[1]
QUICK = str(ROOT / "scenarios" / "quick.yaml")
TINY = {"simulation.days": 1, "simulation.warmup_days": 0, "population.users": 200}


def write_study(tmp_path: Path, name: str = "study.yaml", **doc) -> Path:
    base = {"scenario": QUICK, "set": dict(TINY), "plans": ["mesibo-onprem"], "seed": 1}
    base.update(doc)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(base))
    return path


def comparable(df: pd.DataFrame) -> pd.DataFrame:
    """A runs table without what legitimately differs between executions (wall time)."""
    return df.drop(columns=["wall_s"]).reset_index(drop=True)


# -- common random numbers --------------------------------------------------------------------------------


def test_replication_seed_depends_on_root_and_replication_only(tmp_path):
    r = run_study(load_study(write_study(tmp_path, vary={"population.users": [200, 210]}, replications=2)),
                  executor=InlineExecutor(), progress=False)
    by_rep = r.runs.groupby("replication")["seed"].unique()
    assert [list(v) for v in by_rep] == [[run_seed(1, 0)], [run_seed(1, 1)]]
    assert run_seed(1, 0) != run_seed(1, 1) != run_seed(2, 1)


def test_growing_users_leaves_existing_users_draws_unchanged():
    from sim.rng import Streams
    from sim.scenario import load_scenario
    from sim.world.population import Population

    small = Population.draw(load_scenario(QUICK, ["population.users=300"]), Streams(5))
    large = Population.draw(load_scenario(QUICK, ["population.users=450"]), Streams(5))
    for attr in ("active", "platform", "tz_ms", "msg_mult", "keeps_socket", "push_phase_ms", "session_mult",
                 "push_off"):
        assert np.array_equal(getattr(small, attr), getattr(large, attr)[:300]), attr
    other = Population.draw(load_scenario(QUICK, ["population.users=300"]), Streams(5, replication=1))
    assert not np.array_equal(small.msg_mult, other.msg_mult)


def test_crn_make_the_paired_difference_of_close_points_far_less_variable(tmp_path):
    """Users 200 vs 210, 6 replications: the difference paired by replication (same seeds) against the
    difference with the second point's runs on independent seeds (another root seed)."""
    path = write_study(tmp_path, vary={"population.users": [200, 210]}, replications=6)
    crn = run_study(load_study(path), executor=InlineExecutor(), progress=False).runs
    indep = run_study(load_study(path, ["seed=99"]), executor=InlineExecutor(), progress=False).runs
    for metric in ("outbound_gb", "delivered", "connections"):
        a = crn[crn.point == "p000"].set_index("replication")[metric]
        b = crn[crn.point == "p001"].set_index("replication")[metric]
        b_ind = indep[indep.point == "p001"].set_index("replication")[metric]
        var_crn, var_ind = np.var(a - b, ddof=1), np.var(a - b_ind, ddof=1)
        assert var_crn < 0.3 * var_ind, (metric, var_crn, var_ind)


# -- summaries ---------------------------------------------------------------------------------------------


def test_summary_ci_equals_scipy_t_from_stored_runs(tmp_path):
    path = write_study(tmp_path, vary={"protocol.tls": ["1.2", "1.3"]}, replications=4, confidence=0.9)
    out = tmp_path / "out"
    run_study(load_study(path), executor=InlineExecutor(), progress=False, out=out)
    runs = pd.read_parquet(out / "runs.parquet")
    assert runs.equals(pd.read_parquet(out / "runs.parquet"))  # stable on disk
    summary = pd.read_csv(out / "summary.csv")
    for metric in ("total", "outbound_gb", "full_handshakes"):
        for point in ("p000", "p001"):
            v = runs[(runs.point == point) & (runs.plan == "mesibo-onprem")][metric].to_numpy(float)
            row = summary[(summary.point == point) & (summary.metric == metric)].iloc[0]
            lo, hi = stats.t.interval(0.9, len(v) - 1, loc=v.mean(), scale=stats.sem(v)) if v.std() else (v[0], v[0])
            assert row["n"] == 4
            assert row["ci_low"] == pytest.approx(lo, rel=1e-9, abs=1e-12)
            assert row["ci_high"] == pytest.approx(hi, rel=1e-9, abs=1e-12)
            assert row["p50"] == pytest.approx(np.percentile(v, 50))
    info = json.loads((out / "study.json").read_text())
    assert info["runs_computed"] == 8 and info["runs_reused"] == 0
    assert info["seeds"]["replications"]["3"] == run_seed(1, 3)
    csv = pd.read_csv(out / "runs.csv")
    assert len(csv) == len(runs) == 8
    for col in ("point", "protocol.tls", "replication", "seed", "plan", "total", "line_mau", "mau", "peak_ccu",
                "outbound_gb", "stored_gb", "turn_gb", "overhead_share", "connections", "full_handshakes",
                "delivered", "stored", "rejected", "wall_s", "error"):
        assert col in runs.columns, col


def test_compare_is_the_paired_difference_with_its_t_interval(tmp_path):
    path = write_study(tmp_path, vary={"protocol.tls": ["1.2", "1.3"]}, replications=3)
    r = run_study(load_study(path), executor=InlineExecutor(), progress=False)
    c = r.compare("p000", "p001", "outbound_gb")
    a = r.runs[r.runs.point == "p000"]["outbound_gb"].to_numpy()
    b = r.runs[r.runs.point == "p001"]["outbound_gb"].to_numpy()
    d = a - b
    lo, hi = stats.t.interval(0.95, 2, loc=d.mean(), scale=stats.sem(d))
    assert c["n"] == 3 and c["mean"] == pytest.approx(d.mean())
    assert (c["ci_low"], c["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert c["share_a_below_b"] == float((d < 0).mean())


# -- sequential replications ----------------------------------------------------------------------------------


def test_sequential_replications_stop_at_the_target_and_not_before(tmp_path):
    from sim.experiments.summary import half_width

    target = {"metric": "outbound_gb", "relative_half_width": 0.01, "confidence": 0.95}
    path = write_study(tmp_path, vary={"population.users": [200, 300]},
                       replications={"target": target, "min": 3, "max": 12})
    runs = run_study(load_study(path), executor=InlineExecutor(), progress=False).runs
    counts = runs.groupby("point")["replication"].nunique()
    assert counts.min() >= 3
    for point, n in counts.items():
        v = runs[runs.point == point].sort_values("replication")["outbound_gb"].to_numpy(float)
        met = [half_width(v[:k], 0.95) <= 0.01 * abs(v[:k].mean()) for k in range(2, n + 1)]
        assert n == 12 or met[-1], (point, n)              # stopped: target met (or max reached)
        assert not any(met[k - 2] for k in range(3, n)), (point, n)  # not met at any earlier n >= min
    assert counts.max() > 3  # the target made some point run more than the minimum


# -- resume ------------------------------------------------------------------------------------------------------


def test_rerun_after_an_interrupted_sweep_computes_exactly_the_missing_runs(tmp_path):
    path = write_study(tmp_path, vary={"population.users": [200, 220]}, replications=3)
    full = tmp_path / "full"
    first = run_study(load_study(path), executor=InlineExecutor(), progress=False, out=full)
    assert first.info["runs_computed"] == 6
    again = run_study(load_study(path), executor=InlineExecutor(), progress=False, out=full)
    assert again.info["runs_computed"] == 0 and again.info["runs_reused"] == 6
    # a sweep killed after 4 runs, the 5th half written
    cut = tmp_path / "cut"
    cut.mkdir()
    lines = (full / STORE).read_text().splitlines(keepends=True)
    (cut / STORE).write_text("".join(lines[:4]) + lines[4][:50])
    resumed = run_study(load_study(path), executor=InlineExecutor(), progress=False, out=cut)
    assert (resumed.info["runs_computed"], resumed.info["runs_reused"]) == (2, 4)
    pd.testing.assert_frame_equal(comparable(pd.read_parquet(cut / "runs.parquet")),
                                  comparable(pd.read_parquet(full / "runs.parquet")))
    # a changed value recomputes only the points it moves
    moved = run_study(load_study(path, ["vary.population.users=[200, 240]"]), executor=InlineExecutor(),
                      progress=False, out=cut)
    assert (moved.info["runs_computed"], moved.info["runs_reused"]) == (3, 3)


def test_a_failing_run_records_its_error_and_the_sweep_goes_on(tmp_path, monkeypatch):
    import sim.comparison

    real = sim.comparison.run_plans

    def flaky(scenario, plans, **kw):
        if scenario.population.users == 220 and kw["seed"] == run_seed(1, 1):
            raise RuntimeError("boom")
        return real(scenario, plans, **kw)

    monkeypatch.setattr(sim.comparison, "run_plans", flaky)
    path = write_study(tmp_path, vary={"population.users": [200, 220]}, replications=2)
    r = run_study(load_study(path), executor=InlineExecutor(), progress=False, out=tmp_path / "o")
    bad = r.runs[r.runs.error.notna()]
    assert len(bad) == 1 and bad.iloc[0]["point"] == "p001" and "boom" in bad.iloc[0]["error"]
    assert r.runs.error.isna().sum() == 3
    assert r.info["runs_failed"] == 1
    monkeypatch.setattr(sim.comparison, "run_plans", real)  # fixed: the next sweep retries only the failed run
    again = run_study(load_study(path), executor=InlineExecutor(), progress=False, out=tmp_path / "o")
    assert (again.info["runs_computed"], again.info["runs_failed"]) == (1, 0)


# -- executors -----------------------------------------------------------------------------------------------------


def test_dask_local_cluster_gives_the_local_pools_rows(tmp_path):
    pytest.importorskip("distributed")
    from sim.experiments.executors import dask_executor

    # sequential replications: runs finish out of order on a pool, the decisions must not depend on it
    target = {"metric": "outbound_gb", "relative_half_width": 0.01}
    path = write_study(tmp_path, vary={"population.users": [200, 230]}, plans=["mesibo-cloud", "mesibo-onprem"],
                       replications={"target": target, "min": 2, "max": 4})
    pool = local_pool(2)
    try:
        local = run_study(load_study(path), executor=pool, progress=False).runs
    finally:
        pool.shutdown()
    with dask_executor(local_workers=2) as ex:
        dask = run_study(load_study(path), executor=ex, progress=False).runs
    inline = run_study(load_study(path), executor=InlineExecutor(), progress=False).runs
    assert len(local) >= 8 and local.groupby("point")["replication"].nunique().max() > 2
    pd.testing.assert_frame_equal(comparable(local), comparable(dask))
    pd.testing.assert_frame_equal(comparable(local), comparable(inline))


# -- memory ----------------------------------------------------------------------------------------------------------


def test_ten_thousand_runs_keep_the_coordinator_small(tmp_path, monkeypatch):
    """The coordinator's own cost per run (scheduling, store, tables): workers replaced by a stub."""
    psutil = pytest.importorskip("psutil")
    import sim.experiments.worker as worker

    def stub(task):
        return {"key": task["key"], "error": None, "wall_s": 0.0, "series": None,
                "plans": [{"plan": p.name, "total": 1.0, "total_exact": "1.00", "line_mau": 1.0, "mau": 1,
                           "peak_ccu": 1.0, "outbound_gb": 0.1, "stored_gb": 0.0, "turn_gb": 0.0,
                           "overhead_share": 0.5, "connections": 1, "full_handshakes": 1, "delivered": 1,
                           "stored": 0, "rejected": 0, "own_run": False} for p in task["plans"]]}

    monkeypatch.setattr(worker, "run_task", stub)
    path = write_study(tmp_path, vary={"population.users": list(range(200, 300))}, replications=100)
    before = psutil.Process().memory_info().rss  # what earlier tests of the session left (Python keeps its heap)
    r = run_study(load_study(path), executor=InlineExecutor(), progress=False, out=tmp_path / "o")
    assert r.info["runs_computed"] == 10_000 and len(r.runs) == 10_000
    grown = psutil.Process().memory_info().rss - before
    print(f"coordinator: {before / 1e6:.0f} MB before, +{grown / 1e6:.0f} MB for 10,000 runs")
    assert grown < 250e6


# -- bad study files -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("doc, field", [
    ({"replicatons": 3}, "replicatons: unknown key"),
    ({"vary": {"population.usrs": [1, 2]}}, "vary.population.usrs: not a scenario key"),
    ({"sample": {"method": "lhs", "n": 4, "ranges": {"push.disabled_fraction": [0.5, 0.1]}}},
     "sample.ranges: Value error, push.disabled_fraction: lo (0.5) > hi (0.1)"),
    ({"vary": {"protocol.tls": ["1.4"]}}, "vary: design point p000"),
    ({"plans": ["no-such-plan"]}, "plans.0"),
    ({"replications": {"target": {"metric": "bill", "relative_half_width": 0.1}}}, "replications"),
])
def test_bad_study_files_end_with_one_line_and_exit_2(tmp_path, doc, field):
    path = write_study(tmp_path, **doc)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "sim", "sweep", str(path), "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sim: error: {path}: ") and field in lines[0], lines
    assert not out.exists()


def test_cli_sweep_writes_the_tables_and_resumes(tmp_path):
    shutil.copy(ROOT / "studies" / "quick-sweep.yaml", tmp_path / "q.yaml")
    (tmp_path / "q.yaml").write_text((tmp_path / "q.yaml").read_text().replace("../scenarios/quick.yaml", QUICK))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sim", "sweep", str(tmp_path / "q.yaml"), "--out", str(out), "--no-progress",
           "--workers", "1", "--set", "replications=1", "--set", "vary.population.users=[200]", "--set", "metrics=[total]"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "2 runs (2 computed, 0 reused, 0 failed)" in proc.stdout
    for name in ("runs.parquet", "runs.csv", "summary.csv", "study.json", "plots/total-vs-protocol.tls.png"):
        assert (out / name).is_file(), name
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert "(0 computed, 2 reused" in proc.stdout
    assert json.loads((out / "study.json").read_text())["runs_computed"] == 0


def test_morris_design_writes_sensitivity(tmp_path):
    path = write_study(tmp_path, sample={"method": "morris", "n": 2, "ranges": {
        "population.users": [200, 260], "push.disabled_fraction": [0.0, 0.4]}}, metrics=["outbound_gb"])
    r = run_study(load_study(path), executor=InlineExecutor(), progress=False, out=tmp_path / "o")
    assert len(r.info["points"]) == 6 and all(isinstance(p["population.users"], int) for p in r.info["points"])
    sens = pd.read_csv(tmp_path / "o" / "sensitivity.csv")
    assert set(sens["parameter"]) == {"population.users", "push.disabled_fraction"}
    assert {"mu_star", "mu_star_conf", "sigma"} <= set(sens.columns)
    assert (tmp_path / "o" / "sensitivity.png").is_file()


def test_sampled_designs_have_the_documented_sizes_and_stay_in_range(tmp_path):
    from sim.experiments.design import points

    ranges = {"push.disabled_fraction": [0.1, 0.4], "population.users": [200, 300]}
    lhs = points(load_study(write_study(tmp_path, sample={"method": "lhs", "n": 5, "ranges": ranges})))
    sob = points(load_study(write_study(tmp_path, sample={"method": "sobol", "n": 4, "ranges": ranges})))
    assert len(lhs) == 5 and len(sob) == 4 * (2 + 2)
    for p in lhs + sob:
        assert 0.1 <= p.values["push.disabled_fraction"] <= 0.4 and 200 <= p.values["population.users"] <= 300
        assert p.scenario.population.users == p.values["population.users"]
    again = points(load_study(write_study(tmp_path, sample={"method": "lhs", "n": 5, "ranges": ranges})))
    assert [p.values for p in again] == [p.values for p in lhs]  # the study seed fixes the design


def test_out_that_is_not_an_earlier_sweep_is_refused_before_anything_runs(tmp_path):
    path = write_study(tmp_path, replications=1)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    proc = subprocess.run([sys.executable, "-m", "sim", "sweep", str(path), "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--out" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
