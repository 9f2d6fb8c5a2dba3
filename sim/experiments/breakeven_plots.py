"""``breakeven.png``: both plans' mean cost against the varied key, with per-point confidence bands, the crossing and
its confidence interval (matplotlib, Agg backend selected inside the plotting function, as the experiments' plots do).

The plot is drawn from the breakeven document (:func:`sim.experiments.breakeven.document`), plain data only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _band(values: list, fallback: list) -> list[float]:
    """A CI edge with missing values (one replication) drawn at the mean."""
    return [float(f if v is None else v) for v, f in zip(values, fallback, strict=True)]


def plot_breakeven(doc: dict[str, Any], path: str | Path) -> Path:
    """Top: each plan's mean cost per grid value with its CI band; the crossing (vertical line), its CI (shaded),
    each replication's crossing (ticks). Bottom: the paired difference A - B with its CI band and zero."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    cv = doc["curves"]
    x = [float(v) for v in cv["x"]]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(8, 6.4), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]})
    for tag, p in zip(("A", "B"), cv["plans"], strict=True):
        mean = [float("nan") if m is None else float(m) for m in p["mean"]]
        (line,) = ax.plot(x, mean, marker="o", ms=3.5, label=f"{tag}: {p['plan']} (mean)")
        ax.fill_between(x, _band(p["ci_low"], mean), _band(p["ci_high"], mean), color=line.get_color(), alpha=0.2,
                        linewidth=0, label=f"{tag}: {doc['confidence']:.0%} CI")
        hit = [xi for xi, s in zip(x, p["violations_share"], strict=True) if s]
        if hit:
            ax.plot(hit, [mean[x.index(h)] for h in hit], ls="none", marker="x", color=line.get_color(),
                    label=f"{tag}: hard limits exceeded")
    d = cv["difference"]
    dmean = [float("nan") if m is None else float(m) for m in d["mean"]]
    ax2.plot(x, dmean, marker="o", ms=3, color="C2", label="A - B (paired, mean)")
    ax2.fill_between(x, _band(d["ci_low"], dmean), _band(d["ci_high"], dmean), color="C2", alpha=0.2, linewidth=0)
    ax2.axhline(0, color="0.3", lw=0.8)
    crossings = [c["crossing"] for c in doc["crossings"] if c.get("crossing") is not None]
    for a in (ax, ax2):
        if doc["value"] is not None:
            a.axvline(doc["value"], color="firebrick", lw=1.2,
                      label=f"breakeven {doc['value']:,.6g}" if a is ax else None)
            if doc["ci_low"] is not None:
                a.axvspan(doc["ci_low"], doc["ci_high"], color="firebrick", alpha=0.12,
                          label=f"{doc['confidence']:.0%} CI {doc['ci_low']:,.6g} to {doc['ci_high']:,.6g}"
                          if a is ax else None)
        a.grid(alpha=0.3)
    if crossings:
        ax.plot(crossings, [0.0] * len(crossings), ls="none", marker="|", ms=12, color="firebrick",
                transform=ax.get_xaxis_transform(), label="per replication crossings")
    cur = doc["currency"]
    ax.set_ylabel(f"cost per run ({cur})")
    ax2.set_ylabel(f"A - B ({cur})")
    ax2.set_xlabel(doc["key"])
    title = (f"breakeven of {doc['plans']['a']} and {doc['plans']['b']} on {doc['key']}" if doc["value"] is not None
             else f"no crossing of {doc['plans']['a']} and {doc['plans']['b']} in the range of {doc['key']}")
    ax.set_title(f"{title}\n{doc['name']}: {doc['replications']} replications, common random numbers", fontsize=10)
    ax.legend(fontsize=7.5, loc="best")
    ax2.legend(fontsize=7.5, loc="best")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
