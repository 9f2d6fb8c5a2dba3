"""Plots of a study: each metric against each varied key with CI bands, a heatmap for two keys, and the
sensitivity bars. Matplotlib's Agg backend; files are written whole (:mod:`.files`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def plot_metric(summary: pd.DataFrame, key: str, metric: str = "total", keys: list[str] | None = None,
                ax=None, title: str | None = None):
    """``metric``'s mean against ``key``, one line per plan (and per value of a second varied key), with
    its confidence band; a sampled design (every point its own values) shows points with CI bars."""
    import matplotlib.pyplot as plt

    s = summary[summary["metric"] == metric]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    others = [k for k in (keys or []) if k != key]
    factorial = s.groupby(["plan", *others], dropna=False).size().max() > 1 if len(s) else False
    groups = s.groupby(["plan", *others], sort=False, dropna=False) if others else s.groupby("plan", sort=False)
    numeric = _numeric(s[key])
    cats = list(dict.fromkeys(s[key])) if not numeric else None
    for name, g in groups:
        name = name if isinstance(name, tuple) else (name,)
        label = name[0] + "".join(f", {k}={v}" for k, v in zip(others, name[1:], strict=False))
        if factorial or not others:
            g = g.sort_values(key) if numeric else g
        x = g[key].to_numpy(dtype=float) if numeric else np.array([cats.index(v) for v in g[key]], dtype=float)
        if others and not factorial:  # sampled design: scatter with CI bars
            ax.errorbar(x, g["mean"], yerr=[g["mean"] - g["ci_low"], g["ci_high"] - g["mean"]], fmt="o", ms=3,
                        label=name[0], alpha=0.7)
            continue
        (line,) = ax.plot(x, g["mean"], marker="o", ms=3, label=label)
        ax.fill_between(x, g["ci_low"].astype(float), g["ci_high"].astype(float), color=line.get_color(),
                        alpha=0.2, linewidth=0)
    if cats is not None:
        ax.set_xticks(range(len(cats)), [str(c) for c in cats])
    ax.set_xlabel(key)
    ax.set_ylabel(f"{metric} (mean, CI band)")
    ax.set_title(title or f"{metric} against {key}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax.figure


def plot_heatmap(summary: pd.DataFrame, keys: tuple[str, str], metric: str, plan: str, ax=None):
    """Mean ``metric`` of ``plan`` over the grid of two varied keys."""
    import matplotlib.pyplot as plt

    kx, ky = keys
    s = summary[(summary["metric"] == metric) & (summary["plan"] == plan)]
    grid = s.pivot_table(index=ky, columns=kx, values="mean", aggfunc="mean")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4.5))
    im = ax.imshow(grid.to_numpy(dtype=float), origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(grid.columns)), [str(c) for c in grid.columns])
    ax.set_yticks(range(len(grid.index)), [str(i) for i in grid.index])
    ax.set_xlabel(kx)
    ax.set_ylabel(ky)
    ax.set_title(f"{metric}, {plan} (mean)")
    ax.figure.colorbar(im, ax=ax)
    for (j, i), v in np.ndenumerate(grid.to_numpy(dtype=float)):
        ax.text(i, j, f"{v:.4g}", ha="center", va="center", fontsize=7, color="white")
    return ax.figure


def plot_sensitivity(sens: pd.DataFrame, metric: str = "total", ax=None):
    """Bars per parameter: Morris mu* (with its CI) or Sobol' S1 and ST (with theirs), one group per plan."""
    import matplotlib.pyplot as plt

    s = sens[sens["metric"] == metric]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    params = list(dict.fromkeys(s["parameter"]))
    plans = list(dict.fromkeys(s["plan"]))
    cols = [("mu_star", "mu_star_conf")] if "mu_star" in s.columns else [("S1", "S1_conf"), ("ST", "ST_conf")]
    width = 0.8 / (len(plans) * len(cols))
    k = 0
    for plan in plans:
        g = s[s["plan"] == plan].set_index("parameter").reindex(params)
        for col, conf in cols:
            ax.barh(np.arange(len(params)) + k * width, g[col], height=width, xerr=g[conf],
                    label=f"{plan} {col}", capsize=2)
            k += 1
    ax.set_yticks(np.arange(len(params)) + width * (k - 1) / 2, params)
    ax.set_xlabel("Morris mu* (mean |elementary effect|)" if cols[0][0] == "mu_star" else "Sobol' index")
    ax.set_title(f"which parameters move {metric}")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=8)
    return ax.figure


def write_plots(result, out: str | Path) -> list[Path]:
    """Every plot of a finished study into ``out/plots/`` (and ``out/sensitivity.png``)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from sim.experiments.files import atomic_write

    out = Path(out)
    summary = result.summary()
    keys = result.study.design_keys
    written: list[Path] = []

    def save(fig, path: Path) -> None:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
        plt.close(fig)
        written.append(path)

    if summary.empty:
        return written
    for metric in result.study.metrics:
        for key in keys:
            save(plot_metric(summary, key, metric, keys), out / "plots" / f"{metric}-vs-{key}.png")
        if len(keys) == 2 and result.study.vary is not None:
            for plan in dict.fromkeys(summary["plan"]):
                save(plot_heatmap(summary, (keys[0], keys[1]), metric, plan),
                     out / "plots" / f"heatmap-{metric}-{plan}.png")
    sens = result.sensitivity()
    if sens is not None and not sens.empty:
        save(plot_sensitivity(sens, result.study.metrics[0]), out / "sensitivity.png")
    return written
