"""Summaries: per point x plan and metric, the mean with its Student-t confidence interval and percentiles.

Why Student t: replications are few (5 to 100) and their means are what planners quote; the interval is
``mean +- t_{(1+c)/2, n-1} x s / sqrt(n)`` with the sample standard deviation ``s`` (ddof 1), computed on
floats from the stored runs (money arrives as floats converted from the bills' Decimals). ``n < 2`` leaves
``std`` and the interval empty (NaN): one run says nothing about its own spread.

:func:`paired_difference` is the comparison common random numbers are for: replication ``r`` of point A
against replication ``r`` of point B (same seed, :mod:`.seeds`), the CI of the mean of the differences.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

SUMMARY_COLUMNS = ("n", "mean", "std", "ci_low", "ci_high", "p10", "p50", "p90")


def t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """``(mean, std, ci_low, ci_high)`` of ``values`` (NaNs dropped)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    n = v.size
    if n == 0:
        return math.nan, math.nan, math.nan, math.nan
    mean = float(v.mean())
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    std = float(v.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half


def half_width(values: np.ndarray, confidence: float) -> float:
    mean, _, lo, hi = t_interval(values, confidence)
    return math.nan if math.isnan(lo) else (hi - lo) / 2


def metric_columns(runs: pd.DataFrame) -> list[str]:
    from sim.experiments.study import METRICS

    lines = sorted(c for c in runs.columns if c.startswith("line_"))
    return [m for m in METRICS if m in runs.columns] + lines


def summarize(runs: pd.DataFrame, keys: list[str], confidence: float = 0.95) -> pd.DataFrame:
    """One row per point x plan x metric: the point's varied values, ``n``, mean, std, CI, p10/p50/p90.
    Failed runs (``error`` set) are left out; ``n`` counts the runs that went in."""
    ok = runs[runs["error"].isna()] if "error" in runs.columns else runs
    rows: list[dict[str, Any]] = []
    metrics = metric_columns(runs)
    for (point, plan), g in ok.groupby(["point", "plan"], sort=False):
        first = g.iloc[0]
        label = {"point": point, **{k: first[k] for k in keys}, "plan": plan}
        for m in metrics:
            v = pd.to_numeric(g[m], errors="coerce").to_numpy(dtype=float)
            v = v[~np.isnan(v)]
            mean, std, lo, hi = t_interval(v, confidence)
            pct = np.percentile(v, [10, 50, 90]) if v.size else [math.nan] * 3
            rows.append(label | {"metric": m, "n": int(v.size), "mean": mean, "std": std, "ci_low": lo,
                                 "ci_high": hi, "p10": float(pct[0]), "p50": float(pct[1]), "p90": float(pct[2])})
    cols = ["point", *keys, "plan", "metric", *SUMMARY_COLUMNS]
    return pd.DataFrame(rows, columns=cols)


def paired_difference(runs: pd.DataFrame, a: tuple[str, str], b: tuple[str, str], metric: str,
                      confidence: float = 0.95) -> dict[str, Any]:
    """``a - b`` replication by replication (``a``, ``b`` = (point, plan)): mean, std, CI, and the share of
    replications where ``a`` is below ``b`` (e.g. "plan A is cheaper in 97 % of months")."""
    ok = runs[runs["error"].isna()] if "error" in runs.columns else runs

    def side(point: str, plan: str) -> pd.Series:
        g = ok[(ok["point"] == point) & (ok["plan"] == plan)]
        if g.empty:
            raise KeyError(f"no successful runs of point {point!r} under plan {plan!r}")
        return g.set_index("replication")[metric].astype(float)

    sa, sb = side(*a), side(*b)
    common = sa.index.intersection(sb.index)
    d = (sa.loc[common] - sb.loc[common]).to_numpy()
    mean, std, lo, hi = t_interval(d, confidence)
    return {"a": {"point": a[0], "plan": a[1]}, "b": {"point": b[0], "plan": b[1]}, "metric": metric,
            "n": int(d.size), "mean": mean, "std": std, "ci_low": lo, "ci_high": hi,
            "confidence": confidence, "share_a_below_b": float((d < 0).mean()) if d.size else math.nan}
