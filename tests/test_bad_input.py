"""Bad input: one clear line naming the file and the field, exit status 2, nothing on stdout."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sim.cli import main

GOOD_PERIOD = "period: {start: 2026-11-01, end: 2026-12-01}\n"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def assert_one_line_error(code, out, err, *fragments):
    assert code == 2
    assert out == ""                               # nothing written
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_unknown_plan_lists_shipped_plans(capsys, tmp_path):
    usage = write(tmp_path, "u.yaml", GOOD_PERIOD + "meters: {mau: 5}\n")
    code, out, err = run(capsys, "price", usage, "--plan", "mesibo-gold")
    assert_one_line_error(code, out, err, "unknown plan 'mesibo-gold'", "mesibo-cloud", "flespi-free")


def test_unknown_plan_key(capsys, tmp_path):
    plan = write(tmp_path, "p.yaml", "name: x\ndescription: d\nmetrics: {q: {meter: q, aggregation: sum}}\n"
                 "charges: [{metric: q, model: per_unit, unit_price: 1, inclded: 5}]\n")
    usage = write(tmp_path, "u.yaml", GOOD_PERIOD + "meters: {q: 5}\n")
    code, out, err = run(capsys, "price", usage, "--plan", plan)
    assert_one_line_error(code, out, err, "p.yaml", "charges.0.inclded", "unknown key")


def test_plan_referring_to_unknown_metric(capsys, tmp_path):
    plan = write(tmp_path, "p.yaml", "name: x\ndescription: d\nmetrics: {q: {meter: q, aggregation: sum}}\n"
                 "charges: [{metric: qq, model: per_unit, unit_price: 1}]\n")
    usage = write(tmp_path, "u.yaml", GOOD_PERIOD + "meters: {q: 5}\n")
    assert_one_line_error(*run(capsys, "price", usage, "--plan", plan), "p.yaml", "charges.0.metric", "'qq'")


def test_negative_price_in_plan(capsys, tmp_path):
    plan = write(tmp_path, "p.yaml", "name: x\ndescription: d\nmetrics: {q: {meter: q, aggregation: sum}}\n"
                 "charges: [{metric: q, model: per_unit, unit_price: -1}]\n")
    usage = write(tmp_path, "u.yaml", GOOD_PERIOD + "meters: {q: 5}\n")
    assert_one_line_error(*run(capsys, "price", usage, "--plan", plan), "charges.0.unit_price", "non-negative")


@pytest.mark.parametrize(("meters", "field", "problem"), [
    ("{mau: -5}", "meters.mau", "non-negative"),
    ("{mau: lots}", "meters.mau", "expected a number"),
    ("{mau: true}", "meters.mau", "expected a number"),
    ("{stored_bytes: {interval: 1d, values: [1, 2, 3]}}", "meters.stored_bytes.values", "expected 30 values"),
    ("{stored_bytes: {interval: 1d, values: [1, x]}}", "meters.stored_bytes.values[1]", "expected a number"),
    ("{stored_bytes: {interval: 7min, values: [1]}}", "meters.stored_bytes.values", "does not divide"),
    ("{stored_bytes: {interval: 1week, values: [1]}}", "meters.stored_bytes.interval", "not one of the forms"),
    ("{stored_bytes: {interval: 1d, vals: [1]}}", "meters.stored_bytes.vals", "unknown key"),
])
def test_bad_usage_values(capsys, tmp_path, meters, field, problem):
    usage = write(tmp_path, "u.yaml", GOOD_PERIOD + f"meters: {meters}\n")
    assert_one_line_error(*run(capsys, "price", usage, "--plan", "mesibo-cloud"), "u.yaml", field, problem)


def test_malformed_yaml_names_line(capsys, tmp_path):
    usage = write(tmp_path, "u.yaml", GOOD_PERIOD + "meters: {mau: [1, 2\n")
    assert_one_line_error(*run(capsys, "price", usage, "--plan", "mesibo-cloud"), "u.yaml", "malformed YAML at line")


def test_malformed_json(capsys, tmp_path):
    usage = write(tmp_path, "u.json", '{"period": {"start": "2026-11-01", "end": "2026-12-01"}, "meters": {')
    assert_one_line_error(*run(capsys, "price", usage, "--plan", "mesibo-cloud"), "u.json", "malformed JSON")


def test_unknown_top_level_usage_key_and_bad_period(capsys, tmp_path):
    usage = write(tmp_path, "u.yaml", GOOD_PERIOD + "meters: {}\nmetres: {}\n")
    assert_one_line_error(*run(capsys, "price", usage, "--plan", "mesibo-cloud"), "metres", "unknown key")
    usage = write(tmp_path, "v.yaml", "period: {start: 2026-12-01, end: 2026-11-01}\nmeters: {}\n")
    assert_one_line_error(*run(capsys, "price", usage, "--plan", "mesibo-cloud"), "v.yaml", "period", "not after")


def test_missing_usage_file_and_unknown_addon(capsys, tmp_path):
    assert_one_line_error(*run(capsys, "price", str(tmp_path / "nope.yaml"), "--plan", "mesibo-cloud"),
                          "nope.yaml", "no such usage file")
    usage = write(tmp_path, "u.yaml", GOOD_PERIOD + "meters: {}\n")
    assert_one_line_error(*run(capsys, "price", usage, "--plan", "mesibo-cloud", "--addon", "sla_basic"),
                          "--addon", "sla_basic")


def test_good_input_exits_zero_with_json(capsys, tmp_path):
    usage = write(tmp_path, "u.yaml", GOOD_PERIOD + "meters: {mau: 100000, outbound_bytes: 6.0e9}\n")
    code, out, err = run(capsys, "price", usage, "--plan", "mesibo-cloud-example", "--plan", "mesibo-free",
                         "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert [b["total"] for b in doc["bills"]] == ["80.90", "0.00"]
    assert doc["cheapest"] == "mesibo-cloud-example"      # mesibo-free is exceeded, so it is no option
    assert doc["bills"][1]["violations"][0]["meter"] == "mau"


def test_python_dash_m_and_exit_status(tmp_path):
    usage = write(tmp_path, "u.yaml", GOOD_PERIOD + "meters: {mau: -1}\n")
    proc = subprocess.run([sys.executable, "-m", "sim", "price", usage, "--plan", "mesibo-cloud"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == "" and "meters.mau" in proc.stderr


# -- untrusted files and arguments (issue "Trust", section "Bad input") ------------------------------------

import os  # noqa: E402
import time  # noqa: E402

from sim.memory import check_memory, estimate_bytes  # noqa: E402
from sim.scenario import Population, load_scenario  # noqa: E402

PLAN = "name: x\ndescription: d\nmetrics: {q: {meter: q, aggregation: sum}}\ncharges: [{metric: q, model: per_unit, unit_price: 1}]\n"
SCENARIO = "name: t\nsimulation: {days: 1}\npopulation: {users: 50}\n"
BOMB = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9) if p else ', '.join(['x'] * 9)}]\n"
               for p, c in zip(["", *"abcdefgh"], "abcdefghi", strict=True))   # 9^9 = 387 M nodes once expanded


def assert_refused(code, out, err, *fragments):
    """One line on stderr naming what is wrong, exit 2, nothing on stdout, no traceback."""
    assert "Traceback" not in err
    assert_one_line_error(code, out, err, *fragments)


def cmd_for(kind, path, tmp_path):
    """The command that reads ``path`` as a ``kind`` file (the other inputs good)."""
    if kind == "usage":
        return ["price", path, "--plan", "mesibo-cloud"]
    if kind == "plan":
        return ["price", write(tmp_path, "good.yaml", GOOD_PERIOD + "meters: {q: 5}\n"), "--plan", path]
    return ["run", path, "--out", str(tmp_path / "out"), "--no-progress"]


def refused(capsys, tmp_path, kind, path, *fragments):
    assert_refused(*run(capsys, *cmd_for(kind, path, tmp_path)), *fragments)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["usage", "plan", "scenario"])
@pytest.mark.parametrize(("data", "problem"), [
    (b"name: caf\xe9\n", "not UTF-8 text (byte 0xe9 at offset 9)"),
    (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "binary file (NUL byte at offset 8)"),
])
def test_binary_or_non_utf8_files(capsys, tmp_path, kind, data, problem):
    path = tmp_path / "in.yaml"
    path.write_bytes(data)
    refused(capsys, tmp_path, kind, str(path), "in.yaml", problem)


@pytest.mark.parametrize("kind", ["usage", "plan", "scenario"])
def test_alias_bomb_refused_while_composing(capsys, tmp_path, kind):
    path = write(tmp_path, "bomb.yaml", BOMB)
    t0 = time.perf_counter()
    refused(capsys, tmp_path, kind, path, "bomb.yaml", "line 6", "aliases expand to more than 100,000 nodes")
    # bounded, not fast: expanded, this bomb is 9^9 nodes (minutes and gigabytes); refused it takes milliseconds,
    # and the bound leaves room for a loaded machine and first imports
    assert time.perf_counter() - t0 < 5


def test_alias_bomb_in_set_value_is_not_expanded(capsys, tmp_path):
    bomb = "[" + ", ".join(["&a [x, x, x, x, x, x, x, x, x, x]"] + ["*a"] * 20_000) + "]"
    t0 = time.perf_counter()
    assert_refused(*run(capsys, "run", write(tmp_path, "s.yaml", SCENARIO), "--set", f"plans={bomb}"), "plans")
    assert time.perf_counter() - t0 < 5  # bounded (see above)


def test_small_aliases_and_merge_keys_still_work(tmp_path):
    from sim import yamlio

    assert yamlio.parse("a: &x {b: 1}\nc: {<<: *x, d: 2}\ne: [*x, *x]\n", "f") == {
        "a": {"b": 1}, "c": {"b": 1, "d": 2}, "e": [{"b": 1}, {"b": 1}]}


@pytest.mark.parametrize(("kind", "name", "text", "problem"), [
    ("usage", "u.yaml", "[" * 100_000, "nested deeper than 64 levels"),
    ("usage", "u.json", "[" * 100_000, "nested deeper than 64 levels"),
    ("usage", "v.json", "[" * 70 + "]" * 70, "nested deeper than 64 levels"),
    ("plan", "p.yaml", "a: " + "{b: " * 100_000, "nested deeper than 64 levels"),
    ("scenario", "s.yaml", "- " * 100_000 + "x\n", "nested deeper than 64 levels"),
])
def test_deep_nesting_refused(capsys, tmp_path, kind, name, text, problem):
    refused(capsys, tmp_path, kind, write(tmp_path, name, text), name, problem)


@pytest.mark.parametrize(("kind", "name", "text", "fragments"), [
    ("scenario", "s.yaml", SCENARIO + "population: {users: 9}\n", ("line 4", "duplicate key 'population'")),
    ("plan", "p.yaml", PLAN.replace("unit_price: 1", "unit_price: 1, unit_price: 2"), ("duplicate key 'unit_price'",)),
    ("usage", "u.yaml", GOOD_PERIOD + "meters: {mau: 5, mau: 6}\n", ("line 2", "duplicate key 'mau'")),
    ("usage", "u.json", '{"period": {"start": "2026-11-01", "end": "2026-12-01"}, "meters": {"mau": 1, "mau": 2}}',
     ("malformed JSON", "duplicate key 'mau'")),
])
def test_duplicate_keys_are_errors(capsys, tmp_path, kind, name, text, fragments):
    refused(capsys, tmp_path, kind, write(tmp_path, name, text), name, *fragments)


def test_impossible_dates(capsys, tmp_path):
    scenario = write(tmp_path, "s.yaml", SCENARIO.replace("{days: 1}", "{days: 1, start: 2026-02-30}"))
    refused(capsys, tmp_path, "scenario", scenario, "s.yaml", "simulation.start", "day value is outside expected range")
    good = write(tmp_path, "g.yaml", SCENARIO)
    assert_refused(*run(capsys, "run", good, "--set", "simulation.start=2026-02-30T00:00:00Z"), "simulation.start")
    usage = write(tmp_path, "u.yaml", "period: {start: 2026-02-01, end: 2026-02-30}\nmeters: {}\n")
    refused(capsys, tmp_path, "usage", usage, "u.yaml", "period.end", "day is out of range for month")
    usage = write(tmp_path, "u.json", '{"period": {"start": "2026-13-01", "end": "2026-12-01"}, "meters": {}}')
    refused(capsys, tmp_path, "usage", usage, "u.json", "period.start", "month must be in 1..12")


@pytest.mark.parametrize(("kind", "name", "text", "fragments"), [
    ("plan", "p.yaml", PLAN.replace("unit_price: 1", "unit_price: 1e308"), ("charges.0.unit_price", "largest")),
    ("plan", "p.yaml", PLAN.replace("unit_price: 1", "unit_price: .nan"), ("charges.0.unit_price", "finite")),
    ("plan", "p.yaml", PLAN + "base_fee: 1e400\n", ("base_fee", "finite")),
    ("plan", "p.yaml", PLAN + "notifications: {thresholds: [.nan], of: limits}\n", ("notifications.thresholds.0", "finite")),
    ("usage", "u.yaml", GOOD_PERIOD + "meters: {mau: 1e308}\n", ("meters.mau", "largest quantity")),
    ("usage", "u.yaml", GOOD_PERIOD + "meters: {mau: .inf}\n", ("meters.mau", "finite")),
    ("usage", "u.yaml", GOOD_PERIOD + "meters: {mau: " + "9" * 400 + "}\n", ("meters.mau", "largest quantity")),
    ("usage", "u.json", '{"period": {"start": "2026-11-01", "end": "2026-12-01"}, "meters": {"mau": 1e308}}',
     ("meters.mau", "largest quantity")),
    ("usage", "v.json", '{"period": {"start": "2026-11-01", "end": "2026-12-01"}, "meters": {"mau": NaN}}',
     ("malformed JSON", "NaN")),
    ("usage", "w.json", '{"period": {"start": "2026-11-01", "end": "2026-12-01"}, "meters": {"mau": 1e999}}',
     ("malformed JSON", "overflows")),
    ("usage", "u.yaml", GOOD_PERIOD + "meters: {q: {interval: 1d, values: [" + ", ".join(["1e17"] * 30) + "]}}\n",
     ("meters.q.values", "add up to 3e+18")),
    ("scenario", "s.yaml", SCENARIO + "activity: {session_mean_s: .nan}\n", ("activity.session_mean_s", "finite")),
    ("scenario", "s.yaml", SCENARIO + "iot: {hour_weights: [.inf]}\n", ("iot.hour_weights.0", "finite")),
])
def test_numbers_that_overflow_or_are_not_finite(capsys, tmp_path, kind, name, text, fragments):
    refused(capsys, tmp_path, kind, write(tmp_path, name, text), name, *fragments)


@pytest.mark.parametrize(("args", "fragments"), [
    (["--mau", "10", "--messages", "10", "--size", "nan"], ("--size", "finite non-negative", "'nan'")),
    (["--mau", "10", "--messages", "10", "--size", "inf"], ("--size", "'inf'")),
    (["--mau", "-1", "--messages", "10", "--size", "50"], ("--mau", "must not be negative")),
    (["--mau", "1.5", "--messages", "10", "--size", "50"], ("--mau", "whole number")),
    (["--mau", "10", "--messages", "10"], ("required", "--size")),
    (["--mau", "10", "--messages", str(10**12), "--size", "1e9"], ("--messages x --size", "largest quantity")),
    (["--mau", "1" + "0" * 30, "--messages", "1", "--size", "1"], ("--mau", "largest quantity")),
    (["--mau", "1" + "0" * 400, "--messages", "1", "--size", "1"], ("--mau", "more than 300 digits")),
])
def test_quote_arguments(capsys, args, fragments):
    assert_refused(*run(capsys, "quote", "--plan", "mesibo-cloud", *args), *fragments)


def test_quote_python_api_refuses_non_finite_and_bool():
    from sim.errors import InputError
    from sim.pricing.plan import load_plan
    from sim.pricing.quote import quote

    for kw, field in ((dict(mau=True), "--mau"), (dict(size=float("nan")), "--size"), (dict(messages=-1), "--messages")):
        with pytest.raises(InputError) as e:
            quote(load_plan("mesibo-cloud"), **{"mau": 1, "messages": 1, "size": 1.0, **kw})
        assert e.value.field == field


def test_every_argparse_error_is_one_line(capsys):
    assert_refused(*run(capsys, "price"), "the following arguments are required")
    assert_refused(*run(capsys, "nonsense"), "invalid choice")
    assert_refused(*run(capsys, "price", "u.yaml", "--plan", "x", "--format", "xml"), "--format", "invalid choice")
    assert_refused(*run(capsys, "run", "quick", "--seed", "1e3"), "--seed", "invalid int value")


@pytest.mark.parametrize(("sets", "field"), [
    ("population.users=true", "population.users"),
    ("activity.sessions_per_dau_per_day=false", "activity.sessions_per_dau_per_day"),
    ("population.timezones={0: true}", "population.timezones.0"),
    ("protocol.mss=true", "protocol.mss"),
    ("iot.devices=true", "iot.devices"),
])
def test_booleans_are_not_numbers_in_scenarios(capsys, tmp_path, sets, field):
    scenario = write(tmp_path, "s.yaml", SCENARIO)
    assert_refused(*run(capsys, "run", scenario, "--set", sets, "--out", str(tmp_path / "out")),
                   "s.yaml", field, "expected a number, got")
    assert not (tmp_path / "out").exists()


def test_booleans_are_not_numbers_in_models_and_plans(capsys, tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="expected a number"):
        Population(users=True)
    assert Population(users=5.0).users == 5                      # int -> float and back still coerce
    sc = load_scenario(write(tmp_path, "s.yaml", SCENARIO + "activity: {session_mean_s: 60}\n"))
    assert sc.activity.session_mean_s == 60.0 and isinstance(sc.activity.session_mean_s, float)
    plan = write(tmp_path, "p.yaml", PLAN.replace("aggregation: sum}", "aggregation: sum, round: {mode: ceil, precision: true}}"))
    usage = write(tmp_path, "u.yaml", GOOD_PERIOD + "meters: {q: 5}\n")
    assert_refused(*run(capsys, "price", usage, "--plan", plan), "p.yaml", "metrics.q.round.precision", "expected a number")


@pytest.mark.parametrize("kind", ["usage", "plan", "scenario"])
@pytest.mark.parametrize(("where", "problem"), [("dir", "a directory"), ("/dev/null", "not a regular file")])
def test_directory_or_device_instead_of_a_file(capsys, tmp_path, kind, where, problem):
    path = str(tmp_path / "d.yaml") if where == "dir" else where
    os.makedirs(tmp_path / "d.yaml", exist_ok=True)
    refused(capsys, tmp_path, kind, path, path, problem, f"expected a {kind} file")


def test_memory_guard_refuses_before_simulating(capsys, tmp_path):
    scenario = write(tmp_path, "s.yaml", SCENARIO)
    t0 = time.perf_counter()
    code, out, err = run(capsys, "run", scenario, "--set", "population.users=50000000", "--out", str(tmp_path / "out"))
    assert time.perf_counter() - t0 < 5  # refused before simulating (simulating would take hours, or die)
    assert_refused(code, out, err, "s.yaml", "population.users", "messaging.messages_per_dau_per_day",
                   "needs an estimated", "over the limit", "--max-memory")
    assert_refused(*run(capsys, "run", scenario, "--set", "activity.sessions_per_dau_per_day=1e9"),
                   "activity.sessions_per_dau_per_day", "TB of memory")
    assert not (tmp_path / "out").exists()


def test_memory_limit_from_option_and_environment(capsys, tmp_path, monkeypatch):
    scenario = write(tmp_path, "s.yaml", SCENARIO)
    assert_refused(*run(capsys, "run", scenario, "--max-memory", "10MB"), "over the limit of 10.0 MB (--max-memory)")
    assert_refused(*run(capsys, "run", scenario, "--max-memory", "lots"), "--max-memory", "8GB")
    monkeypatch.setenv("SIM_MAX_MEMORY", "20MB")
    assert_refused(*run(capsys, "run", scenario), "over the limit of 20.0 MB (SIM_MAX_MEMORY)")
    monkeypatch.setenv("SIM_MAX_MEMORY", "-3")
    assert_refused(*run(capsys, "run", scenario), "SIM_MAX_MEMORY", "memory size")


def test_memory_estimate_python_api():
    small = load_scenario("quick", ["population.users=1000", "simulation.days=1"])
    need, drivers = estimate_bytes(small)
    assert 80e6 < need < 200e6 and drivers[0].bytes >= drivers[-1].bytes
    assert check_memory(small, max_memory="8GB") == need
    big = load_scenario("quick", ["population.users=1000000"])
    assert estimate_bytes(big)[0] > 20 * need
    from sim.errors import InputError

    with pytest.raises(InputError) as e:
        check_memory(big, "quick", max_memory="1GB")
    assert "population.users" in e.value.field


def test_memory_estimate_within_a_factor_of_two_of_a_measured_run(tmp_path):
    """Calibration check (see sim/memory.py): peak RSS of a small run against its estimate."""
    code = ("import json, resource, sys\nfrom sim.scenario import load_scenario\nfrom sim.simulate import simulate\n"
            "from sim.memory import estimate_bytes\n"
            "sc = load_scenario('quick', ['population.users=4000', 'simulation.days=1'])\n"
            "simulate(sc, progress=False, raise_errors=True)\n"
            "print(json.dumps([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, estimate_bytes(sc)[0]]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak, estimate = json.loads(proc.stdout)
    assert 0.5 < estimate / peak < 2, (peak, estimate)
