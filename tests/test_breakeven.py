"""sim breakeven: where two plans cost the same on simulated usage (sim/experiments/breakeven.py).

Every simulated scenario here is one day without warm-up and almost no traffic, so a run takes a few hundredths of a
second; the tests run in-process (``--workers 1``: the inline executor).
"""

from __future__ import annotations

import csv
import json
import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from sim.cli import main
from sim.experiments import breakeven as be
from sim.experiments.seeds import run_seed

PER_MAU = {"name": "per-mau", "description": "$0.01 per MAU, nothing included",
           "metrics": {"mau": {"meter": "mau", "aggregation": "unique", "unit": "MAU"}},
           "charges": [{"metric": "mau", "included": 0, "model": "per_unit", "unit_price": "0.01"}]}
FLAT_49 = {"name": "flat-49", "description": "$49 a month whatever the usage", "base_fee": "49",
           "metrics": {"mau": {"meter": "mau", "aggregation": "unique", "unit": "MAU"}}}
PER_MB = {"name": "per-mb", "description": "$1 per MB of outbound traffic, nothing included",
          "metrics": {"outbound": {"meter": "outbound_bytes", "aggregation": "sum", "meter_unit": "bytes", "unit": "MB"}},
          "charges": [{"metric": "outbound", "model": "per_unit", "unit_price": "1"}]}
FLAT_7_50 = {"name": "flat-7.50", "description": "$7.50 a month", "base_fee": "7.50",
             "metrics": {"outbound": {"meter": "outbound_bytes", "aggregation": "sum", "meter_unit": "bytes",
                                      "unit": "MB"}}}
#: Every registered user is active (MAU = users: each active user connects at least once in the period), one day,
#: no warm-up, one session a day, no messages (no contact graph either), no calls: 8,000 users in ~0.05 s.
TINY = {"name": "tiny", "seed": 3, "simulation": {"days": 1, "warmup_days": 0},
        "population": {"users": 4000, "monthly_active_fraction": 1, "timezones": "utc"},
        "activity": {"sessions_per_dau_per_day": 1},
        "messaging": {"messages_per_dau_per_day": 0, "conversations": {"enabled": False}},
        "calls": {"calls_per_dau_per_day": 0}}


@pytest.fixture
def files(tmp_path):
    """The scenario and the four plans, as files."""
    out = {}
    for name, doc in (("tiny", TINY), ("mau", PER_MAU), ("flat", FLAT_49), ("mb", PER_MB), ("flat750", FLAT_7_50)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc))
        out[name] = str(path)
    return out


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["breakeven", *args, "--workers", "1", "--no-progress"])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# -- the analytic crossing: $0.01 per MAU against a $49 flat fee cross at exactly 4,900 users ---------------------


def test_per_mau_against_a_flat_fee_cross_at_4900_users(files, tmp_path, capsys):
    out = tmp_path / "out"
    rc, text, err = run_cli(capsys, files["tiny"], "--plan", files["mau"], "--plan", files["flat"],
                            "--vary", "population.users", "--range", "2000", "8000", "--points", "7",
                            "--replications", "3", "--refine", "2", "--format", "json", "--out", str(out))
    assert rc == 0, err
    doc = json.loads(text)
    assert abs(doc["value"] - 4900) <= 1
    assert doc["ci_low"] <= 4900 <= doc["ci_high"]
    assert doc["replications_with_crossing"] == 3 and doc["replications_without_crossing"] == 0
    assert doc["cheaper_below"] == "per-mau" and doc["cheaper_above"] == "flat-49"
    assert doc["grid"] == [2000, 3000, 4000, 5000, 6000, 7000, 8000] and doc["integer"] is True
    # common random numbers: replication r has the seed of replication r of a sweep, at every grid value
    assert [c["seed"] for c in doc["crossings"]] == [run_seed(3, r) for r in range(3)]
    for c in doc["crossings"]:
        assert c["crossing"] == pytest.approx(4900, abs=1e-9)
        # grid bracket [4000, 5000], then two bisection steps: 4500 (A cheaper), 4750 (A cheaper)
        assert c["bracket"] == [4750, 5000] and c["refine_runs"] == 2 and c["sign_changes"] == 1
    a, b = doc["curves"]["plans"]
    assert a["mean"] == [20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0] and b["mean"] == [49.0] * 7
    assert json.loads((out / "breakeven.json").read_text())["value"] == doc["value"]
    assert (out / "breakeven.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = read_csv(out / "breakeven.csv")
    assert len(rows) == 7 * 3 + 2 * 3
    assert sum(r["stage"] == "grid" for r in rows) == 21
    for r in rows:  # exact money: MAU = users, so A = users / 100 to the cent, and B = 49.00
        users = int(r["population.users"])
        assert Decimal(r["cost_a"]) == Decimal(users) / 100 and Decimal(r["cost_b"]) == Decimal("49")
        assert Decimal(r["difference"]) == Decimal(r["cost_a"]) - Decimal(r["cost_b"])
        assert int(r["seed"]) == run_seed(3, int(r["replication"]))


# -- a crossing that depends on simulated traffic ------------------------------------------------------------


def test_traffic_priced_plan_against_a_flat_fee_has_a_finite_ci_over_the_replications(files, tmp_path, capsys):
    """$1 per outbound MB against $7.50 flat, varying messages per DAU (a float key) for 300 users: the crossing
    moves with each replication's traffic."""
    out = tmp_path / "out"
    rc, text, err = run_cli(capsys, files["tiny"], "--plan", files["mb"], "--plan", files["flat750"],
                            "--vary", "messaging.messages_per_dau_per_day", "--range", "1", "10", "--points", "5",
                            "--replications", "4", "--refine", "2", "--set", "population.users=300",
                            "--set", "activity.sessions_per_dau_per_day=3", "--format", "json", "--out", str(out))
    assert rc == 0, err
    doc = json.loads(text)
    xs = np.array([c["crossing"] for c in doc["crossings"]], dtype=float)
    assert doc["integer"] is False and doc["replications_with_crossing"] == 4
    assert all(math.isfinite(doc[k]) for k in ("value", "ci_low", "ci_high"))
    assert xs.std() > 0                       # the replications' traffic differs, so do their crossings
    assert doc["ci_low"] < doc["value"] < doc["ci_high"]
    assert xs.min() <= doc["value"] <= xs.max()
    lo, hi = stats.t.interval(0.95, len(xs) - 1, loc=xs.mean(), scale=xs.std(ddof=1) / math.sqrt(len(xs)))
    assert (doc["value"], doc["ci_low"], doc["ci_high"]) == pytest.approx((xs.mean(), lo, hi), rel=1e-12)
    assert doc["cheaper_below"] == "per-mb" and doc["cheaper_above"] == "flat-7.50"
    # each crossing lies in its bracket, whose ends are runs of that replication with opposite signs of A - B,
    # inside the first grid interval where that replication's A - B changes sign
    rows = read_csv(out / "breakeven.csv")
    key = "messaging.messages_per_dau_per_day"
    for c in doc["crossings"]:
        mine = [r for r in rows if int(r["replication"]) == c["replication"]]
        assert {int(r["seed"]) for r in mine} == {c["seed"]}
        d = {float(r[key]): Decimal(r["difference"]) for r in mine}
        lo_x, hi_x = c["bracket"]
        assert lo_x <= c["crossing"] <= hi_x
        assert d[lo_x] < 0 < d[hi_x]
        grid = sorted(float(r[key]) for r in mine if r["stage"] == "grid")
        first = next(i for i in range(len(grid) - 1) if d[grid[i]] < 0 < d[grid[i + 1]])
        assert grid[first] <= lo_x < hi_x <= grid[first + 1]
        assert hi_x - lo_x == pytest.approx((grid[first + 1] - grid[first]) / 4)   # two bisection steps
    # a row's seed reproduces its run (so every value of a replication ran on that replication's one seed)
    from sim.comparison import run_plans
    from sim.pricing.plan import load_plan
    from sim.scenario import load_scenario

    row = next(r for r in rows if r["replication"] == "1" and r["stage"] == "refine 2")
    sc = load_scenario(files["tiny"], ["population.users=300", "activity.sessions_per_dau_per_day=3",
                                       f"{key}={row[key]}"], seed=int(row["seed"]))
    _, outcomes = run_plans(sc, [load_plan(files["mb"]), load_plan(files["flat750"])], progress=False)
    assert [str(o.bill.total) for o in outcomes] == [row["cost_a"], row["cost_b"]]


# -- the JSON document --------------------------------------------------------------------------------------


def test_json_output_has_the_documented_keys(files, capsys):
    rc, text, _ = run_cli(capsys, files["tiny"], "--plan", files["mau"], "--plan", files["flat"],
                          "--vary", "population.users", "--range", "4000", "6000", "--points", "2",
                          "--replications", "2", "--refine", "0", "--format", "json")
    assert rc == 0
    doc = json.loads(text)
    for key in ("value", "ci_low", "ci_high", "std", "confidence", "key", "integer", "current", "range",
                "range_source", "grid", "points", "plans", "currency", "replications", "replications_with_crossing",
                "replications_without_crossing", "replications_failed", "cheaper_below", "cheaper_above",
                "cheaper_throughout", "crossings", "curves", "seed", "seeds", "refine", "runs", "notes"):
        assert key in doc, key
    assert doc["plans"] == {"a": "per-mau", "b": "flat-49"} and doc["currency"] == "USD"
    assert doc["current"] == 4000 and doc["range"] == [4000, 6000] and doc["range_source"] == "given"
    assert doc["value"] == pytest.approx(4900) and doc["ci_low"] == doc["ci_high"] == pytest.approx(4900)
    assert doc["runs"] == 4 and doc["cheaper_throughout"] is None
    assert set(doc["crossings"][0]) >= {"replication", "seed", "crossing", "bracket", "cheaper_below",
                                        "cheaper_above", "sign_changes", "refine_runs"}
    assert set(doc["curves"]) == {"x", "plans", "difference"}
    assert set(doc["curves"]["plans"][0]) >= {"plan", "mean", "ci_low", "ci_high", "violations_share"}


def test_table_format_names_the_answer(files, capsys):
    rc, text, _ = run_cli(capsys, files["tiny"], "--plan", files["mau"], "--plan", files["flat"],
                          "--vary", "population.users", "--range", "4000", "6000", "--points", "2",
                          "--replications", "2", "--refine", "0")
    assert rc == 0
    assert "breakeven: population.users = 4,900 (95% CI 4,900 to 4,900; 2 of 2 replications cross)" in text
    assert "cheaper below: per-mau, above: flat-49" in text


# -- no crossing in the range ---------------------------------------------------------------------------------


def test_no_crossing_says_which_plan_is_cheaper_throughout_and_exits_1(files, tmp_path, capsys):
    out = tmp_path / "out"
    args = [files["tiny"], "--plan", files["mau"], "--plan", files["flat"], "--vary", "population.users",
            "--range", "100", "1000", "--points", "3", "--replications", "2"]
    rc, text, _ = run_cli(capsys, *args, "--format", "json", "--out", str(out))
    assert rc == 1
    doc = json.loads(text)
    assert doc["value"] is None and doc["ci_low"] is None and doc["ci_high"] is None
    assert doc["cheaper_throughout"] == "per-mau"
    assert doc["replications_with_crossing"] == 0 and doc["replications_without_crossing"] == 2
    assert doc["runs"] == 6                 # nothing to refine
    assert json.loads((out / "breakeven.json").read_text())["value"] is None
    rc, text, _ = run_cli(capsys, *args, "--out", str(out))      # an earlier result is replaced whole
    assert rc == 1
    assert "no crossing" in text and "per-mau is cheaper throughout" in text
    assert sorted(p.name for p in out.iterdir()) == ["breakeven.csv", "breakeven.json", "breakeven.png"]


# -- bad input: one line, exit 2, nothing written ---------------------------------------------------------------


@pytest.mark.parametrize("args, words", [
    (["--vary", "population.userz"], "--vary: population.userz: not a scenario key"),
    (["--vary", "protocol.tls"], "not a numeric key"),
    (["--vary", "seed"], "seed is not varied"),
    (["--vary", "messaging.delivery_receipts"], "not a numeric key"),
    (["--vary", "population.users", "--range", "8000", "2000"], "--range: LO (8000) must be below HI (2000)"),
    (["--vary", "population.users", "--range", "5000", "5000"], "must be below"),
    (["--vary", "population.users", "--range", "1", "1e9"], "a value in the range) is refused"),
    (["--vary", "population.users", "--points", "1"], "--points: at least 2"),
    (["--vary", "population.users", "--set", "population.userz=3"], "unknown key"),
    (["--vary", "messaging.ttl_s"], "give --range LO HI"),
    (["--plan", "no-such-plan", "--vary", "population.users"], "unknown plan 'no-such-plan'"),
    (["--plan", "TWICE", "--vary", "population.users"], "is given twice"),
    (["--plan", "mesibo-cloud", "--vary", "population.users"], "give exactly two plans"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(files, tmp_path, capsys, args, words):
    out = tmp_path / "out"
    plans = ["--plan", files["mau"], "--plan", files["flat"]]
    if "--plan" in args:  # replaces plan B (or, "TWICE", gives plan A again; or adds a third)
        i = args.index("--plan")
        extra = args[i + 1]
        args = args[:i] + args[i + 2:]
        plans = (plans[:3] + [files["mau"]] if extra == "TWICE" else
                 plans + ["--plan", extra] if extra == "mesibo-cloud" else plans[:3] + [extra])
    rc, text, err = run_cli(capsys, files["tiny"], *plans, *args, "--out", str(out))
    assert rc == 2
    assert text == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("sim: error: ") and words in err, err
    assert not out.exists()


def test_an_out_that_is_not_an_earlier_result_is_refused_before_anything_runs(files, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    rc, _, err = run_cli(capsys, files["tiny"], "--plan", files["mau"], "--plan", files["flat"],
                         "--vary", "population.users", "--out", str(out))
    assert rc == 2 and "neither empty nor an earlier breakeven result" in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


# -- the grid, the default range and the crossing arithmetic (no simulation) ----------------------------------


def test_default_range_is_a_quarter_to_four_times_the_current_value_within_the_keys_bounds(files):
    s = be.prepare(files["tiny"], [files["mau"], files["flat"]], "population.users", points=4)
    assert (s.lo, s.hi, s.range_source) == (1000, 16000, "default") and s.grid == [1000, 6000, 11000, 16000]
    s = be.prepare(files["tiny"], [files["mau"], files["flat"]], "population.monthly_active_fraction", points=4)
    assert (s.lo, s.hi) == (0.25, 1.0) and s.grid == [0.25, 0.5, 0.75, 1.0]      # a fraction stops at 1
    s = be.prepare(files["tiny"], [files["mau"], files["flat"]], "population.users", (1, 3), points=7)
    assert s.grid == [1, 2, 3] and any("3 distinct values" in n for n in s.notes)


def test_first_crossing_interpolates_exactly_and_skips_ties():
    D = Decimal
    c, n = be.first_crossing([1, 2, 3, 4], [D("-3"), D("-1"), D("1"), D("-2")])
    assert n == 2 and (c.lo, c.hi) == (2, 3) and c.value == 2.5
    c, n = be.first_crossing([0, 10], [D("-0.01"), D("0.03")])
    assert c.value == 2.5 and n == 1
    c, _ = be.first_crossing([1, 2, 3, 4, 5], [D("-1"), D("0"), D("0"), D("0"), D("2")])   # equal costs 2..4
    assert c.tie == (2, 4) and c.value == 3.0 and not c.refinable
    assert be.first_crossing([1, 2, 3], [D("0"), D("1"), D("2")]) == (None, 0)
    assert be.midpoint(be.Crossing(4000, D(-9), 5000, D(1)), integer=True) == 4500
    assert be.midpoint(be.Crossing(4, D(-9), 5, D(1)), integer=True) is None
    assert be.midpoint(be.Crossing(0.5, D(-9), 1.0, D(1)), integer=False) == 0.75


def test_run_cost_is_the_sum_of_the_bills():
    class Outcome:
        def __init__(self, total):
            self.bill = type("Bill", (), {"total": Decimal(total)})()

    assert be.run_cost(None, Outcome("49.00")) == Decimal("49.00")
    assert be.run_cost(None, [Outcome("49.00"), Outcome("0.01")]) == Decimal("49.01")


# -- executors and failures ---------------------------------------------------------------------------------


def test_a_process_pool_gives_the_inline_executors_answer(files):
    from sim.experiments.executors import InlineExecutor

    setup = be.prepare(files["tiny"], [files["mb"], files["flat750"]], "messaging.messages_per_dau_per_day", (1, 10),
                       points=3, replications=2, refine=1, sets=["population.users=300",
                                                                 "activity.sessions_per_dau_per_day=3"])
    inline = be.document(be.run_breakeven(setup, executor=InlineExecutor(), progress=False))
    pooled = be.document(be.run_breakeven(setup, workers=2, progress=False))
    assert pooled["crossings"] == inline["crossings"] and pooled["curves"] == inline["curves"]
    assert pooled["value"] == inline["value"] is not None


def test_a_failed_replication_is_left_out_and_named(files, monkeypatch):
    from sim.experiments.executors import InlineExecutor

    real = be.run_point
    bad = run_seed(3, 1)
    monkeypatch.setattr(be, "run_point", lambda task: {"error": "RuntimeError: boom", "costs": None}
                        if task["seed"] == bad else real(task))
    setup = be.prepare(files["tiny"], [files["mau"], files["flat"]], "population.users", (4000, 6000), points=2,
                       replications=3, refine=0)
    doc = be.document(be.run_breakeven(setup, executor=InlineExecutor(), progress=False))
    assert doc["replications_failed"] == 1 and doc["replications_with_crossing"] == 2
    assert doc["crossings"][1]["crossing"] is None and "boom" in doc["crossings"][1]["error"]
    assert doc["value"] == pytest.approx(4900) and any("1 replication failed" in n for n in doc["notes"])
    assert "failed" in be.table_text(doc)
