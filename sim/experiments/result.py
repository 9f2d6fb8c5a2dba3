"""What a study run returns: the runs table, its summary, paired comparisons, plots (for notebooks)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from sim.experiments.study import Study


class StudyResult:
    """``.runs``: one row per point x replication x plan (the columns of ``runs.csv``); ``.info``: what
    ``study.json`` holds; ``.summary()``, ``.compare()``, ``.plot()``, ``.sensitivity()``."""

    def __init__(self, study: Study, runs: pd.DataFrame, info: dict[str, Any]) -> None:
        self.study = study
        self.runs = runs
        self.info = info

    @property
    def points(self) -> pd.DataFrame:
        return pd.DataFrame(self.info["points"])

    def summary(self, confidence: float | None = None) -> pd.DataFrame:
        """Per point x plan x metric: n, mean, std, ci_low, ci_high (Student t), p10, p50, p90."""
        if confidence is None:
            return self._summary
        from sim.experiments.summary import summarize

        return summarize(self.runs, self.study.design_keys, confidence)

    @cached_property
    def _summary(self) -> pd.DataFrame:
        from sim.experiments.summary import summarize

        return summarize(self.runs, self.study.design_keys, self.study.confidence)

    def compare(self, point_a: str, point_b: str, metric: str = "total", plan: str | None = None,
                plan_b: str | None = None, confidence: float | None = None) -> dict[str, Any]:
        """Paired difference ``a - b`` over common replications, with its CI. Two points under one plan
        (default: the first), or one point under two plans (``compare("p003", "p003", plan="A", plan_b="B")``)."""
        from sim.experiments.summary import paired_difference

        pa = plan or str(self.runs["plan"].iloc[0])
        return paired_difference(self.runs, (point_a, pa), (point_b, plan_b or pa), metric,
                                 confidence or self.study.confidence)

    def sensitivity(self) -> pd.DataFrame | None:
        """Morris (mu*, sigma) or Sobol' (S1, ST) indices with their CIs; None for other designs."""
        from sim.experiments.sensitivity import analyse

        return analyse(self.study, self.runs)

    def plot(self, metric: str = "total", key: str | None = None, ax=None):
        """``metric`` against ``key`` (default: the first varied key) with CI bands; returns the figure."""
        from sim.experiments.plots import plot_metric

        keys = self.study.design_keys
        if not keys:
            raise ValueError("this study varies nothing: there is no key to plot against")
        return plot_metric(self.summary(), key or keys[0], metric, keys, ax=ax)

    def write(self, out: str | Path) -> None:
        """summary.csv, study.json, sensitivity.csv and the plots (runs.* are written by the sweep)."""
        from sim.experiments.files import atomic_write, write_json
        from sim.experiments.plots import write_plots

        out = Path(out)
        summary = self.summary()
        atomic_write(out / "summary.csv", lambda tmp: summary.to_csv(tmp, index=False))
        sens = self.sensitivity()
        if sens is not None:
            atomic_write(out / "sensitivity.csv", lambda tmp: sens.to_csv(tmp, index=False))
        write_plots(self, out)
        write_json(out / "study.json", self.info)
