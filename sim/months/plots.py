"""months.png: what each plan costs month by month, and in total so far; where the app outgrows a free limit."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path


def plot_months(mr, path: str | Path, title: str = "") -> Path:
    """Two panels: cost per month per plan, and cumulative cost; a dotted line at the month each free limit is
    first exceeded (labelled with the limit)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [b.strftime("%Y-%m") for b in mr.bounds[:-1]]
    x = list(range(len(labels)))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.4), sharex=True)
    for pm in mr.plans:
        totals = [float(b.total) for b in pm.bills]
        running, cum = Decimal(0), []
        for b in pm.bills:
            running += b.total
            cum.append(float(running))
        ax1.plot(x, totals, marker="o", label=pm.plan)
        ax2.plot(x, cum, marker="o", label=pm.plan)
        at: dict[int, list[str]] = {}
        for metric, m in pm.first_exceeded.items():
            at.setdefault(m, []).append(metric)
        for m, metrics in sorted(at.items()):  # one line and one label per month: the limits first exceeded then
            for ax in (ax1, ax2):
                ax.axvline(m, color="firebrick", linestyle=":", linewidth=1)
            ax1.annotate(f"{pm.plan}: {', '.join(sorted(metrics))} exceeded", (m, 0), xytext=(3, 6),
                         textcoords="offset points", rotation=90, fontsize=7, color="firebrick", va="bottom")
    currency = mr.plans[0].bills[0].currency if mr.plans and mr.plans[0].bills else ""
    ax1.set_title("cost per month")
    ax2.set_title("cumulative cost")
    for ax in (ax1, ax2):
        ax.set_xticks(x, labels, rotation=45, ha="right")
        ax.set_ylabel(currency)
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
