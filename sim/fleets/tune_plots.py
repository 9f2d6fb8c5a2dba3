"""``frontier.png``: the share of apps that run free against the free tier's cost (matplotlib, Agg backend).

Every evaluated candidate is a point: feasible ones (every requirement met) in colour, the others grey; the
Pareto frontier (no candidate as cheap or cheaper frees more apps) is a line; the chosen point is a star (or,
when nothing is feasible, the closest candidate a cross). A free_share requirement on all apps is drawn as a
horizontal line and a free_cost budget as a vertical one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from sim.fleets.tune_search import Solution

#: Points drawn at most per class (a 27,000-point grid is summarised by a random subset, the frontier whole).
MAX_POINTS = 20_000


def plot_frontier(sol: Solution, path: str | Path) -> None:
    p, ev = sol.problem, sol.evaluation
    cur = p.plan.currency
    fig, ax = plt.subplots(figsize=(8, 5.5))
    rng = np.random.default_rng(0)

    def thin(idx: np.ndarray) -> np.ndarray:
        return idx if idx.size <= MAX_POINTS else np.sort(rng.choice(idx, MAX_POINTS, replace=False))

    bad = thin(np.flatnonzero(~ev.feasible))
    good = thin(np.flatnonzero(ev.feasible))
    ax.scatter(ev.cost[bad], ev.share[bad], s=8, c="0.75", label=f"infeasible ({int((~ev.feasible).sum()):,})",
               zorder=1, linewidths=0)
    ax.scatter(ev.cost[good], ev.share[good], s=10, c="tab:blue", label=f"feasible ({int(ev.feasible.sum()):,})",
               zorder=2, linewidths=0)
    front = np.flatnonzero(sol.frontier)
    front = front[np.lexsort((ev.share[front], ev.cost[front]))]
    ax.step(ev.cost[front], ev.share[front], where="post", c="tab:orange", lw=1.5, zorder=3, label="Pareto frontier")
    for r in p.tune.requirements:
        b = r.body
        if r.kind == "free_share" and b.archetype == "all":
            ax.axhline(b.at_least, c="tab:green", ls="--", lw=1, label=r.label())
        elif r.kind == "free_cost":
            ax.axvline(float(b.at_most), c="tab:red", ls="--", lw=1, label=r.label())
    if sol.chosen is not None:
        i = sol.chosen
        lim = ", ".join(f"{k.removeprefix('limits.')}={float(v):.4g}" for k, v in zip(p.names, ev.values[i], strict=True))
        ax.scatter([ev.cost[i]], [ev.share[i]], marker="*", s=260, c="tab:red", edgecolors="k", zorder=5,
                   label=f"chosen: {lim}")
    elif sol.closest is not None:
        i = sol.closest
        ax.scatter([ev.cost[i]], [ev.share[i]], marker="X", s=160, c="k", zorder=5,
                   label="closest (no candidate feasible)")
    ax.set_xlabel(f"free tier's cost ({cur} per month: egress, storage, connections, servers)")
    ax.set_ylabel("share of apps free")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{p.tune.name}: {p.plan.name} over {p.n:,} apps, {len(ev.cost):,} candidates ({sol.method})",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
