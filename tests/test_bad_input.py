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
