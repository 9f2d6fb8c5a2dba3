"""The README's examples run, and its test command is the one CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_readme_quick_start_command_runs(tmp_path):
    line = next(x for x in README.splitlines() if x.startswith("pip install -e"))
    sim_cmd = line.split("&&", 1)[1].split()
    assert sim_cmd[:2] == ["sim", "run"] and "--out" in sim_cmd
    sim_cmd[sim_cmd.index("--out") + 1] = str(tmp_path / "quick")
    proc = subprocess.run([sys.executable, "-m", "sim", *sim_cmd[1:], "--no-progress"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "plan mesibo-cloud: bill" in proc.stdout and (tmp_path / "quick" / "usage.json").is_file()


def test_readme_price_example_gives_the_seed_total():
    cmd = re.search(r"`(sim price examples/usage-example\.yaml[^`]*)`", README).group(1).split()
    proc = subprocess.run([sys.executable, "-m", "sim", *cmd[1:]], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "USD 80.90" in proc.stdout


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "<!-- ci:test -->" in ci and "<!-- ci:test -->" in README
