"""Which parameters matter: Morris elementary effects or Sobol' indices, from SALib.

Why on point means: each design point's metric is averaged over its replications first, so the indices
describe the model's response to the parameters rather than its noise (with common random numbers the
noise is shared across points anyway). The matrix analysed is exactly the one SALib sampled
(:func:`sim.experiments.design.design_matrix`), in design order.

Morris gives ``mu_star`` (mean absolute elementary effect: overall influence), its CI and ``sigma``
(interactions / non-linearity); Sobol' gives first-order ``S1`` and total ``ST`` with their CIs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def analyse(study, runs: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame | None:
    """One row per plan x metric x parameter; None for designs other than morris / sobol."""
    from sim.experiments.design import design_matrix, problem

    if study.sample is None or study.sample.method not in ("morris", "sobol"):
        return None
    prob = problem(study)
    x = np.array([[row[k] for k in prob["names"]] for row in design_matrix(study)], dtype=float)
    ok = runs[runs["error"].isna()]
    point_ids = sorted(runs["point"].unique())
    rows = []
    for plan in list(dict.fromkeys(runs["plan"])):
        for metric in metrics or study.metrics:
            if metric not in ok.columns:
                continue
            means = ok[ok["plan"] == plan].groupby("point")[metric].apply(
                lambda s: pd.to_numeric(s, errors="coerce").mean())
            y = np.array([means.get(p, np.nan) for p in point_ids], dtype=float)
            if np.isnan(y).any() or len(y) != len(x):
                continue  # a failed point: no index rather than a wrong one
            rows.extend(_indices(study, prob, x, y, plan, metric))
    return pd.DataFrame(rows)


def _indices(study, prob: dict, x: np.ndarray, y: np.ndarray, plan: str, metric: str) -> list[dict]:
    label = {"plan": plan, "metric": metric}
    if study.sample.method == "morris":
        from SALib.analyze import morris

        res = morris.analyze(prob, x, y, num_levels=study.sample.levels, conf_level=study.confidence,
                             seed=study.seed or 0)
        return [label | {"parameter": k, "mu_star": float(res["mu_star"][j]),
                         "mu_star_conf": float(res["mu_star_conf"][j]), "mu": float(res["mu"][j]),
                         "sigma": float(res["sigma"][j])} for j, k in enumerate(prob["names"])]
    from SALib.analyze import sobol

    res = sobol.analyze(prob, y, calc_second_order=False, conf_level=study.confidence, seed=study.seed or 0)
    return [label | {"parameter": k, "S1": float(res["S1"][j]), "S1_conf": float(res["S1_conf"][j]),
                     "ST": float(res["ST"][j]), "ST_conf": float(res["ST_conf"][j])}
            for j, k in enumerate(prob["names"])]
