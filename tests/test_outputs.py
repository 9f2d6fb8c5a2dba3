"""``sim run --out``: checked before simulating, written beside the target and moved into place whole; Ctrl-C is
one line and exit 130 (issue "Trust")."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sim.run
from sim.cli import main

SMALL = ["--set", "population.users=150", "--set", "simulation.days=1", "--no-progress"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def leftovers(parent: Path) -> list[str]:
    """Staging or swap directories left beside the target."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def assert_refused(code, out, err, *fragments):
    assert code == 2 and out == "" and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.parametrize(("make", "target", "fragments"), [
    (lambda d: (d / "f").write_text("x"), "f", ("--out", "exists and is not a directory")),
    (lambda d: (d / "f").write_text("x"), "f/sub/dir", ("--out", "is a file, not a directory")),
    (lambda d: (d / "mine").mkdir() or (d / "mine" / "thesis.tex").write_text("x"), "mine",
     ("--out", "neither empty nor an earlier result")),
])
def test_out_checked_before_simulating(capsys, tmp_path, monkeypatch, make, target, fragments):
    make(tmp_path)
    monkeypatch.setattr(sim.run, "simulate", lambda *a, **k: pytest.fail("simulated despite a bad --out"))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert_refused(*run(capsys, "run", "quick", *SMALL, "--out", str(tmp_path / target)), *fragments)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_out_unwritable(capsys, tmp_path):
    assert_refused(*run(capsys, "run", "quick", *SMALL, "--out", "/proc/sim-out"), "--out", "cannot write in /proc")


def test_rerun_replaces_the_result_whole(capsys, tmp_path):
    out = tmp_path / "res"
    assert run(capsys, "run", "quick", *SMALL, "--out", str(out))[0] == 0
    (out / "usage-old-plan.json").write_text("{}")            # a file only an earlier run wrote
    assert run(capsys, "run", "quick", *SMALL, "--seed", "9", "--out", str(out))[0] == 0
    assert not (out / "usage-old-plan.json").exists()
    assert json.loads((out / "run.json").read_text())["seed"] == 9
    assert leftovers(tmp_path) == []
    assert (out.stat().st_mode & 0o777) != 0o700              # an ordinary directory, not mkdtemp's private one


def test_failure_while_writing_keeps_the_previous_result(capsys, tmp_path, monkeypatch):
    out = tmp_path / "res"
    assert run(capsys, "run", "quick", *SMALL, "--out", str(out))[0] == 0
    previous = {p.name: p.read_bytes() for p in out.iterdir()}
    real = sim.run.write_outputs

    def half(result, outcomes, out_dir):
        (Path(out_dir) / "usage.json").write_text("{half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sim.run, "write_outputs", half)
    with pytest.raises(OSError):
        main(["run", "quick", *SMALL, "--seed", "3", "--out", str(out)])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == previous
    assert leftovers(tmp_path) == []

    def interrupted(result, outcomes, out_dir):
        real(result, outcomes, out_dir)
        raise KeyboardInterrupt

    monkeypatch.setattr(sim.run, "write_outputs", interrupted)
    code, _, err = run(capsys, "run", "quick", *SMALL, "--seed", "4", "--out", str(out))
    assert code == 130 and err.strip() == "sim: interrupted"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == previous
    assert leftovers(tmp_path) == []


def test_first_run_interrupted_while_writing_leaves_nothing(capsys, tmp_path, monkeypatch):
    def interrupted(result, outcomes, out_dir):
        (Path(out_dir) / "usage.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(sim.run, "write_outputs", interrupted)
    code, _, err = run(capsys, "run", "quick", *SMALL, "--out", str(tmp_path / "new" / "res"))
    assert code == 130 and err.strip() == "sim: interrupted"
    assert not (tmp_path / "new" / "res").exists() and leftovers(tmp_path / "new") == []


def test_staged_dir_python_api(tmp_path):
    out = tmp_path / "o"
    with sim.run.staged_dir(out) as tmp:
        (tmp / "run.json").write_text("{}")
        assert not out.exists()
    assert (out / "run.json").is_file() and leftovers(tmp_path) == []


def test_sigint_during_a_run_is_one_line_and_130(tmp_path):
    out = tmp_path / "res"
    proc = subprocess.Popen([sys.executable, "-m", "sim", "run", "quick", "--set", "population.users=20000",
                             "--set", "simulation.days=2", "--no-progress", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)                       # imports done, simulating
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["sim: interrupted"]
    assert not out.exists() and leftovers(tmp_path) == []
